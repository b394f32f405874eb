"""Reading a published dataset back, one split at a time, in a fixed order and in bounded memory.

``export`` and ``evaluate`` read the dataset a run published: the output's
``manifest.json`` names the data folder, and each split holds
``<split>/category=<C>/*.parquet``. A local folder (a plain path or ``file:``)
is read with pyarrow, one record batch at a time; any other Hadoop URI
(``hdfs://``, ``s3a://``) through Spark, one partition at a time with
``toLocalIterator``. Neither ever holds a whole split on the driver.

Row order is the dataset's storage order: categories by folder name, each
category's files by name, each file's rows as stored. The job writes a category's
files so that in name order they hold its rows in input order (file, then line),
so this order depends only on the rows, not on how many files they were cut
into, and both readers give the same rows in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from pricecurate.errors import InputError
from pricecurate.output.layout import DATA_KEY, MANIFEST, data_prefix
from pricecurate.paths import local_path
from pricecurate.spark.fs import redact

SPLIT_COLUMNS = ("text", "price", "category", "parent_asin", "title", "token_count")
SPLITS = ("train", "validation", "test")  # the splits meant for training and scoring, in this order
BATCH_ROWS = 4096  # rows per Arrow batch on the local path: a few MB of prompts


def _category_of(folder_name: str) -> str | None:
    # Spark escapes special characters in partition values (e.g. "/" as %2F).
    return unquote(folder_name.split("=", 1)[1]) if folder_name.startswith("category=") else None


class Dataset:
    """A published dataset: its manifest and the rows of each split."""

    def __init__(self, uri: str, manifest: dict):
        self.uri = uri
        self.manifest = manifest

    @property
    def data_folder(self) -> str:
        """The published data folder's name ("" for an earlier version's flat layout)."""
        return self.manifest.get(DATA_KEY) or ""

    def split_sizes(self) -> dict[str, int]:
        """Rows per split as the manifest counts them; splits with no rows are left out."""
        sizes = (self.manifest.get("splits") or {}).get("sizes") or {}
        return {split: int(sizes[split]) for split in SPLITS if sizes.get(split)}

    def check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        if split not in self.split_sizes():
            present = ", ".join(self.split_sizes()) or "none"
            raise InputError(f"dataset {redact(self.uri)} has no {split} split (it has: {present})")

    def rows(self, split: str, columns: tuple[str, ...] = SPLIT_COLUMNS) -> Iterator[dict]:
        """Every row of ``split`` as a dict of ``columns``, in storage order."""
        raise NotImplementedError


class LocalDataset(Dataset):
    def __init__(self, uri: str, root: Path, manifest: dict):
        super().__init__(uri, manifest)
        self._data = root / data_prefix(manifest)

    def _files(self, split: str) -> list[tuple[str, Path]]:
        found = []
        for folder in sorted((self._data / split).glob("category=*")):
            category = _category_of(folder.name)
            if folder.is_dir() and category is not None:
                found.extend((category, path) for path in sorted(folder.glob("*.parquet")))
        return found

    def rows(self, split: str, columns: tuple[str, ...] = SPLIT_COLUMNS) -> Iterator[dict]:
        import pyarrow.parquet as pq

        for _category, path in self._files(split):
            with pq.ParquetFile(path) as parquet:
                missing = [c for c in columns if c not in parquet.schema_arrow.names]
                if missing:
                    raise InputError(f"{path} has no column(s) {', '.join(missing)}; is it a pricecurate dataset?")
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
                    yield from batch.to_pylist()


class SparkDataset(Dataset):
    def __init__(self, uri: str, spark, manifest: dict):
        super().__init__(uri, manifest)
        self.spark = spark
        self.data_uri = uri.rstrip("/") + "/" + data_prefix(manifest).rstrip("/")  # the published data folder

    def rows(self, split: str, columns: tuple[str, ...] = SPLIT_COLUMNS) -> Iterator[dict]:
        from pyspark.sql import functions as F

        from pricecurate.spark.fs import HadoopFS

        fs = HadoopFS(self.spark)
        split_uri = f"{self.data_uri}/{split}"
        if not fs.is_dir(split_uri):
            return
        for folder in fs.list(split_uri):  # sorted by name
            if not (folder.is_dir and _category_of(folder.name) is not None):
                continue
            # Reading a category folder itself (not the split) infers no partition column; the files hold
            # ``category``. The file name and row index give the storage order back after Spark's split.
            frame = (
                self.spark.read.parquet(folder.uri)
                .select(*columns, F.col("_metadata.file_name").alias("_file"),
                        F.col("_metadata.row_index").alias("_row"))
                .orderBy("_file", "_row")
                .drop("_file", "_row")
            )
            for row in frame.toLocalIterator(prefetchPartitions=False):
                yield row.asDict()


def _read_manifest_text(text: str | None, uri: str) -> dict:
    if text is None:
        raise InputError(f"{redact(uri)} has no {MANIFEST}; pass an output folder written by `pricecurate run`")
    try:
        manifest = json.loads(text)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise InputError(f"{redact(uri)}/{MANIFEST} is not a JSON object; is the output folder damaged?")
    return manifest


@contextmanager
def open_dataset(uri: str, master: str | None = None, use_spark: bool | None = None) -> Iterator[Dataset]:
    """The published dataset at ``uri``; a Spark session is started for a non-local URI and stopped after.

    ``use_spark`` forces one reader (None: pyarrow for a local folder, Spark otherwise).
    """
    local = local_path(uri)
    root = Path(local) if local is not None else None
    if root is not None and not use_spark:
        manifest_path = root / MANIFEST
        text = manifest_path.read_text(encoding="utf-8") if manifest_path.is_file() else None
        yield LocalDataset(uri, root, _read_manifest_text(text, uri))
        return

    from pyspark.sql import SparkSession

    from pricecurate.spark.fs import HadoopFS
    from pricecurate.spark.session import build_session

    active = SparkSession.getActiveSession()
    spark = active or build_session(master)
    try:
        fs = HadoopFS(spark)
        uri = fs.qualify(uri).rstrip("/")  # a plain local path too, when Spark reads it
        manifest_uri = f"{uri.rstrip('/')}/{MANIFEST}"
        text = fs.read_text(manifest_uri) if fs.exists(manifest_uri) else None
        yield SparkDataset(uri, spark, _read_manifest_text(text, uri))
    finally:
        if active is None:
            spark.stop()
