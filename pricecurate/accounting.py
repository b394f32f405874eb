"""Where every input line went: kept, dropped by reason, or quarantined by reason."""

from __future__ import annotations

from collections import defaultdict

from pricecurate.items import DROPPED, KEPT, QUARANTINED


def _empty() -> dict:
    return {"lines": 0, "kept": 0, "dropped": {}, "quarantined": {}}


def _add(entry: dict, status: str, reason: str | None, count: int) -> None:
    entry["lines"] += count
    if status == KEPT:
        entry["kept"] += count
    else:
        bucket = entry["dropped" if status == DROPPED else "quarantined"]
        bucket[reason] = bucket.get(reason, 0) + count


def _sorted(entry: dict) -> dict:
    return {
        **entry,
        "dropped": dict(sorted(entry["dropped"].items())),
        "quarantined": dict(sorted(entry["quarantined"].items())),
    }


def build_accounting(rows) -> dict:
    """From (file, category, status, reason, count) rows to the manifest's ``accounting`` section."""
    total = _empty()
    files: dict[str, dict] = defaultdict(_empty)
    categories: dict[str, dict] = defaultdict(_empty)
    for file, category, status, reason, count in rows:
        if status not in (KEPT, DROPPED, QUARANTINED):
            raise ValueError(f"unknown status {status!r} for {file}")
        for entry in (total, files[file], categories[category]):
            _add(entry, status, reason, count)
    return {
        **_sorted(total),
        "files": {name: _sorted(files[name]) for name in sorted(files)},
        "categories": {name: _sorted(categories[name]) for name in sorted(categories)},
    }


def balances(entry: dict) -> bool:
    """lines = kept + dropped + quarantined."""
    return entry["lines"] == entry["kept"] + sum(entry["dropped"].values()) + sum(entry["quarantined"].values())
