"""The local file system that sets permissions without a chmod process: compiled, used, and the same files."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile

import pytest

from pricecurate.paths import cache_dir
from pricecurate.spark import local_fs
from pricecurate.spark.jvm_archive import archive_path


def test_a_session_uses_it_only_when_built_and_the_user_named_no_class_path_of_their_own(tmp_path):
    assert local_fs.session_settings(tmp_path, {}) == {}  # not built here
    jar = local_fs.jar_path(tmp_path)
    jar.write_bytes(b"built")
    assert local_fs.session_settings(tmp_path, {}) == {local_fs.CLASS_PATH: str(jar),
                                                       local_fs.FILE_SYSTEM: local_fs.CLASS}
    assert local_fs.session_settings(tmp_path, {local_fs.CLASS_PATH: "/opt/theirs.jar"}) == {}
    assert local_fs.session_settings(tmp_path, {local_fs.FILE_SYSTEM: "org.example.TheirFS"}) == {}


def test_the_class_archive_is_made_for_the_class_path_with_the_jar(tmp_path):
    """The jar comes first on a local session's class path: an archive made without it must not be taken for one
    made with it (the JVM would quietly start without the archive)."""
    without = archive_path(tmp_path)
    local_fs.jar_path(tmp_path).write_bytes(b"built")
    assert archive_path(tmp_path) != without


@pytest.mark.skipif(local_fs._javac() is None, reason="no javac here: the class is not compiled")
def test_prepare_compiles_the_class_once(tmp_path):
    jar, said = local_fs.build(tmp_path)
    assert jar == local_fs.jar_path(tmp_path) and "built" in said
    names = zipfile.ZipFile(jar).namelist()
    assert "pricecurate/hadoop/NioLocalFileSystem.class" in names
    assert "pricecurate/hadoop/NioLocalFileSystem$Raw.class" in names
    modified = jar.stat().st_mtime_ns
    assert local_fs.build(tmp_path) == (jar, f"local file system class already built: {jar}")
    assert jar.stat().st_mtime_ns == modified


def test_without_javac_the_file_system_stays_hadoop_s(tmp_path, monkeypatch):
    monkeypatch.setattr(local_fs, "_javac", lambda: None)
    jar, said = local_fs.build(tmp_path)
    assert jar is None and "no javac" in said and not list(tmp_path.iterdir())


def test_files_and_folders_get_hadoop_s_permissions(spark, tmp_path):
    """Files 0644 and folders 0755 from a partitioned Parquet write, as Hadoop's default umask (022) makes them;
    with a umask of 077, 0600 and 0700, which the process's own umask (022 here) would not give: the
    permissions are really set, by whichever class the session uses."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    in_use = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("file:///"), conf)
    if local_fs.built(cache_dir()) is not None:
        assert in_use.getClass().getName() == local_fs.CLASS  # prepare built it: the session uses it
    spark.range(60).selectExpr("id % 3 AS part", "id").write.partitionBy("part").parquet(str(tmp_path / "written"))
    for path in (tmp_path / "written").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    files = list((tmp_path / "written").glob("part=*/*.parquet"))
    assert files and len(list((tmp_path / "written").glob("part=*/.*.crc"))) == len(files)  # checksums, as before

    private = jvm.org.apache.hadoop.conf.Configuration(conf)
    private.set("fs.permissions.umask-mode", "077")
    fs = jvm.org.apache.hadoop.fs.FileSystem.newInstance(jvm.java.net.URI("file:///"), private)
    try:
        assert fs.getClass().getName() == in_use.getClass().getName()
        fs.mkdirs(jvm.org.apache.hadoop.fs.Path(str(tmp_path / "private" / "inner")))
        stream = fs.create(jvm.org.apache.hadoop.fs.Path(str(tmp_path / "private" / "inner" / "file.bin")))
        stream.write(b"bytes")
        stream.close()
    finally:
        fs.close()
    for path in (tmp_path / "private", tmp_path / "private" / "inner"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (tmp_path / "private" / "inner").iterdir():  # the file and its checksum
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    shutil.rmtree(tmp_path / "written")


# The settings build_session gives a new local session, caught before any JVM starts (a fake builder).
SETTINGS = textwrap.dedent("""
    from pricecurate.paths import cache_dir
    from pricecurate.spark import local_fs, session

    local_fs.jar_path(cache_dir()).write_bytes(b"built")
    given = {}

    class Builder:
        def appName(self, name): return self
        def master(self, master): return self
        def config(self, key, value): given[key] = value; return self
        def getOrCreate(self): raise SystemExit(0 if local_fs.FILE_SYSTEM in given else 3)

    session.SparkSession.builder = Builder()
    session.build_session("local[2]")
""")


@pytest.mark.parametrize("spark_submit", [False, True], ids=["pricecurate-run", "spark-submit"])
def test_only_a_jvm_started_by_the_session_gets_the_class(tmp_path, spark_submit):
    """spark-submit starts the JVM before Python runs: a class named for a jar that is not on its class path would
    fail every file access, so the session leaves Hadoop's class there."""
    env = {**os.environ, "PRICECURATE_CACHE": str(tmp_path)}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    if spark_submit:
        env["PYSPARK_GATEWAY_PORT"] = "1"  # what spark-submit leaves for its Python driver
    done = subprocess.run([sys.executable, "-c", SETTINGS], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == (3 if spark_submit else 0), done.stderr[-2000:]
