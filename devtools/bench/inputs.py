"""The input: the synthetic sample with planted near-duplicate families, read evenly over the categories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# Planted near-duplicate families (13 variants each) per 2,000 records: about 3% of the kept items have a
# near-twin, as measured on the real records in ../shared; the synthetic sample alone has none.
RECORDS_PER_PLANTED_FAMILY = 2_000
PLANTED_FILE = "meta_Video_Games.jsonl"
TINY_PER_CATEGORY = 20


def ensure_sample(dest: Path, per_category: int, planted_families: int = 0) -> int:
    """Write (or reuse) per_category records for each category in dest, plus planted near-duplicate
    families appended to one file; return the record count."""
    from devtools.near_quality import planted_records
    from pricecurate.rules.categories import CATEGORIES
    from pricecurate.sample import write_sample

    # The marker sits beside the folder, not in it, and is written last: a half-written
    # folder from an interrupted run is never mistaken for a finished one.
    marker = dest.with_name(dest.name + ".done.json")
    wanted = {"records_per_category": per_category, "categories": len(CATEGORIES), "seed": 0,
              "planted_families": planted_families}
    planted = planted_records(bases=planted_families) if planted_families else []
    total = per_category * len(CATEGORIES) + len(planted)
    if marker.exists() and dest.is_dir() and json.loads(marker.read_text()) == wanted:
        return total
    shutil.rmtree(dest, ignore_errors=True)
    write_sample(dest, records_per_category=per_category, seed=0)
    with open(dest / PLANTED_FILE, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in planted)
    marker.write_text(json.dumps(wanted))
    return total


def category_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("meta_*.jsonl"))


def read_even_subset(folder: Path, count: int) -> list[str]:
    """The first lines of each category file, `count` in all, split as evenly as possible."""
    files = category_files(folder)
    share, extra = divmod(count, len(files))
    lines: list[str] = []
    for index, path in enumerate(files):
        wanted = share + (1 if index < extra else 0)
        with open(path, encoding="utf-8") as handle:
            for _, line in zip(range(wanted), handle):
                lines.append(line)
    return lines


def candidate_texts(folder: Path) -> list[str]:
    """Every text the recipe hands to the tokenizer, i.e. the Candidates over the whole input."""
    from pricecurate.rules import recipe

    texts = []
    for path in category_files(folder):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                prepared = recipe.prepare(json.loads(line))
                if isinstance(prepared, recipe.Candidate):
                    texts.append(prepared.text)
    return texts
