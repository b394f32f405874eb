"""The bundled sample is written once, whole, and then only read (``sample.shared_sample``)."""

from __future__ import annotations

import json
import os

from pricecurate import sample
from pricecurate.pipeline.read import discover
from pricecurate.rules.categories import CATEGORIES
from pricecurate.spark.fs import LocalFiles


def _snapshot(folder):
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes()) for path in folder.iterdir()}


def test_the_sample_is_written_once_with_the_generators_records(tmp_path):
    first = sample.shared_sample(tmp_path, 3)
    before = _snapshot(first)
    again = sample.shared_sample(tmp_path, 3)
    assert again == first
    assert _snapshot(again) == before  # the same files, not rewritten
    fresh = tmp_path / "fresh"
    sample.write_sample(fresh, 3)
    assert {p.name: p.read_bytes() for p in fresh.iterdir()} == {
        name: content for name, (_, _, content) in before.items() if name != sample.SAMPLE_MARKER}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_the_marker_is_not_read_as_input(tmp_path):
    folder = sample.shared_sample(tmp_path, 2)
    plan = discover(LocalFiles(), str(folder), "all")
    assert len(plan.files) == len(CATEGORIES) and plan.ignored == []


def test_another_record_count_or_generator_gets_its_own_folder(tmp_path, monkeypatch):
    three = sample.shared_sample(tmp_path, 3)
    four = sample.shared_sample(tmp_path, 4)
    monkeypatch.setattr(sample, "_generator_digest", lambda: "0123456789ab")
    changed = sample.shared_sample(tmp_path, 3)
    assert len({three, four, changed}) == 3
    assert changed.name == "pricecurate-sample-3-0123456789ab"


def test_a_damaged_sample_is_set_aside_and_written_again(tmp_path):
    folder = sample.shared_sample(tmp_path, 3)
    victim = folder / f"meta_{CATEGORIES[0]}.jsonl"
    victim.write_bytes(victim.read_bytes()[:10])  # cut short
    again = sample.shared_sample(tmp_path, 3)
    assert again == folder
    assert victim.stat().st_size == json.loads((folder / sample.SAMPLE_MARKER).read_text())["files"][victim.name]
    set_aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(set_aside) == 1 and (set_aside[0] / victim.name).stat().st_size == 10  # not deleted


def test_a_process_that_loses_the_race_uses_the_winners_folder(tmp_path, monkeypatch):
    winner = {}
    real_rename = os.rename

    def rename(source, target):
        # Another process finishes the same sample just before this one renames its own into place.
        if not winner:
            winner["racing"] = True
            monkeypatch.setattr(os, "rename", real_rename)
            real_rename(sample.shared_sample(tmp_path / "other", 3), target)
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    folder = sample.shared_sample(tmp_path, 3)
    monkeypatch.setattr(os, "rename", real_rename)
    assert sample._complete(folder, {"records_per_category": 3, "seed": 0, "generator": sample._generator_digest()})
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
