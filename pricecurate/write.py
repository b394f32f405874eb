"""Staged output and atomic publish.

Everything is written into a hidden staging folder next to the output; only a
finished dataset is renamed into place, so a failed or killed run never leaves
a half-written dataset where a good one stood.
"""

from __future__ import annotations

import json
import posixpath
import uuid

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.fs import HadoopFS, redact

SPLIT_COLUMNS = ("text", "price", "category", "parent_asin", "title", "token_count")
QUARANTINE_COLUMNS = ("file", "line", "category", "reason", "raw")
MANIFEST = "manifest.json"
_PARTITION_DIR = "_category_dir"
_LEFTOVER_MARK = ".pricecurate-"


class OutputError(ValueError):
    """A problem with the output location, phrased for the user."""


def _parent_and_name(uri: str) -> tuple[str, str]:
    trimmed = uri.rstrip("/")
    parent, name = posixpath.split(trimmed)
    return parent, name


def _is_within(inner: str, outer: str) -> bool:
    inner, outer = inner.rstrip("/") + "/", outer.rstrip("/") + "/"
    return inner.startswith(outer)


class Output:
    """One run's output: a staging folder, then the published dataset."""

    def __init__(self, fs: HadoopFS, output_uri: str, input_uri: str, overwrite: bool):
        self.fs = fs
        self.uri = fs.qualify(output_uri).rstrip("/")
        input_qualified = fs.qualify(input_uri).rstrip("/")
        if _is_within(self.uri, input_qualified) or _is_within(input_qualified, self.uri):
            raise OutputError(
                f"output {redact(self.uri)} overlaps the input {redact(input_qualified)}; choose an output outside the input"
            )
        if fs.exists(self.uri) and not fs.is_dir(self.uri):
            raise OutputError(f"output {redact(self.uri)} is a file; choose a directory for --output")
        self.existing = fs.exists(self.uri) and bool(fs.list(self.uri))
        if self.existing and not overwrite:
            raise OutputError(f"output {redact(self.uri)} already exists; pass --overwrite to replace it or choose another --output")
        if self.existing and not fs.exists(self.uri + "/" + MANIFEST):
            raise OutputError(
                f"output {redact(self.uri)} exists and is not a pricecurate dataset (no {MANIFEST}); "
                "refusing to replace it, choose another --output"
            )
        parent, name = _parent_and_name(self.uri)
        self._parent, self._name = parent, name
        run_id = uuid.uuid4().hex[:12]
        self.staging = f"{parent}/.{name}{_LEFTOVER_MARK}staging-{run_id}"
        self._retired = f"{parent}/.{name}{_LEFTOVER_MARK}old-{run_id}"

    def clean_leftovers(self) -> list[str]:
        """Remove staging or retired folders that killed runs left next to this output."""
        removed = []
        if not self.fs.exists(self._parent):
            return removed
        prefix = f".{self._name}{_LEFTOVER_MARK}"
        for entry in self.fs.list(self._parent):
            if entry.name.startswith(prefix):
                self.fs.delete(entry.uri)
                removed.append(entry.name)
        return removed

    def path(self, *parts: str) -> str:
        return "/".join([self.staging, *parts])

    def write_split(self, frame: DataFrame, name: str, text_column: str) -> None:
        """Parquet partitioned by category, with ``category`` also inside the files."""
        columns = [F.col(text_column).alias("text")] + [F.col(c) for c in SPLIT_COLUMNS[1:]]
        (
            frame.select(*columns, "file", "line", F.col("category").alias(_PARTITION_DIR))
            .repartition(_PARTITION_DIR)
            .sortWithinPartitions(_PARTITION_DIR, "file", "line")
            .drop("file", "line")
            .write.partitionBy(_PARTITION_DIR)
            .parquet(self.path(name))
        )
        # Spark drops partition columns from the files; the folders are renamed
        # to the Hive spelling, and the column itself stays in the data.
        for entry in self.fs.list(self.path(name)):
            if entry.is_dir and entry.name.startswith(_PARTITION_DIR + "="):
                category = entry.name.split("=", 1)[1]
                self.fs.rename(entry.uri, self.path(name, f"category={category}"))

    def write_quarantine(self, frame: DataFrame) -> None:
        frame.select(*QUARANTINE_COLUMNS).coalesce(1).sortWithinPartitions("file", "line").write.json(
            self.path("quarantine")
        )

    def write_text(self, relative: str, text: str) -> None:
        self.fs.write_text(self.path(relative), text)

    def write_json(self, relative: str, value) -> None:
        self.write_text(relative, json.dumps(value, indent=2, sort_keys=False) + "\n")

    def publish(self) -> None:
        """Swap the finished staging folder into place; the old dataset goes only after."""
        if self.fs.exists(self.uri):
            self.fs.rename(self.uri, self._retired)
        self.fs.rename(self.staging, self.uri)
        self.fs.delete(self._retired)

    def abandon(self) -> None:
        self.fs.delete(self.staging)
