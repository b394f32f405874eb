"""Where every input line went: kept, dropped by reason, or quarantined by reason."""

from __future__ import annotations

from pricecurate.rules.lines import DROPPED, KEPT, QUARANTINED


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


def build_accounting(rows, files: dict[str, str] | None = None) -> dict:
    """From (file, category, status, reason, count) rows to the manifest's ``accounting`` section.

    ``files`` maps every input file to its category, so empty files show up with zero lines.
    """
    total = _empty()
    by_file = {name: _empty() for name in files or {}}
    by_category = {category: _empty() for category in (files or {}).values()}
    for file, category, status, reason, count in rows:
        if status not in (KEPT, DROPPED, QUARANTINED):
            raise ValueError(f"unknown status {status!r} for {file}")
        for entry in (total, by_file.setdefault(file, _empty()), by_category.setdefault(category, _empty())):
            _add(entry, status, reason, count)
    return {
        **_sorted(total),
        "files": {name: _sorted(by_file[name]) for name in sorted(by_file)},
        "categories": {name: _sorted(by_category[name]) for name in sorted(by_category)},
    }

