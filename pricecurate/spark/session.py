"""Build the SparkSession the job runs in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow as pa
from pyspark import SparkContext, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from pricecurate.masking import SECRET_NAME_PATTERN
from pricecurate.paths import cache_dir, local_path
from pricecurate.spark import local_fs
from pricecurate.spark.jvm_archive import java_options

DEFAULT_MASTER = "local[*]"
# How every intermediate frame is cached. PySpark's MEMORY_AND_DISK is the serialized level:
# the JVM keeps it as 1 MiB byte arrays, each of which G1 (2 MiB regions at a 4g heap) places
# alone in a region, so the heap filled at twice the cache's size (5.5M records: heap OOM).
CACHE = StorageLevel.MEMORY_AND_DISK_DESER
LOCAL_JVM_OPTIONS = "-XX:G1HeapRegionSize=32m"
# Only the quick compiler (C1), for a short local run (``short_run``): the optimising one (C2)
# compiles Spark's hot paths on the cores the job runs on, seconds a short run never earns back. Alternating runs
# on this 2-core machine: the sample run 19.3 -> 15.1 s. On big inputs C2 pays: MLlib baselines of a 1M-record
# default.yaml run took 41-47 s with it and 65-73 s without, and hot Arrow conversion is ~17% slower without it.
QUICK_COMPILER = "-XX:TieredStopAtLevel=1"
SMALL_INPUT_BYTES = 128 * 1024 * 1024  # a local input up to this size runs with QUICK_COMPILER
LOCAL_DAEMON = "pricecurate.spark.daemon"


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already open."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def resolve_master(master: str | None) -> str | None:
    if master:
        return master
    return None if under_spark_submit() else DEFAULT_MASTER


def _on_this_machine(master: str | None) -> bool:
    return master is not None and (master.startswith("local") or "127.0.0.1" in master or "localhost" in master)


def small_local_input(input_uri: str | None) -> bool:
    """Whether a run on ``input_uri`` is short enough for ``QUICK_COMPILER``: a local folder of at most
    ``SMALL_INPUT_BYTES`` (its files, as discovery lists them; a folder it cannot list is not small)."""
    folder = local_path(input_uri) if input_uri else None
    if folder is None:
        return False
    try:
        with os.scandir(folder) as entries:
            return sum(entry.stat().st_size for entry in entries if entry.is_file()) <= SMALL_INPUT_BYTES
    except OSError:
        return False


def short_run(config, input_uri: str | None, known_marks: bool = False) -> bool:
    """Whether a run's JVM work is short enough for ``QUICK_COMPILER``: a small local input, or ``config``'s reused
    items without baselines and either without near-duplicate removal (course reuse on 1M real records,
    alternating: 12.1-13.0 s with C1 against 14.3-20.1 s with C2) or with ``known_marks``: the reused run's
    near-duplicate marks apply (same settings and seed), so nothing is compared again. Near duplicates found anew
    and MLlib's baselines are long JVM work."""
    if small_local_input(input_uri):
        return True
    return bool(config.reuse_items) and not config.baseline and ("near" not in config.dedup or known_marks)


def build_session(master: str | None, extra: dict[str, str] | None = None, app_name: str = "pricecurate",
                  dump_classes_to: Path | None = None, quick_compiler: bool = False) -> SparkSession:
    """A session; a local one maps this machine's class archive (``jvm_archive``) or, given ``dump_classes_to``,
    writes one there when its JVM exits, and compiles with C1 only when ``quick_compiler`` (a short run)."""
    master = resolve_master(master)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # The recipe's outcomes are cached once and read a few times; compressing
        # the cache cost the JVM about a third of its CPU in the recipe stage.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # Spark renders every query's plan as text for its UI; a plan that reads cached
        # frames repeats their plans inside it, and near-duplicate rounds read several.
        "spark.sql.maxPlanStringLength": "1000000",
        # No _SUCCESS markers among the Parquet files users glob.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        # Spark's UI and event log hide the values of settings whose names match this: pricecurate's own rule,
        # wider than Spark's default (which shows fs.azure.account.key.*, fs.azure.sas.*, ...).
        "spark.redaction.regex": f"(?i){SECRET_NAME_PATTERN}",
    }
    if _on_this_machine(master):
        # Workers on this machine run the interpreter that has pricecurate
        # installed (PySpark reads the variable when the context starts).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # Every socket on loopback, for local mode and a cluster on 127.0.0.1 alike: the RPC and block
        # manager follow bindAddress, the web UI follows SPARK_LOCAL_IP (unset, it listens on every
        # interface). Set either to widen.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings["spark.driver.bindAddress"] = "127.0.0.1"
        settings["spark.driver.host"] = "127.0.0.1"
        if master.startswith("local"):
            settings["spark.driver.memory"] = "4g"
            # G1 gives each object of half a region or more whole regions of its own: at the 2 MiB regions
            # of a 4g heap the cache's column buffers (3-7 MB) wasted up to half of theirs, and a 64 MB
            # page for a sort found no free run of regions (5.5M records: 12 failed pages, 2 full GCs).
            # With 32 MiB regions: none of either. Default options: the user's extraJavaOptions add to them.
            archive = java_options(cache_dir(), dump_classes_to)
            settings["spark.driver.defaultJavaOptions"] = " ".join(
                [LOCAL_JVM_OPTIONS, *([QUICK_COMPILER] if quick_compiler else []), archive]).strip()
            # The workers import pyspark from the installed package, not from Spark's zip, which Python compiles
            # anew in every worker (``daemon``): a second off each run's first Python task.
            settings["spark.python.daemon.module"] = LOCAL_DAEMON
            # Files and folders written without a chmod process each (``local_fs``), when prepare compiled it; only
            # a JVM started here takes the jar on its class path (spark-submit's, or one already up, does not).
            if not under_spark_submit() and SparkContext._gateway is None:
                settings.update(local_fs.session_settings(cache_dir(), extra or {}))
    settings.update(extra or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("PRICECURATE_SPARK_LOG_LEVEL", "WARN"))
    return spark


def driver_table(spark: SparkSession, rows: list[tuple], schema: str) -> DataFrame:
    """A small table made on the driver, in one partition, read by the JVM alone.

    ``createDataFrame`` spreads a table over ``spark.default.parallelism``
    partitions (on a cluster, hundreds of tasks with almost nothing to do):
    ``coalesce`` reads them in one task. Sent as Arrow, it needs no Python
    worker, where a list or an RDD is unpickled by one (a second to start it in
    a run whose rules do not run, as on reused items).
    """
    struct = StructType.fromDDL(schema)
    columns = list(zip(*rows)) if rows else [()] * len(struct.fields)
    table = pa.table({field.name: pa.array(list(values)) for field, values in zip(struct.fields, columns)})
    return spark.createDataFrame(table, struct).coalesce(1)
