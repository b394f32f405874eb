"""How the job's session keeps what it caches."""

from __future__ import annotations

import re
from pathlib import Path

from pyspark import StorageLevel

from pricecurate.spark.session import CACHE, LOCAL_JVM_OPTIONS

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
        for path in PACKAGE.rglob("*.py")
        for call in re.findall(r"\.persist\(([^)]*)\)", path.read_text(encoding="utf-8"))
    }
    assert persists, "no persist call found: the pattern no longer matches the code"
    assert {entry for entry in persists if not entry.endswith(": CACHE")} == set()


def test_a_local_session_runs_its_jvm_with_large_heap_regions(spark):
    arguments = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert LOCAL_JVM_OPTIONS in arguments


def test_only_a_small_local_input_gets_the_quick_compiler(tmp_path, monkeypatch):
    from pricecurate.spark import session

    monkeypatch.setattr(session, "SMALL_INPUT_BYTES", 1000)
    (tmp_path / "meta_Books.jsonl").write_bytes(b"x" * 600)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "big.bin").write_bytes(b"x" * 5000)  # not an input file: discovery lists the top only
    assert session.small_local_input(str(tmp_path)) and session.small_local_input(f"file://{tmp_path}")
    (tmp_path / "meta_Toys_and_Games.jsonl").write_bytes(b"x" * 401)
    assert not session.small_local_input(str(tmp_path))
    assert not session.small_local_input("s3a://bucket/meta")  # not local: not sized, not quick
    assert not session.small_local_input(str(tmp_path / "absent"))
    assert not session.small_local_input(None)


def test_runs_on_reused_items_without_near_duplicates_are_short(tmp_path):
    from pricecurate.config import load_config
    from pricecurate.spark.session import short_run

    big = "s3a://bucket/meta"  # not sized: never small
    assert not short_run(load_config(None, []), big)
    assert short_run(load_config(None, ["reuse_items=/out/before", "dedup=none"]), big)
    assert short_run(load_config(None, ["reuse_items=/out/before", "dedup=title,text"]), big)
    assert not short_run(load_config(None, ["reuse_items=/out/before", "dedup=title,text", "baseline=true"]), big)
    assert not short_run(load_config(None, ["reuse_items=/out/before", "dedup=title,text,near"]), big)
    assert short_run(load_config(None, ["dedup=title,text,near"]), str(tmp_path))  # an empty local folder is small


def test_runs_applying_the_reused_runs_near_duplicate_marks_are_short(tmp_path):
    import json

    from pricecurate.config import load_config
    from pricecurate.output.layout import FORMAT, FORMAT_KEY, MANIFEST
    from pricecurate.pipeline.reuse import dedup_key, marks_apply
    from pricecurate.spark.session import short_run

    before = tmp_path / "before"
    marked = load_config(None, ["dedup=title,text,near"])
    before.mkdir()
    manifest = {FORMAT_KEY: FORMAT, "curation": {"dedup": {"key": dedup_key(marked.dedup, marked.near, marked.seed)}}}
    (before / MANIFEST).write_text(json.dumps(manifest))

    def apply(*overrides: str, where: str = str(before)) -> bool:
        config = load_config(None, ["dedup=title,text,near", *overrides])
        return marks_apply(where, config.dedup, config.near, config.seed)

    assert apply() and apply(where=f"file://{before}")  # the same marks: nothing compared again
    assert not apply("seed=7")  # other representatives: near duplicates are found again
    assert not apply(f"near.threshold={marked.near.threshold / 2}")
    assert not apply(where="s3a://bucket/before")  # not read before the session: taken as long
    assert not apply(where=str(tmp_path / "absent"))
    (before / MANIFEST).write_text(json.dumps(manifest)[:40])  # cut short by a kill
    assert not apply()

    reusing = load_config(None, [f"reuse_items={before}", "dedup=title,text,near"])
    assert short_run(reusing, "s3a://bucket/meta", known_marks=True)
    assert not short_run(reusing, "s3a://bucket/meta", known_marks=False)
    assert not short_run(load_config(None, ["dedup=title,text,near"]), "s3a://bucket/meta", known_marks=True)
    with_baselines = load_config(None, [f"reuse_items={before}", "dedup=title,text,near", "baseline=true"])
    assert not short_run(with_baselines, "s3a://bucket/meta", known_marks=True)  # MLlib's fitting is long JVM work


def test_the_quick_compiler_reaches_the_jvm_of_a_small_run(tmp_path):
    """A sample-sized run's JVM compiles with C1 only."""
    import subprocess
    import sys

    from pricecurate.sample import write_sample

    write_sample(tmp_path / "input", 2, categories=["Books"])
    script = (
        "import sys\n"
        "from pricecurate.spark.session import build_session, small_local_input\n"
        "spark = build_session('local[1]', quick_compiler=small_local_input(sys.argv[1]))\n"
        "bean = spark._jvm.java.lang.management.ManagementFactory.getPlatformMXBean(\n"
        "    spark._jvm.java.lang.Class.forName('com.sun.management.HotSpotDiagnosticMXBean'))\n"
        "print(bean.getVMOption('TieredStopAtLevel').getValue())\n"
        "spark.stop()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "input")], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "1", done.stderr[-2000:]


def test_a_driver_table_is_one_partition_made_without_a_python_worker(spark):
    from pricecurate.spark.session import driver_table

    table = driver_table(spark, [(3, 1.5, "B00X", None), (1, -2.0, "B00Y", 7)],
                         "price_slot int, key double, parent_asin string, line long")
    assert table.rdd.getNumPartitions() == 1
    assert [tuple(row) for row in table.collect()] == [(3, 1.5, "B00X", None), (1, -2.0, "B00Y", 7)]
    assert table.schema.simpleString() == "struct<price_slot:int,key:double,parent_asin:string,line:bigint>"
    # A list or an RDD of Python rows is unpickled by a Python worker: a second to start one where none runs.
    assert "PythonRDD" not in table._jdf.queryExecution().toRdd().toDebugString()
    empty = driver_table(spark, [], "price_slot int, key double")
    assert empty.count() == 0 and empty.columns == ["price_slot", "key"]


def test_local_workers_import_pyspark_from_the_installed_package_not_spark_s_zip(spark):
    """Spark puts its pyspark.zip first on the workers' path; Python compiles what it imports from a zip anew in
    every worker. The local daemon (``pricecurate.spark.daemon``) puts the installed package first."""
    import pyarrow as pa
    import pyspark

    def where(batches):
        import pyspark as worker_pyspark
        import pyspark.worker

        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"init": [worker_pyspark.__file__], "worker": [pyspark.worker.__file__]})

    row = spark.range(1, numPartitions=1).mapInArrow(where, "init string, worker string").collect()[0]
    assert row["init"] == pyspark.__file__
    assert ".zip" not in row["worker"]


def test_the_daemon_moves_only_the_zips_shipped_inside_the_installed_pyspark_after_the_rest(tmp_path):
    from pricecurate.spark.daemon import installed_first

    site = tmp_path / "site-packages"
    (site / "pyspark" / "python" / "lib").mkdir(parents=True)
    (site / "pyspark" / "__init__.py").write_text("")
    shipped = [str(site / "pyspark" / "python" / "lib" / name) for name in ("pyspark.zip", "py4j-0.10.9.9-src.zip")]
    other = str(tmp_path / "elsewhere" / "pyspark.zip")  # another Spark's: left where it is
    path = ["/work", *shipped, other, str(site)]
    assert installed_first(path) == ["/work", other, str(site), *shipped]
    assert installed_first(["/work", *shipped]) == ["/work", *shipped]  # no installed pyspark: nothing moves
