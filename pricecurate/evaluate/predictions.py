"""Reading a predictions file: one row per ``parent_asin`` with a number or a model's raw text.

CSV, JSON lines or Parquet, by extension. The prediction is the first column
present of ``prediction``, ``price`` (numbers, or texts holding one) and
``completion`` (a model's reply). A text gives the first number after the price
prefix when it has the prefix, else its first number, with thousands commas
removed ("Price is $1,299.99" → 1299.99); a text with no number, or an empty or
non-finite value, counts as unparsable and predicts 0, as the course scored it.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pricecurate.errors import UserError

ID_COLUMN = "parent_asin"
VALUE_COLUMNS = ("prediction", "price", "completion")  # the first one present is scored
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
EXAMPLES = 3  # ids quoted in an error message

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d)")


class EvaluationError(UserError, ValueError):
    """Predictions that cannot be scored against the dataset, phrased for the user (exit code 2)."""


def parse_price_text(text: str, prefix: str) -> float | None:
    """The first number after ``prefix`` (or in the whole text without it); None when there is none."""
    at = text.find(prefix) if prefix else -1
    tail = text[at + len(prefix):] if at >= 0 else text
    match = _NUMBER.search(_THOUSANDS.sub("", tail))
    return float(match.group()) if match else None


def prediction_value(value, prefix: str) -> float | None:
    """A cell's prediction: a finite number as it is, a text parsed; None when unparsable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        parsed = parse_price_text(value, prefix)
        return parsed if parsed is not None and math.isfinite(parsed) else None
    return None


@dataclass
class Predictions:
    """What a predictions file predicts, per id."""

    path: str
    column: str
    by_id: dict[str, float]
    unparsable: list[str]  # ids whose value could not be read as a number (predicted 0)
    duplicates: dict[str, int]  # ids named more than once, with how often

    @property
    def rows(self) -> int:
        return len(self.by_id) + sum(count - 1 for count in self.duplicates.values())


def _csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte order mark
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _jsonl_rows(path: Path) -> tuple[list[str], list[dict]]:
    rows, columns = [], {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise EvaluationError(f"{path} line {number} is not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise EvaluationError(f"{path} line {number} is not a JSON object")
            columns.update(dict.fromkeys(row))
            rows.append(row)
    return list(columns), rows


def _parquet_rows(path: Path) -> tuple[list[str], list[dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged or foreign file
        raise EvaluationError(f"{path} is not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    return table.column_names, table.to_pylist()


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise EvaluationError(f"{path}: unknown extension {path.suffix!r}; use .csv, .jsonl or .parquet")
    if not path.is_file():
        raise EvaluationError(f"predictions file {path} does not exist")
    try:
        return {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[kind](path)
    except UnicodeDecodeError as exc:
        raise EvaluationError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise EvaluationError(f"{path} is not readable CSV ({exc})") from None


def load_predictions(path: str | Path, prefix: str) -> Predictions:
    """Read ``path``; one-line EvaluationError for a missing id column, no value column or an id that is not text."""
    path = Path(path)
    columns, rows = _read_rows(path)
    if ID_COLUMN not in columns:
        raise EvaluationError(f"{path} has no {ID_COLUMN} column (columns: {', '.join(map(str, columns)) or 'none'})")
    column = next((name for name in VALUE_COLUMNS if name in columns), None)
    if column is None:
        raise EvaluationError(f"{path} has none of the columns {', '.join(VALUE_COLUMNS)}; "
                              "give a number (prediction or price) or the model's text (completion)")
    by_id, unparsable, seen = {}, [], Counter()
    for number, row in enumerate(rows, 1):
        asin = row.get(ID_COLUMN)
        if not isinstance(asin, str) or not asin:
            raise EvaluationError(f"{path} row {number}: {ID_COLUMN} must be a non-empty text, got {asin!r}")
        seen[asin] += 1
        value = prediction_value(row.get(column), prefix)
        if value is None:
            unparsable.append(asin)
            value = 0.0
        by_id.setdefault(asin, value)
    duplicates = {asin: count for asin, count in seen.items() if count > 1}
    return Predictions(str(path), column, by_id, unparsable, duplicates)


def _examples(ids) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:EXAMPLES])
    return shown + (", ..." if len(ids) > EXAMPLES else "")


def match_problems(predictions: Predictions, split: str, split_ids: set[str]) -> list[str]:
    """Duplicate, unknown and missing ids, one phrase each (empty when every row of the split has one prediction)."""
    found = []
    if predictions.duplicates:
        found.append(f"{len(predictions.duplicates):,} id(s) appear more than once "
                     f"(e.g. {_examples(predictions.duplicates)})")
    unknown = predictions.by_id.keys() - split_ids
    if unknown:
        found.append(f"{len(unknown):,} id(s) are not in the {split} split (e.g. {_examples(unknown)})")
    missing = split_ids - predictions.by_id.keys()
    if missing:
        found.append(f"{len(missing):,} of {len(split_ids):,} {split} id(s) have no prediction "
                     f"(e.g. {_examples(missing)})")
    return found
