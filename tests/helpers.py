"""Reading a written dataset back, the way a user's tools would."""

from __future__ import annotations

import glob
import json
import os

import pyarrow.parquet as pq

SPLIT_COLUMNS = ["text", "price", "category", "parent_asin", "title", "token_count"]


def split_files(output: str, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(output, split, "category=*", "*.parquet")))


def split_rows(output: str, split: str) -> list[tuple]:
    """All rows of a split as sorted tuples (content, not file names)."""
    rows = []
    for path in split_files(output, split):
        table = pq.read_table(path)
        assert table.column_names == SPLIT_COLUMNS, path
        rows.extend(zip(*[table.column(c).to_pylist() for c in SPLIT_COLUMNS]))
    return sorted(rows)


def manifest(output: str) -> dict:
    with open(os.path.join(output, "manifest.json"), encoding="utf-8") as handle:
        return json.load(handle)
