"""The JVM class archive: built whole or not at all, used only when whole, and really mapped by a local JVM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pricecurate.spark import jvm_archive
from pricecurate.spark.jvm_archive import ArchiveError, archive_path, java_options, publish, usable


@pytest.fixture
def jars(tmp_path, monkeypatch):
    folder = tmp_path / "jars"
    folder.mkdir()
    for name in ("spark-core.jar", "spark-sql.jar"):
        (folder / name).write_bytes(b"jar " + name.encode())
    monkeypatch.setattr(jvm_archive, "spark_jars", lambda: folder)
    monkeypatch.delenv(jvm_archive.OFF_ENV, raising=False)
    return folder


def _built(folder: Path) -> Path:
    """An archive in ``folder`` as ``publish`` leaves it (the bytes are not a real archive: nothing maps them)."""
    folder.mkdir(exist_ok=True)
    dumped = folder / "dump.tmp"
    dumped.write_bytes(b"\0" * 4096)
    archive = archive_path(folder)
    publish(dumped, archive, 1.0)
    return archive


def test_a_published_archive_is_mapped_quietly(tmp_path, jars):
    assert java_options(tmp_path / "cache") == ""  # nothing built yet
    archive = _built(tmp_path / "cache")
    assert usable(archive)
    options = java_options(tmp_path / "cache")
    assert f"-XX:SharedArchiveFile={archive}" in options.split()
    assert jvm_archive.QUIET in options.split()


def test_a_cut_short_archive_is_never_mapped(tmp_path, jars):
    # A truncated archive crashes the JVM (SIGBUS) instead of being refused: the recorded size guards it.
    archive = _built(tmp_path / "cache")
    with open(archive, "r+b") as handle:
        handle.truncate(1000)
    assert not usable(archive)
    assert java_options(tmp_path / "cache") == ""


def test_an_archive_without_its_record_is_not_mapped(tmp_path, jars):
    archive = _built(tmp_path / "cache")
    archive.with_suffix(".json").unlink()
    assert java_options(tmp_path / "cache") == ""


def test_it_can_be_turned_off(tmp_path, jars, monkeypatch):
    _built(tmp_path / "cache")
    monkeypatch.setenv(jvm_archive.OFF_ENV, "off")
    assert java_options(tmp_path / "cache") == ""


def test_a_dump_is_asked_for_whatever_is_built(tmp_path, jars):
    _built(tmp_path / "cache")
    options = java_options(tmp_path / "cache", dump_to=tmp_path / "new.jsa").split()
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}" in options
    assert not any(option.startswith("-XX:SharedArchiveFile") for option in options)


def test_another_spark_build_has_another_archive_and_publishing_removes_the_old(tmp_path, jars):
    old = _built(tmp_path / "cache")
    (jars / "spark-sql.jar").write_bytes(b"a newer spark-sql")
    assert archive_path(tmp_path / "cache") != old
    assert java_options(tmp_path / "cache") == ""  # the old one stays unused: its jars are gone
    new = _built(tmp_path / "cache")
    assert usable(new)
    assert not old.exists() and not old.with_suffix(".json").exists()


def test_another_installs_archive_stays_for_it(tmp_path, jars, monkeypatch):
    # A second virtualenv has its own Spark jars and its own archive in the same cache folder.
    elsewhere = tmp_path / "other-venv" / "jars"
    elsewhere.mkdir(parents=True)
    (elsewhere / "spark-core.jar").write_bytes(b"another install")
    monkeypatch.setattr(jvm_archive, "spark_jars", lambda: elsewhere)
    theirs = _built(tmp_path / "cache")
    monkeypatch.setattr(jvm_archive, "spark_jars", lambda: jars)
    ours = _built(tmp_path / "cache")
    assert theirs != ours and usable(theirs) and usable(ours)
    (elsewhere / "spark-core.jar").unlink()
    elsewhere.rmdir()  # that install is gone: the next archive published here removes its archive
    (jars / "spark-sql.jar").write_bytes(b"an upgrade")
    newer = _built(tmp_path / "cache")
    assert usable(newer) and not theirs.exists() and not ours.exists()


def test_publishing_nothing_is_an_error(tmp_path, jars):
    with pytest.raises(ArchiveError, match="wrote no archive"):
        publish(tmp_path / "missing.tmp", archive_path(tmp_path), 1.0)
    assert not any(tmp_path.glob("*.json"))


def test_the_record_holds_the_archive_size(tmp_path, jars):
    archive = _built(tmp_path / "cache")
    assert json.loads(archive.with_suffix(".json").read_text())["bytes"] == 4096


# One JVM dumps the classes a session's start loads (no query: the dump's time grows with the classes), a second
# maps them: the real thing, in subprocesses (a JVM archives at exit, and this process's session cannot stop).
BUILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pricecurate.cli.prepare import build

    print(build(Path(sys.argv[1]), workload=lambda spark, scratch, say: None, say=lambda line: None))
""")
USE = textwrap.dedent("""
    import sys
    from pricecurate.spark.session import build_session

    spark = build_session("local[1]", {"spark.driver.extraJavaOptions": f"-Xlog:class+load=info:file={sys.argv[1]}"})
    spark.stop()
""")


def test_a_built_archive_is_mapped_by_the_next_local_session(tmp_path):
    env = {**os.environ, "PRICECURATE_CACHE": str(tmp_path / "cache"), "PYSPARK_PYTHON": sys.executable}
    env.pop(jvm_archive.OFF_ENV, None)
    built = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / "cache")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    archive = Path(built.stdout.strip().splitlines()[-1])
    assert usable(archive)
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # the dump was moved into place, not copied

    log = tmp_path / "classes.log"
    used = subprocess.run([sys.executable, "-c", USE, str(log)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert used.returncode == 0, used.stderr[-3000:]
    sources = log.read_text(errors="replace")
    # Spark's own classes come from the archive built above ("top" layer), not from its jars.
    from_archive = [line for line in sources.splitlines() if "shared objects file (top)" in line]
    assert any("org.apache.spark.SparkContext " in line for line in from_archive), sources[-2000:]
    assert len(from_archive) > 1000
