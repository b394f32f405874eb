"""Small published datasets made by hand, laid out as a run writes them, for the export and evaluate tests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pricecurate.rules.recipe import COURSE_2024, make_prompt, make_test_prompt

DATA_FOLDER = "data-20261127T000000-handmade"


def row(description: str, price: float, category: str, asin: str, split: str) -> dict:
    """A dataset row; the text is the course prompt (cut at the price prefix in test)."""
    prompt = make_prompt(description, price)
    text = make_test_prompt(prompt) if split == "test" else prompt
    return {"text": text, "price": price, "category": category, "parent_asin": asin,
            "title": description.split("\n")[0], "token_count": len(text) // 4}


def write_dataset(output: Path, files: dict[str, dict[str, list[list[dict]]]], tokenizer: dict | None = None) -> Path:
    """``files[split][category]`` lists the rows of each Parquet file, in file name order."""
    data = output / DATA_FOLDER
    for split, categories in files.items():
        for category, parts in categories.items():
            folder = data / split / f"category={category}"
            folder.mkdir(parents=True)
            for number, rows in enumerate(parts):
                table = pa.Table.from_pylist(rows, schema=pa.schema([
                    ("text", pa.string()), ("price", pa.float64()), ("category", pa.string()),
                    ("parent_asin", pa.string()), ("title", pa.string()), ("token_count", pa.int32())]))
                pq.write_table(table, folder / f"part-{number:05d}-x.c000.snappy.parquet")
    sizes = {split: sum(len(rows) for parts in files.get(split, {}).values() for rows in parts)
             for split in ("train", "validation", "test")}
    manifest = {"recipe": COURSE_2024.describe(), "splits": {"sizes": sizes}, "data": DATA_FOLDER}
    if tokenizer is not None:
        manifest["tokenizer"] = tokenizer
    text = json.dumps(manifest, indent=2)
    (data / "manifest.json").write_text(text)
    (output / "manifest.json").write_text(text)
    return output


def storage_order(files: dict[str, list[list[dict]]]) -> list[dict]:
    """A split's rows as the export reads them: categories by name, files in order, rows as written."""
    return [r for category in sorted(files) for rows in files[category] for r in rows]
