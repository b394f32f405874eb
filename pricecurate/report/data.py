"""Read a written dataset and its manifest into the numbers the report shows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pricecurate.paths import local_path

SPLITS = ("train", "validation", "test")
SAMPLE_PROMPTS = 3


@dataclass
class Rows:
    """Price and token count of the rows of one or more splits, with each row's category."""

    price: np.ndarray
    token_count: np.ndarray
    category: np.ndarray
    what: str = ""  # which rows these are, in words, for a plot's title

    def __len__(self) -> int:
        return len(self.price)

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        if not parts:
            return Rows(np.empty(0), np.empty(0), np.empty(0, dtype=object))
        columns = ("price", "token_count", "category")
        return Rows(*(np.concatenate([getattr(part, name) for part in parts]) for name in columns))


# ---------------------------------------------------------------------------------------------------- reading


def local_dir(output_dir: str | Path) -> Path:
    # The job prints outputs as "file:/path"; accept that spelling too.
    return Path(local_path(str(output_dir)) or output_dir)


def _split_files(root: Path, split: str) -> list[tuple[str, Path]]:
    """(category, file) for every parquet file of a split; a missing split gives no files."""
    files = []
    for directory in sorted((root / split).glob("*")):
        if directory.is_dir() and "=" in directory.name:
            # Spark escapes special characters in partition values (e.g. "/" as %2F).
            category = unquote(directory.name.split("=", 1)[1])
            files.extend((category, path) for path in sorted(directory.glob("*.parquet")))
    return files


def read_rows(root: Path, split: str) -> Rows:
    parts = []
    for category, path in _split_files(root, split):
        # ParquetFile reads just this file: no hive partition inference, no duplicated category column.
        table = pq.ParquetFile(path).read(columns=["price", "token_count"])
        price = table.column("price").to_numpy().astype(float)
        tokens = table.column("token_count").to_numpy().astype(float)
        parts.append(Rows(price, tokens, np.full(len(price), category, dtype=object)))
    return Rows.concat(parts)


def first_prompts(root: Path, split: str, count: int) -> list[str]:
    """The first ``count`` prompts of a split in text order: deterministic, whatever the file layout."""
    candidates = []
    for _, path in _split_files(root, split):
        texts = pq.ParquetFile(path).read(columns=["text"]).column("text")
        texts = texts.filter(pc.is_valid(texts))
        # Only each file's first few can be among the overall first few: never hold a whole split in memory.
        candidates.extend(texts.take(pc.sort_indices(texts)[:count]).to_pylist())
    return sorted(candidates)[:count]


# ---------------------------------------------------------------------------------------------------- numbers


def finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _category_table(manifest: dict) -> dict[str, dict]:
    """Per category: the manifest's funnel counts plus its drop and quarantine reasons."""
    accounting = manifest.get("accounting", {}).get("categories", {})
    table = {}
    for category in sorted(set(manifest.get("categories", {})) | set(accounting)):
        counts = manifest.get("categories", {}).get(category, {})
        reasons = accounting.get(category, {})
        table[category] = {
            "lines": counts.get("lines", reasons.get("lines", 0)),
            "dropped": dict(reasons.get("dropped", {})),
            "quarantined": sum(reasons.get("quarantined", {}).values()),
            "kept": counts.get("kept", reasons.get("kept", 0)),
            "balanced": counts.get("balanced", 0),
            **{split: counts.get(split, 0) for split in SPLITS},
        }
    return table


EVERY_BALANCED_ITEM = "every balanced item, at its $1 price slot"
SPLIT_MEMBERS = "the rows of train + validation + test"


def balanced_rows(manifest: dict, split_rows: dict[str, Rows]) -> Rows:
    """The balanced set's prices, each at its $1 slot (the rounded price), from the manifest (every balanced
    item, in a split or not); an earlier version's manifest, without them, gives the split rows instead."""
    slots = manifest.get("balanced_by_price_slot")
    if slots is None:
        members = Rows.concat(list(split_rows.values()))
        return Rows(members.price, members.token_count, members.category, SPLIT_MEMBERS)
    prices = np.repeat(np.array([float(slot) for slot in slots], dtype=float),
                       np.array(list(slots.values()), dtype=np.int64))
    return Rows(prices, np.full(len(prices), np.nan), np.full(len(prices), "", dtype=object), EVERY_BALANCED_ITEM)


def summarise(manifest: dict, items: Rows, after: Rows, split_rows: dict[str, Rows], samples: dict) -> dict:
    """Every number of the report (written as report.json); ``per_category`` feeds the plots and funnel table."""
    accounting = manifest.get("accounting", {})
    tokens = finite(items.token_count)
    return {
        "items": len(items),
        "token_count_mean": float(tokens.mean()) if len(tokens) else None,
        "token_count_max": int(tokens.max()) if len(tokens) else None,
        "price_mean_before": float(finite(items.price).mean()) if len(finite(items.price)) else None,
        "price_mean_after": float(finite(after.price).mean()) if len(finite(after.price)) else None,
        "after_balancing_rows": len(after),
        **{split: len(rows) for split, rows in split_rows.items()},
        "lines": accounting.get("lines", 0),
        "kept": accounting.get("kept", 0),
        "dropped": dict(accounting.get("dropped", {})),
        "quarantined": dict(accounting.get("quarantined", {})),
        "balanced": manifest.get("balanced", 0),
        "splits": dict(manifest.get("splits", {}).get("sizes", {})),
        "tokenizer": manifest.get("tokenizer", {}).get("name"),
        "per_category": _category_table(manifest),
        "rows_by_category": _rows_by_category(items, split_rows),
        "samples": samples,
        "near_duplicates": manifest.get("near_duplicates"),
        "leakage": manifest.get("leakage"),
    }


def _rows_by_category(items: Rows, split_rows: dict[str, Rows]) -> dict[str, dict[str, int]]:
    """Row counts per category as found in the parquet files (a cross-check of the manifest)."""
    counted = {"items": Counter(items.category)}
    counted.update({split: Counter(rows.category) for split, rows in split_rows.items()})
    categories = sorted(set().union(*counted.values()))
    return {c: {name: counts.get(c, 0) for name, counts in counted.items()} for c in categories}
