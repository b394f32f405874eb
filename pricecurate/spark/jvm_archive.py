"""A class-data-sharing archive of the classes a local run loads, so the driver JVM maps them instead of
finding, reading and verifying them in Spark's jars at every start.

On a 2-core machine it takes a local session's start from 5.3 to 3.2 s and its first query from 2.7 to 1.6 s
(scripts/startup.py), for every run, test and command that starts Spark here. ``pricecurate prepare`` builds it
once (set-up does); local sessions use it when it is there and whole. The JVM checks that its jars and its own
build are the ones the archive was made with, and starts without it otherwise; the name also carries a digest
of both, so an upgrade of Java or Spark simply leaves the old archive unused until ``prepare`` runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from pricecurate.errors import UserError

OFF_ENV = "PRICECURATE_JVM_ARCHIVE"  # "off": start every local session without the archive
SUFFIX = ".jsa"
# The JVM's notes on the archive (classes it skips, an archive it cannot use) would land in the user's terminal.
QUIET = "-Xlog:cds*=off"


class ArchiveError(UserError):
    """The archive could not be built."""


def java_binary() -> Path | None:
    """The ``java`` Spark's launcher runs: ``$JAVA_HOME/bin/java``, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return Path(os.path.realpath(found)) if found and os.path.exists(found) else None


def spark_jars() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "jars"


def _digest(java: Path, jars: Path, extra: Path | None = None) -> str:
    """Names, sizes and times of the JVM, every jar and ``extra`` (a jar put before them on the class path): what
    the archive is only valid for."""
    parts = []
    for path in [java, *sorted(jars.glob("*.jar")), *([extra] if extra else [])]:
        stat = path.stat()
        parts.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def archive_path(folder: Path) -> Path | None:
    """Where this machine's Java and Spark keep their archive in ``folder`` (None: no Java found)."""
    import pyspark

    java = java_binary()
    if java is None:
        return None
    from pricecurate.spark.local_fs import built as local_fs_jar

    # The local file system's jar comes first on a local session's class path: an archive made without it (or
    # with another) does not fit, and the JVM would quietly start without it.
    return folder / f"spark-{pyspark.__version__}-{_digest(java, spark_jars(), local_fs_jar(folder))}{SUFFIX}"


def _sidecar(archive: Path) -> Path:
    return archive.with_suffix(".json")


def usable(archive: Path | None) -> bool:
    """The archive is there and as long as when it was written: a cut-short archive crashes the JVM (SIGBUS)."""
    if archive is None or not archive.is_file():
        return False
    try:
        recorded = json.loads(_sidecar(archive).read_text())["bytes"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return recorded == archive.stat().st_size


def _option(flag: str, path: Path) -> str:
    text = f"{flag}={path}"
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def java_options(folder: Path, dump_to: Path | None = None) -> str:
    """JVM options for a local session: dump the loaded classes to ``dump_to`` at exit, or map this machine's
    archive when it is usable; nothing when it is not, or when PRICECURATE_JVM_ARCHIVE=off."""
    if dump_to is not None:
        return f"{_option('-XX:ArchiveClassesAtExit', dump_to)} {QUIET}"
    archive = mapped(folder)
    return f"{_option('-XX:SharedArchiveFile', archive)} {QUIET}" if archive else ""


def built(folder: Path) -> Path | None:
    """This machine's archive in ``folder``, when it is built and whole."""
    archive = archive_path(folder)
    return archive if usable(archive) else None


def mapped(folder: Path) -> Path | None:
    """The archive a local session started now maps, if any."""
    return None if os.environ.get(OFF_ENV, "").lower() in ("off", "0", "false", "no") else built(folder)


def publish(dumped: Path, archive: Path, seconds: float) -> None:
    """Move a finished dump into place, then its sidecar (last: until it is there, the archive is not used), and
    remove the archives this one replaces."""
    if not dumped.is_file() or dumped.stat().st_size == 0:
        raise ArchiveError(f"the JVM wrote no archive at {dumped}")
    jars = str(spark_jars())
    for old in archive.parent.glob(f"spark-*{SUFFIX}"):
        if old != archive and _replaced(old, jars):
            old.unlink(missing_ok=True)
            _sidecar(old).unlink(missing_ok=True)
    _sidecar(archive).unlink(missing_ok=True)
    os.replace(dumped, archive)
    sidecar = _sidecar(archive).with_suffix(".json.tmp")
    sidecar.write_text(json.dumps({"bytes": archive.stat().st_size, "seconds": round(seconds, 1), "jars": jars,
                                   "java": str(java_binary()), "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    os.replace(sidecar, _sidecar(archive))


def _replaced(old: Path, jars: str) -> bool:
    """An archive made for this Spark install (since upgraded) or for one that is gone; another install's (a
    second virtualenv) stays for it."""
    try:
        made_for = json.loads(_sidecar(old).read_text()).get("jars")
    except (OSError, ValueError, AttributeError):
        return True
    return made_for is None or made_for == jars or not os.path.isdir(made_for)


def stop_jvm(spark) -> int:
    """Stop the session and the JVM behind it, and wait for the JVM to exit (it writes the archive as it exits)."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    spark.stop()
    process = getattr(gateway, "proc", None)
    if process is None:  # not a JVM this process started
        raise ArchiveError("the session's JVM was not started by this process; run `pricecurate prepare` alone")
    gateway.shutdown()
    process.stdin.close()  # the gateway server exits when its stdin closes
    code = process.wait()
    SparkContext._gateway = SparkContext._jvm = None
    return code
