"""The item rules against the reference outputs in ../shared/golden: every record must match."""

from __future__ import annotations

from collections import defaultdict

import pytest
from conftest import SHARED, SHARED_SETS, load_golden, needs_shared

from pricecurate.rules.lines import KEPT, build_items
from pricecurate.rules.recipe import make_test_prompt


def golden_view(entry: dict) -> tuple:
    return (
        entry["include"],
        entry["reason"],
        entry["price"],
        entry["prompt"],
        entry["test_prompt"],
        entry["token_count"],
    )


def outcome_view(outcome) -> tuple:
    return (
        outcome.status == KEPT,
        outcome.reason,
        outcome.price,
        outcome.prompt,
        make_test_prompt(outcome.prompt) if outcome.prompt is not None else None,
        outcome.token_count or 0,
    )


@needs_shared
@pytest.mark.parametrize("name", SHARED_SETS)
def test_item_rules_match_golden(name, codec):
    by_file = defaultdict(list)
    for entry in load_golden(name):
        by_file[entry["file"]].append(entry)
    mismatches, checked = [], 0
    for file, entries in sorted(by_file.items()):
        lines = (SHARED / "data" / file).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        assert len(lines) == len(entries), f"{file}: {len(lines)} lines but {len(entries)} golden entries"
        for entry, outcome in zip(entries, build_items(lines, codec)):
            checked += 1
            if golden_view(entry) != outcome_view(outcome):
                mismatches.append((file, entry["line"], golden_view(entry), outcome_view(outcome)))
    assert checked == len(load_golden(name))
    assert not mismatches, f"{len(mismatches)} of {checked} differ; first: {mismatches[:3]}"
