"""Writing a run's datasets into its own data folder inside the output, then publishing it.

Nothing a run writes is read as the dataset until ``publish`` commits it (see
``pricecurate.output.publish``), so a failed or killed run never leaves a half-written
dataset where a good one stood.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, DataFrameWriter
from pyspark.sql import functions as F

from pricecurate.errors import OutputError
from pricecurate.output import layout, publish
from pricecurate.output.layout import CURATED, DUPLICATES
from pricecurate.spark.fs import HadoopFS, redact

SPLIT_COLUMNS = ("text", "price", "category", "parent_asin", "title", "token_count")
QUARANTINE_COLUMNS = ("file", "line", "category", "reason", "raw")
_PARTITION_DIR = "_category_dir"
_DATASET_DIR = "_dataset_dir"
_SCRATCH = "_spark_output"  # where Spark writes; files then move to <dataset>/category=<name>
_WRITE_ORDER = (_DATASET_DIR, _PARTITION_DIR, "file", "line")  # rows' order in a dataset's files
_WRITE_ORDER_TYPES = ("string", "string", "string", "long")


# A write task gets at least this share of a file's rows, so a small dataset is
# not cut into many tiny files just because there are many cores.
_MIN_TASK_SHARE = 50


def write_tasks(rows: int, rows_per_file: int, cores: int) -> int:
    """Enough tasks for files of at most ``rows_per_file`` rows, and for every core when rows allow."""
    needed = -(-rows // rows_per_file)
    for_cores = min(2 * cores, -(-rows * _MIN_TASK_SHARE // rows_per_file))
    return max(1, needed, for_cores)


def task_bounds(groups: dict[tuple, int], lines: dict[str, int], tasks: int) -> list[tuple]:
    """The first (dataset, category, file, line) of each task but the first, for tasks of about equal rows.

    ``groups`` holds the rows of each (dataset, category, file), ``lines`` each
    file's line count: a group's rows are taken as spread evenly over its
    file's lines, so no pass over the rows is needed to place the bounds.
    Counts only balance the tasks: any bounds keep the rows in order.
    """
    total = sum(groups.values())
    bounds, before = [], 0
    for key, rows in sorted(groups.items()):
        span = max(1, lines.get(key[2], 1))
        while len(bounds) < tasks - 1 and rows and before + rows > total * (len(bounds) + 1) / tasks:
            share = (total * (len(bounds) + 1) / tasks - before) / rows  # of the group's rows before the bound
            bounds.append((*key, 1 + int(share * span)))
        before += rows
    return bounds


def without_dictionary(writer: DataFrameWriter, *columns: str) -> DataFrameWriter:
    """Parquet without a dictionary for ``columns``: prompts, titles and raw lines are nearly all distinct, and a
    dictionary for them is built only to be thrown away (a fifth of writing the kept items for reuse)."""
    for column in columns:
        writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
    return writer


def _task(bounds: list[tuple], first: int = 0) -> Column:
    """The task of a row: how many bounds its place in write order reaches, found by halving."""
    if not bounds:
        return F.lit(first)
    middle = len(bounds) // 2
    place = F.struct(*[F.col(name) for name in _WRITE_ORDER])
    bound = F.struct(*[F.lit(value).cast(kind).alias(name)
                       for value, name, kind in zip(bounds[middle], _WRITE_ORDER, _WRITE_ORDER_TYPES, strict=True)])
    return F.when(place < bound, _task(bounds[:middle], first)).otherwise(
        _task(bounds[middle + 1:], first + middle + 1))


def _is_within(inner: str, outer: str) -> bool:
    inner, outer = inner.rstrip("/") + "/", outer.rstrip("/") + "/"
    return inner.startswith(outer)


class Output:
    """One run's output: its data folder inside the output folder, then the published dataset.

    ``open`` claims the output before anything is written (``publish.Claim``), ``close`` gives it back.
    """

    def __init__(self, fs: HadoopFS, output_uri: str, input_uri: str, card: Callable[[dict], str],
                 started: dt.datetime | None = None):
        self.fs = fs
        self.uri = fs.qualify(output_uri).rstrip("/")
        self._card = card
        input_qualified = fs.qualify(input_uri).rstrip("/")
        if _is_within(self.uri, input_qualified) or _is_within(input_qualified, self.uri):
            raise OutputError(
                f"output {redact(self.uri)} overlaps the input {redact(input_qualified)}; choose an output outside the input"
            )
        if fs.exists(self.uri) and not fs.is_dir(self.uri):
            raise OutputError(f"output {redact(self.uri)} is a file; choose a directory for --output")
        started = started or dt.datetime.now(dt.timezone.utc)
        run_id = uuid.uuid4().hex[:12]
        self.folder = layout.data_folder_name(started, run_id)
        self.staging = f"{self.uri}/{self.folder}"
        self.claim = publish.Claim(fs, self.uri, self.folder, run_id, card, redact(self.uri))

    def open(self, overwrite: bool, wait: bool = False, say: Callable[[str], None] = lambda _: None) -> list[str]:
        """Claim the output for this run (see ``publish.Claim.open``); what was found and done there, in words."""
        return self.claim.open(overwrite, wait, say)

    def close(self) -> None:
        self.claim.close()

    def path(self, *parts: str) -> str:
        return "/".join([self.staging, *parts])

    def write_datasets(self, frame: DataFrame, names: list[str], groups: dict[tuple, int], lines: dict[str, int],
                       rows_per_file: int, cores: int) -> None:
        """Every dataset in one pass: ``frame`` has the split columns plus ``dataset`` (its folder),
        ``file`` and ``line``. Parquet is partitioned by category, with ``category`` also inside the files.

        ``groups`` (the frame's rows per (dataset, category, file)), ``lines``
        (each file's line count) and ``rows_per_file`` set the tasks: each takes
        a range of (dataset, category, file, line), so a big category is
        written by many tasks and no file holds more than ``rows_per_file``
        rows, while a category folder's files, in name order, still hold its
        rows in input order. The ranges come from the counts (``task_bounds``),
        not from a sample of the rows, which would be one more pass over them.
        """
        scratch = self.path(_SCRATCH)
        tasks = write_tasks(sum(groups.values()), rows_per_file, cores)
        writer = (
            frame.select(*[F.col(c) for c in SPLIT_COLUMNS], "file", "line", F.col("dataset").alias(_DATASET_DIR),
                         F.col("category").alias(_PARTITION_DIR))
            .repartitionById(tasks, _task(task_bounds(groups, lines, tasks)))
            .sortWithinPartitions(*_WRITE_ORDER)
            .drop("file", "line")
            .write.partitionBy(_DATASET_DIR, _PARTITION_DIR)
            .option("maxRecordsPerFile", rows_per_file)
        )
        without_dictionary(writer, "text", "title").parquet(scratch)
        # Spark drops partition columns from the files; the folders are moved to
        # <dataset>/category=<name>, and the column itself stays in the data.
        for name in names:
            self.fs.mkdirs(self.path(name))
        for dataset in self.fs.list(scratch):
            if not (dataset.is_dir and dataset.name.startswith(_DATASET_DIR + "=")):
                continue
            name = dataset.name.split("=", 1)[1]
            for entry in self.fs.list(dataset.uri):
                if entry.is_dir and entry.name.startswith(_PARTITION_DIR + "="):
                    category = entry.name.split("=", 1)[1]
                    self.fs.rename(entry.uri, self.path(name, f"category={category}"))
        self.fs.delete(scratch)

    def write_quarantine(self, frame: DataFrame, rows: int, rows_per_file: int, cores: int) -> None:
        """JSON lines in (file, line) order, in files of at most ``rows_per_file`` lines."""
        (
            frame.select(*QUARANTINE_COLUMNS)
            .repartitionByRange(write_tasks(rows, rows_per_file, cores), "file", "line")
            .sortWithinPartitions("file", "line")
            .write.option("maxRecordsPerFile", rows_per_file)
            .json(self.path("quarantine"))
        )

    def written(self) -> None:
        """Every dataset is written: what the data folder holds now must be there when it is published."""
        self.claim.written()

    def publish(self, manifest: dict) -> list[str]:
        """Mark the data folder complete and make it the output's dataset, if this run still may
        (``publish.Claim.publish``); older data folders go after."""
        return self.claim.publish(manifest)

    def abandon(self) -> None:
        """A failed run's data folder goes, unless the output's manifest already names it; finished items stay
        (with nothing else) for the next run to resume from."""
        if publish.published(self.fs, self.uri) == self.folder or not self.fs.exists(self.staging):
            return
        if not self.fs.exists(self.path(layout.ITEMS_DONE)):
            publish.remove_folder(self.fs, self.staging)
            return
        for entry in self.fs.list(self.staging):
            if entry.name not in (layout.MARKER, layout.ITEMS_DONE, CURATED, layout.DEDUP_DONE, DUPLICATES):
                self.fs.delete(entry.uri)
