"""How the job's session keeps what it caches."""

from __future__ import annotations

import re
from pathlib import Path

from pyspark import StorageLevel

from pricecurate.session import CACHE, LOCAL_JVM_OPTIONS

PACKAGE = Path(__file__).resolve().parent.parent / "pricecurate"


def test_the_cache_level_reaches_the_jvm_deserialized_and_spills_to_disk(spark):
    # PySpark's own MEMORY_AND_DISK is serialized in the JVM (1 MiB byte arrays): that filled a 4g heap at 5.5M.
    serialized = spark.range(10).persist(StorageLevel.MEMORY_AND_DISK)
    cached = spark.range(11).persist(CACHE)  # another plan: Spark caches a plan once, at its first level
    try:
        assert not serialized._jdf.storageLevel().deserialized()
        level = cached._jdf.storageLevel()
        assert level.deserialized() and level.useMemory() and level.useDisk()
    finally:
        serialized.unpersist()
        cached.unpersist()


def test_every_frame_the_job_caches_uses_the_session_level():
    persists = {
        f"{path.name}: {call}"
        for path in PACKAGE.glob("*.py")
        for call in re.findall(r"\.persist\(([^)]*)\)", path.read_text(encoding="utf-8"))
    }
    assert persists, "no persist call found: the pattern no longer matches the code"
    assert {entry for entry in persists if not entry.endswith(": CACHE")} == set()


def test_a_local_session_runs_its_jvm_with_large_heap_regions(spark):
    arguments = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert LOCAL_JVM_OPTIONS in arguments
