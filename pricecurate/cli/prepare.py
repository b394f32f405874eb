"""``pricecurate prepare``: build this machine's JVM class archive by running every stage of the job once.

The JVM archives the classes it loaded when it exits, so the run must touch what real runs touch: reading JSON
lines, the rules in Python workers, exact and near deduplication, balancing, splitting, the leakage check,
Parquet written and read back, the baselines, and a run on reused items.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pricecurate.spark.jvm_archive import ArchiveError, archive_path, publish, stop_jvm

MASTER = "local[2]"
RECORDS_PER_CATEGORY = 40
# Every stage once: near duplicates and baselines in the first run; reading items back, exact deduplication
# and the leakage check's comparison (it runs when dedup has no near) in the second.
FULL_RUN = ("categories=all", "dedup=title,text,near", "baseline=true")
REUSED_RUN = ("categories=all", "dedup=title,text", "baseline=false", "seed=7")


def sample_runs(spark, scratch: Path, say) -> None:
    """The job on a small sample, then again on its items: what the archive is made of."""
    from pricecurate.config import load_config
    from pricecurate.pipeline.job import run_job
    from pricecurate.pipeline.progress import Progress
    from pricecurate.sample import write_sample

    sample = write_sample(scratch / "input", records_per_category=RECORDS_PER_CATEGORY)[0].parent
    for name, overrides in (("full", FULL_RUN), ("reused", (*REUSED_RUN, f"reuse_items={scratch / 'full'}"))):
        say(f"prepare: {name} run on the sample")
        run_job(spark, load_config(None, list(overrides)), str(sample), str(scratch / name), True,
                Progress(quiet=True))


def build(folder: Path, workload=sample_runs, say=print) -> Path:
    """Run ``workload(spark, scratch_folder, say)`` in a JVM that writes the classes it loaded to ``folder`` as
    it exits."""
    from pyspark import SparkContext

    from pricecurate.spark.session import build_session

    if SparkContext._active_spark_context is not None:
        raise ArchiveError("a Spark session is already running in this process; run `pricecurate prepare` alone")
    archive = archive_path(folder)
    if archive is None:
        raise ArchiveError("no java found (JAVA_HOME or PATH): Spark cannot start")
    folder.mkdir(parents=True, exist_ok=True)
    dumped = folder / f".{archive.name}.{os.getpid()}.tmp"
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="pricecurate-prepare-") as scratch:
            spark = build_session(MASTER, dump_classes_to=dumped)
            try:
                workload(spark, Path(scratch), say)
            finally:
                code = stop_jvm(spark)
        if code != 0:
            raise ArchiveError(f"the JVM exited with {code} while writing the archive")
        publish(dumped, archive, time.monotonic() - started)
    finally:
        dumped.unlink(missing_ok=True)
    return archive
