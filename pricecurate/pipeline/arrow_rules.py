"""Spark plumbing for the item rules: Arrow batches of raw lines in, outcomes out."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from pricecurate.pipeline.read import POSITION, SPLIT_START, line_offsets, number_lines
from pricecurate.rules import lines as item_rules
from pricecurate.rules.recipe import Recipe, price_slot
from pricecurate.tokenizer import engine as tok

_ARROW_SCHEMA = pa.schema(
    [
        pa.field("category", pa.string(), False),
        pa.field("file", pa.string(), False),
        pa.field("split_start", pa.int64(), False),  # the read split, and the position in it:
        pa.field("position", pa.int64(), False),  # numbered into ``line`` after the pass (on a tally: its first)
        pa.field("status", pa.string(), False),
        pa.field("reason", pa.string()),
        pa.field("lines", pa.int64(), False),  # input lines the row stands for
        pa.field("line_bytes", pa.int64(), False),  # their bytes as read: tallied, they show a file's skipped lines
        pa.field("parent_asin", pa.string()),
        pa.field("title", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("price_slot", pa.int32()),
        pa.field("prompt", pa.string()),
        pa.field("token_count", pa.int32()),
        pa.field("raw", pa.string()),
    ]
)


# The outcomes once numbered (``number_outcomes``): ``line`` in place of the read split and position.
NUMBERED_COLUMNS = [name for name in _ARROW_SCHEMA.names if name not in ("split_start", "position", "line_bytes")]
NUMBERED_COLUMNS.insert(NUMBERED_COLUMNS.index("file") + 1, "line")


def numbered_schema() -> T.StructType:
    """The Spark schema of ``NUMBERED_COLUMNS`` (needs a running session to convert)."""
    fields = {field.name: field for field in outcome_schema().fields}
    fields["line"] = T.StructField("line", T.LongType())
    return T.StructType([fields[name] for name in NUMBERED_COLUMNS])


def outcome_schema() -> T.StructType:
    """The Spark side of the same schema (needs a running session to convert).

    The test prompt is not shipped back from Python: it is a prefix of the
    prompt, cut in the JVM where needed (``cut_test_prompt``).
    """
    return from_arrow_schema(_ARROW_SCHEMA)


def outcome_batches(batch: pa.RecordBatch, outcomes: list[item_rules.Outcome]) -> Iterator[pa.RecordBatch]:
    """Kept and quarantined lines one row each; dropped lines one counted row per (file, split, reason).

    Dropped lines matter downstream only as counts, so tallying them here
    spares the JVM most rows of the conversion back from Arrow and of the cache.
    A tally keeps its split and first position, so every split's line count and
    first position can still be summed from the rows.
    """
    yield _itemized(batch, outcomes)
    if any(o.status == item_rules.DROPPED for o in outcomes):
        yield from _dropped_tally(batch, outcomes).to_batches()


def _itemized(batch: pa.RecordBatch, outcomes: list[item_rules.Outcome]) -> pa.RecordBatch:
    positions = [i for i, o in enumerate(outcomes) if o.status != item_rules.DROPPED]
    items = [outcomes[i] for i in positions]
    rows = batch.take(pa.array(positions, pa.int64()))
    columns = {
        "category": rows.column("category"),
        "file": rows.column("file"),
        "split_start": rows.column("split_start"),
        "position": rows.column("position"),
        "status": pa.array([o.status for o in items], pa.string()),
        "reason": pa.array([o.reason for o in items], pa.string()),
        "lines": pa.array([1] * len(items), pa.int64()),
        "line_bytes": pc.binary_length(rows.column("value")).cast(pa.int64()),
        "parent_asin": pa.array([o.parent_asin for o in items], pa.string()),
        "title": pa.array([o.title for o in items], pa.string()),
        "price": pa.array([o.price for o in items], pa.float64()),
        "price_slot": pa.array([price_slot(o.price) if o.status == item_rules.KEPT else None for o in items], pa.int32()),
        "prompt": pa.array([o.prompt for o in items], pa.string()),
        "token_count": pa.array([o.token_count for o in items], pa.int32()),
        "raw": pa.array([o.raw for o in items], pa.string()),
    }
    return pa.RecordBatch.from_arrays(list(columns.values()), schema=_ARROW_SCHEMA)


def _dropped_tally(batch: pa.RecordBatch, outcomes: list[item_rules.Outcome]) -> pa.Table:
    dropped = pa.array([o.status == item_rules.DROPPED for o in outcomes])
    reasons = pa.array([o.reason for o in outcomes], pa.string())
    counted = (
        pa.table(
            {
                "category": batch.column("category"),
                "file": batch.column("file"),
                "split_start": batch.column("split_start"),
                "position": batch.column("position"),
                "reason": reasons,
                "line_bytes": pc.binary_length(batch.column("value")).cast(pa.int64()),
            }
        )
        .filter(dropped)
        .group_by(["category", "file", "split_start", "reason"])
        .aggregate([([], "count_all"), ("position", "min"), ("line_bytes", "sum")])
    )
    n = counted.num_rows
    given = {
        "category": counted.column("category"),
        "file": counted.column("file"),
        "split_start": counted.column("split_start"),
        "position": counted.column("position_min"),
        "status": pa.array([item_rules.DROPPED] * n, pa.string()),
        "reason": counted.column("reason"),
        "lines": counted.column("count_all"),
        "line_bytes": counted.column("line_bytes_sum"),
    }
    return pa.table(
        {field.name: given.get(field.name, pa.nulls(n, field.type)) for field in _ARROW_SCHEMA}, schema=_ARROW_SCHEMA
    )


def apply_recipe(
    lines: DataFrame, rules: Recipe, spec_broadcast, sha256: str, max_record_bytes: int, builds,
    engine: str = "auto", records=None, clean_up_spaces: bool = True, kept=None,
    segments: dict[str, list[int]] | None = None,
) -> DataFrame:
    """One outcome row per input line (dropped lines tallied), by ``rules``' parameters.

    ``builds`` is an accumulator counting tokenizer builds; ``records``, if
    given, one counting the lines that went through the rules, so a run can
    prove it applied them once per line; ``kept``, if given, one counting kept
    items, for the live progress line. ``segments`` maps files read whole, as
    one split, to where their skipped lines fall (``in_segments``).
    """
    segment_starts = {name: np.asarray(starts, np.int64) for name, starts in (segments or {}).items()}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        before = tok.BUILD_COUNT
        # The engine came from the driver's choose_engine: the worker need not check the tokenizer's fit again.
        codec = tok.codec_for(spec_broadcast.value, sha256, engine, clean_up_spaces, verified=engine != "auto")
        builds.add(tok.BUILD_COUNT - before)
        for batch in batches:
            raw_lines = batch.column("value").to_pylist()
            if records is not None:
                records.add(len(raw_lines))
            with _no_cycle_collection():
                outcomes = item_rules.build_items(raw_lines, codec, max_record_bytes, rules)
            if kept is not None:
                kept.add(sum(outcome.status == item_rules.KEPT for outcome in outcomes))
            yield from outcome_batches(in_segments(batch, segment_starts) if segment_starts else batch, outcomes)

    return lines.mapInArrow(run, outcome_schema())


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused while the rules run on a batch.

    The rules hold a batch's parsed records, thousands of dicts and lists, until the batch is done, and the
    collector, woken every 700 new ones, scanned them again and again: 5% of the rules' time on the bench's
    lines (44.1 -> 41.7 us a line). The rules make no reference cycles; reference counting frees what they make.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


WARM_UP_GROUP = "pricecurate-warm-up"


def warm_up_workers(spark, spec_broadcast, sha256: str, builds, engine: str = "auto",
                    clean_up_spaces: bool = True, build_codec: bool = True) -> threading.Thread:
    """Start one Python worker per slot and build its codec (unless not ``build_codec``: a run on reused items needs
    workers for the leakage check or for signing, not the codec), in a background job, while the driver plans the run.

    A cold worker takes seconds before its first batch (the daemon's fork, imports, the tokenizer's build);
    idle workers are kept and reused by the job's ``mapInArrow`` tasks, which run the same kind of Python. The job
    is a ``mapInArrow`` too: Spark pools workers by the runner's settings, and an RDD job's would not be reused.
    """
    slots = spark.sparkContext.defaultParallelism

    def build(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if build_codec:
            before = tok.BUILD_COUNT
            tok.codec_for(spec_broadcast.value, sha256, engine, clean_up_spaces, verified=engine != "auto")
            builds.add(tok.BUILD_COUNT - before)
        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"built": pa.array([1], pa.int32())})

    def start() -> None:
        try:
            spark.sparkContext.setJobGroup(WARM_UP_GROUP, "pricecurate: start the Python workers")
            spark.range(slots, numPartitions=slots).mapInArrow(build, "built int").collect()
        except Exception:  # noqa: BLE001 - only a head start: the rules job starts its own workers if this failed
            pass

    thread = threading.Thread(target=start, name="warm-up-workers", daemon=True)
    thread.start()
    return thread


def end_warm_up(spark, thread: threading.Thread) -> None:
    """Wait for the warm-up, cancelled first if it still runs: a run that failed before its workers came up must not
    wait on it. (Spark warns of a cancelled group with no job left, so a finished warm-up is not cancelled.)"""
    if thread.is_alive():
        spark.sparkContext.cancelJobGroup(WARM_UP_GROUP)
    thread.join()


def in_segments(batch: pa.RecordBatch, segment_starts: dict[str, np.ndarray]) -> pa.RecordBatch:
    """The batch with the rows of files read whole moved from their one split to numbered segments.

    In a file read as one split, the reader skipped the lines ``pricecurate.pipeline.long_lines`` located, and a row's
    position is its index among the rows. ``segment_starts`` holds, per file, the rows before each skipped
    line (ascending): a row after k of them goes to segment 2k, the k-th skipped line's own row to 2k - 1
    (``long_line_outcomes``), so that numbering segments like splits, in order, gives every line its number.
    """
    files = batch.column("file").to_numpy(zero_copy_only=False)
    positions = batch.column("position").to_numpy()
    split_starts = batch.column("split_start").to_numpy().copy()
    for name, starts in segment_starts.items():
        rows = files == name
        split_starts[rows] = 2 * np.searchsorted(starts, positions[rows], side="right")
    return batch.set_column(batch.schema.get_field_index("split_start"), "split_start", pa.array(split_starts))


def long_line_outcomes(spark, long_lines: list[tuple[str, str, int, str]]) -> DataFrame:
    """A quarantine row (``too_large``) for each (category, file, k, raw snippet): the k-th line the reader
    skipped in a file read whole, in its segment (``in_segments``)."""
    rows = [
        {"category": category, "file": file, "split_start": 2 * k - 1, "position": 0, "status": item_rules.QUARANTINED,
         "reason": item_rules.TOO_LARGE, "lines": 1, "line_bytes": 0, "raw": raw}
        for category, file, k, raw in long_lines
    ]
    return spark.createDataFrame(pa.Table.from_pylist(rows, schema=_ARROW_SCHEMA), outcome_schema()).coalesce(1)


@dataclass(frozen=True)
class Tally:
    """One row of the pass over the outcomes: lines per (file, category, status, reason, split)."""

    file: str
    category: str
    status: str
    reason: str | None
    split_start: int
    lines: int
    first_position: int
    line_bytes: int  # the bytes of those lines as read (without their line ends)


def tally_outcomes(outcomes: DataFrame) -> list[Tally]:
    """Where every line went, per read split: the one action over the recipe's outcomes."""
    grouped = outcomes.groupBy("file", "category", "status", "reason", SPLIT_START).agg(
        F.sum("lines").alias("lines"), F.min(POSITION).alias("first_position"), F.sum("line_bytes").alias("line_bytes")
    )
    return [Tally(**row.asDict()) for row in grouped.collect()]


def number_outcomes(outcomes: DataFrame, tallies: list[Tally]) -> DataFrame:
    """The outcomes with ``line`` (1-based, null on tallies of dropped lines) in place of split and position."""
    splits: dict[tuple[str, int], tuple[int, int]] = {}
    for t in tallies:
        lines, first = splits.get((t.file, t.split_start), (0, t.first_position))
        splits[(t.file, t.split_start)] = (lines + t.lines, min(first, t.first_position))
    offsets = line_offsets((file, start, lines, first) for (file, start), (lines, first) in splits.items())
    return number_lines(outcomes.drop("line_bytes"), offsets, where=F.col("status") != item_rules.DROPPED)
