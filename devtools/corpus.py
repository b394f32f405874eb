"""A synthetic corpus with the category proportions of the full Amazon Reviews 2023 metadata.

The scale-out projection (``scripts/scaleout.py``) runs the job on N records as
a scale model of the full 48.2M-record dump: for the model to have the full
run's task structure, each category must hold its real share of the records,
so one big category (Unknown, over a quarter of the dump) weighs as it will.
Records come from ``pricecurate.sample``, so the bytes are deterministic.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pricecurate.sample import write_category_file

FULL_DATASET_RECORDS = 48_200_000

# Records per category in the 2023 release, in millions (rounded, so they sum to 48.105, not 48.2).
FULL_DATASET_MILLIONS: Mapping[str, float] = {
    "Unknown": 13.2,
    "Clothing_Shoes_and_Jewelry": 7.2,
    "Books": 4.4,
    "Home_and_Kitchen": 3.7,
    "Automotive": 2.0,
    "Electronics": 1.6,
    "Kindle_Store": 1.6,
    "Sports_and_Outdoors": 1.6,
    "Tools_and_Home_Improvement": 1.5,
    "Cell_Phones_and_Accessories": 1.3,
    "Beauty_and_Personal_Care": 1.0,
    "Toys_and_Games": 0.89,
    "Patio_Lawn_and_Garden": 0.85,
    "Amazon_Fashion": 0.83,
    "Arts_Crafts_and_Sewing": 0.80,
    "Health_and_Household": 0.80,
    "Movies_and_TV": 0.75,
    "Office_Products": 0.71,
    "CDs_and_Vinyl": 0.70,
    "Grocery_and_Gourmet_Food": 0.60,
    "Pet_Supplies": 0.49,
    "Industrial_and_Scientific": 0.43,
    "Baby_Products": 0.22,
    "Musical_Instruments": 0.21,
    "Handmade_Products": 0.16,
    "Video_Games": 0.14,
    "All_Beauty": 0.11,
    "Appliances": 0.09,
    "Software": 0.09,
    "Digital_Music": 0.07,
    "Health_and_Personal_Care": 0.06,
    "Magazine_Subscriptions": 0.003,
    "Gift_Cards": 0.001,
    "Subscription_Boxes": 0.001,
}


def scaled_counts(records: int) -> dict[str, int]:
    """``records`` split over the categories in the full dataset's proportions.

    Largest-remainder rounding, so the counts sum to exactly ``records``; every
    category gets at least one record (a missing file would change the job's
    plan), taken from the categories whose rounded count exceeds its quota most.
    """
    if records < len(FULL_DATASET_MILLIONS):
        raise ValueError(f"records must be at least {len(FULL_DATASET_MILLIONS)} (one per category), got {records}")
    total = sum(FULL_DATASET_MILLIONS.values())
    quotas = {name: records * millions / total for name, millions in FULL_DATASET_MILLIONS.items()}
    counts = {name: math.floor(quota) for name, quota in quotas.items()}
    # Ties go to the table's order (bigger categories first), which keeps the result stable.
    by_remainder = sorted(quotas, key=lambda name: quotas[name] - counts[name], reverse=True)
    for name in by_remainder[: records - sum(counts.values())]:
        counts[name] += 1
    for name in [n for n, count in counts.items() if count == 0]:
        donor = max((n for n in counts if counts[n] > 1), key=lambda n: counts[n] - quotas[n])
        counts[donor] -= 1
        counts[name] = 1
    return counts


def category_path(dest: Path, category: str) -> Path:
    return dest / f"meta_{category}.jsonl"


def _write_one(task: tuple[str, str, int, int]) -> str:
    dest, category, count, seed = task
    return str(write_category_file(category_path(Path(dest), category), category, count, seed))


def write_scaled_corpus(dest: str | Path, records: int, seed: int = 0, jobs: int = 2) -> list[Path]:
    """Write one ``meta_<Category>.jsonl`` per category, ``scaled_counts(records)`` lines in all.

    Each category's records depend only on (category, count, seed), so the
    files are byte-identical whatever ``jobs`` is; ``jobs`` > 1 writes
    categories in that many processes, the biggest first so they finish together.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    counts = scaled_counts(records)
    tasks = [(str(dest), name, count, seed) for name, count in sorted(counts.items(), key=lambda kv: -kv[1])]
    return written_files(_write_one, tasks, jobs)


def written_files(write, tasks: list[tuple], jobs: int) -> list[Path]:
    """``write(task)`` for each task (in ``jobs`` processes when more than one), the files it returns, sorted."""
    if jobs <= 1:
        written = [write(task) for task in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            written = list(pool.map(write, tasks))
    return sorted(Path(path) for path in written)


def ensure_scaled_corpus(dest: str | Path, records: int, seed: int = 0, jobs: int = 2) -> Path:
    """``write_scaled_corpus`` unless ``dest`` already holds that corpus.

    A marker file beside ``dest``, written last, names what it holds; without it
    (a run killed while writing) or with other counts, the folder is written anew.
    """
    dest = Path(dest)
    marker = dest.with_name(dest.name + ".done.json")
    wanted = {"records": records, "seed": seed, "proportions": "full-dataset"}
    if dest.is_dir() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    write_scaled_corpus(dest, records, seed=seed, jobs=jobs)
    marker.write_text(json.dumps(wanted))
    return dest
