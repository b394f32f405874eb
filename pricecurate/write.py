"""Writing a run's datasets into its own data folder inside the output, then publishing it.

Nothing a run writes is read as the dataset until ``publish`` commits it (see
``pricecurate.publish``), so a failed or killed run never leaves a half-written
dataset where a good one stood.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate import publish
from pricecurate.fs import HadoopFS, redact

SPLIT_COLUMNS = ("text", "price", "category", "parent_asin", "title", "token_count")
QUARANTINE_COLUMNS = ("file", "line", "category", "reason", "raw")
MANIFEST = publish.MANIFEST
_PARTITION_DIR = "_category_dir"
_DATASET_DIR = "_dataset_dir"
WORK = "_work"  # a run's intermediate files (near-duplicate rounds), deleted before publish
CURATED = "curated"  # the items as the rules left them, for reuse (``pricecurate.reuse``)
DUPLICATES = "duplicates"  # the lines deduplication dropped, for reuse with the same dedup settings
_SCRATCH = "_spark_output"  # where Spark writes; files then move to <dataset>/category=<name>


# A write task gets at least this share of a file's rows, so a small dataset is
# not cut into many tiny files just because there are many cores.
_MIN_TASK_SHARE = 50


def write_tasks(rows: int, rows_per_file: int, cores: int) -> int:
    """Enough tasks for files of at most ``rows_per_file`` rows, and for every core when rows allow."""
    needed = -(-rows // rows_per_file)
    for_cores = min(2 * cores, -(-rows * _MIN_TASK_SHARE // rows_per_file))
    return max(1, needed, for_cores)


class OutputError(ValueError):
    """A problem with the output location, phrased for the user."""


def _is_within(inner: str, outer: str) -> bool:
    inner, outer = inner.rstrip("/") + "/", outer.rstrip("/") + "/"
    return inner.startswith(outer)


class Output:
    """One run's output: its data folder inside the output folder, then the published dataset.

    ``recover`` (what interrupted runs left) and then ``claim`` (may this run
    replace what is there?) come before anything is written.
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
        self.folder = publish.data_folder_name(started, uuid.uuid4().hex[:12])
        self.staging = f"{self.uri}/{self.folder}"

    def recover(self) -> list[str]:
        """Finish or remove what interrupted runs left (see ``publish.recover``); what was done, in words."""
        return publish.recover(self.fs, self.uri, self._card)

    def claim(self, overwrite: bool) -> None:
        """Refuse to replace a dataset without ``overwrite``, or a folder that is not a dataset at all."""
        entries = self.fs.list(self.uri) if self.fs.exists(self.uri) else []
        if not entries:
            return
        if not self.fs.exists(f"{self.uri}/{MANIFEST}"):
            visible = [entry for entry in entries if not entry.name.startswith(".")]
            if all(entry.is_dir and entry.name.startswith(publish.DATA_PREFIX) for entry in visible):
                return  # only the items an interrupted first run finished (``recover`` kept them): nothing to replace
            raise OutputError(
                f"output {redact(self.uri)} exists and is not a pricecurate dataset (no {MANIFEST}); "
                "refusing to replace it, choose another --output"
            )
        if not overwrite:
            raise OutputError(f"output {redact(self.uri)} already exists; pass --overwrite to replace it or choose another --output")

    def path(self, *parts: str) -> str:
        return "/".join([self.staging, *parts])

    def write_datasets(self, frame: DataFrame, names: list[str], rows: int, rows_per_file: int, cores: int) -> None:
        """Every dataset in one pass: ``frame`` has the split columns plus ``dataset`` (its folder),
        ``file`` and ``line``. Parquet is partitioned by category, with ``category`` also inside the files.

        ``rows`` (the frame's row count) and ``rows_per_file`` set the task
        count: rows are range-partitioned in (dataset, category, file, line)
        order, so a big category is written by many tasks and no file holds more
        than ``rows_per_file`` rows, while a category folder's files, in name
        order, still hold its rows in input order.
        """
        scratch = self.path(_SCRATCH)
        order = [_DATASET_DIR, _PARTITION_DIR, "file", "line"]
        (
            frame.select(*[F.col(c) for c in SPLIT_COLUMNS], "file", "line", F.col("dataset").alias(_DATASET_DIR),
                         F.col("category").alias(_PARTITION_DIR))
            .repartitionByRange(write_tasks(rows, rows_per_file, cores), *order)
            .sortWithinPartitions(*order)
            .drop("file", "line")
            .write.partitionBy(_DATASET_DIR, _PARTITION_DIR)
            .option("maxRecordsPerFile", rows_per_file)
            # Prompts and titles are nearly all distinct: a dictionary for them is built only to be thrown away.
            .option("parquet.enable.dictionary#text", "false")
            .option("parquet.enable.dictionary#title", "false")
            .parquet(scratch)
        )
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

    def publish(self, manifest: dict) -> list[str]:
        """Mark the data folder complete and make it the output's dataset; older data folders go after."""
        return publish.publish(self.fs, self.uri, self.folder, manifest, self._card)

    def abandon(self) -> None:
        """A failed run's data folder goes, unless the output's manifest already names it; finished items stay
        (with nothing else) for the next run to resume from."""
        if publish.published(self.fs, self.uri) == self.folder or not self.fs.exists(self.staging):
            return
        if not self.fs.exists(self.path(publish.ITEMS_DONE)):
            self.fs.delete(self.staging)
            return
        for entry in self.fs.list(self.staging):
            if entry.name not in (publish.ITEMS_DONE, CURATED, publish.DEDUP_DONE, DUPLICATES):
                self.fs.delete(entry.uri)
