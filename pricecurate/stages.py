"""Spark plumbing for the item rules: Arrow batches of raw lines in, outcomes out."""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from pricecurate import items as item_rules
from pricecurate import tokenizer as tok
from pricecurate.recipe import PRICE_PREFIX, price_slot

_ARROW_SCHEMA = pa.schema(
    [
        pa.field("category", pa.string(), False),
        pa.field("file", pa.string(), False),
        pa.field("line", pa.int64(), False),
        pa.field("status", pa.string(), False),
        pa.field("reason", pa.string()),
        pa.field("parent_asin", pa.string()),
        pa.field("title", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("price_slot", pa.int32()),
        pa.field("prompt", pa.string()),
        pa.field("token_count", pa.int32()),
        pa.field("raw", pa.string()),
    ]
)


def outcome_schema() -> T.StructType:
    """The Spark side of the same schema (needs a running session to convert).

    The test prompt is not shipped back from Python: it is a prefix of the
    prompt, cut in the JVM where needed (``cut_test_prompt()``).
    """
    return from_arrow_schema(_ARROW_SCHEMA)


def cut_test_prompt() -> Column:
    """``recipe.make_test_prompt`` as a column: the prompt up to its first price prefix, inclusive."""
    return F.concat(F.substring_index("prompt", PRICE_PREFIX, 1), F.lit(PRICE_PREFIX))


def outcomes_to_arrow(batch: pa.RecordBatch, outcomes: list[item_rules.Outcome]) -> pa.RecordBatch:
    kept = [o.status == item_rules.KEPT for o in outcomes]
    columns = {
        "category": batch.column("category"),
        "file": batch.column("file"),
        "line": batch.column("line"),
        "status": pa.array([o.status for o in outcomes], pa.string()),
        "reason": pa.array([o.reason for o in outcomes], pa.string()),
        "parent_asin": pa.array([o.parent_asin for o in outcomes], pa.string()),
        # Titles of dropped records are not needed downstream; leaving them out
        # keeps the cached outcomes small.
        "title": pa.array([o.title if k else None for o, k in zip(outcomes, kept)], pa.string()),
        "price": pa.array([o.price for o in outcomes], pa.float64()),
        "price_slot": pa.array([price_slot(o.price) if k else None for o, k in zip(outcomes, kept)], pa.int32()),
        "prompt": pa.array([o.prompt for o in outcomes], pa.string()),
        "token_count": pa.array([o.token_count for o in outcomes], pa.int32()),
        "raw": pa.array([o.raw for o in outcomes], pa.string()),
    }
    return pa.RecordBatch.from_arrays(list(columns.values()), schema=_ARROW_SCHEMA)


def apply_recipe(
    lines: DataFrame, spec_broadcast, sha256: str, max_record_bytes: int, builds, engine: str = "auto"
) -> DataFrame:
    """One outcome row per input line. ``builds`` is an accumulator counting tokenizer builds."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        before = tok.BUILD_COUNT
        codec = tok.codec_for(spec_broadcast.value, sha256, engine)
        builds.add(tok.BUILD_COUNT - before)
        for batch in batches:
            raw_lines = batch.column("value").to_pylist()
            outcomes = item_rules.build_items(raw_lines, codec, max_record_bytes)
            yield outcomes_to_arrow(batch, outcomes)

    return lines.mapInArrow(run, outcome_schema())
