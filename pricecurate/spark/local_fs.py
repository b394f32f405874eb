"""Hadoop's local file system without a ``chmod`` process per file, for local sessions.

pip's pyspark ships no Hadoop native library, so Hadoop's local file system
sets the permissions of every file and folder it creates by starting
``chmod``: each Parquet file of a partitioned write costs three or four
processes, some 15 ms, and a run writes a folder per category and dataset
(105 files for the bundled sample: 1.8 s of its 2.8 s write). The subclass in
``java/NioLocalFileSystem.java`` sets them through java.nio instead; it is
compiled once per machine by ``pricecurate prepare`` where a JDK is installed
(a JRE alone leaves Hadoop's own class in use), and local sessions put it on
the driver's class path. Checksums, permissions and every other behaviour stay
Hadoop's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

CLASS = "pricecurate.hadoop.NioLocalFileSystem"
SOURCE = Path(__file__).parent / "java" / "NioLocalFileSystem.java"
CLASS_PATH = "spark.driver.extraClassPath"
FILE_SYSTEM = "spark.hadoop.fs.file.impl"


def _hadoop_jar() -> Path | None:
    from pricecurate.spark.jvm_archive import spark_jars

    found = sorted(spark_jars().glob("hadoop-client-api-*.jar"))
    return found[-1] if found else None


def jar_path(folder: Path) -> Path | None:
    """Where the compiled class lives in ``folder``: named by the source and the Hadoop it was compiled against."""
    hadoop = _hadoop_jar()
    if hadoop is None:
        return None
    digest = hashlib.sha256(SOURCE.read_bytes() + f"\0{hadoop.name}\0{hadoop.stat().st_size}".encode())
    return folder / f"nio-local-fs-{digest.hexdigest()[:16]}.jar"


def built(folder: Path) -> Path | None:
    """The compiled jar, when ``prepare`` built it for this Spark's Hadoop."""
    jar = jar_path(folder)
    return jar if jar is not None and jar.is_file() else None


def _javac() -> str | None:
    from pricecurate.spark.jvm_archive import java_binary

    java = java_binary()
    beside = java.parent / "javac" if java else None
    return str(beside) if beside and beside.is_file() else shutil.which("javac")


def build(folder: Path) -> tuple[Path | None, str]:
    """Compile the class into ``folder`` (unless there already); (the jar or None, what happened, in words)."""
    jar, javac, hadoop = jar_path(folder), _javac(), _hadoop_jar()
    if jar is None or hadoop is None:
        return None, "no Hadoop jar in Spark's jars: the local file system stays Hadoop's"
    if jar.is_file():
        return jar, f"local file system class already built: {jar}"
    if javac is None:
        return None, "no javac (a JRE only): the local file system stays Hadoop's, which starts chmod per file"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pricecurate-javac-") as scratch:
        compiled = subprocess.run([javac, "--release", "17", "-nowarn", "-cp", str(hadoop), "-d", scratch,
                                   str(SOURCE)], capture_output=True, text=True)
        if compiled.returncode != 0:
            why = (compiled.stderr.strip().splitlines() or ["no message"])[-1]
            return None, f"javac failed ({why}): the local file system stays Hadoop's"
        partial = jar.with_name(f".{jar.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(scratch).rglob("*.class")):
                archive.write(path, path.relative_to(scratch).as_posix())
        os.replace(partial, jar)
    return jar, f"local file system class built: {jar}"


def session_settings(folder: Path, given: dict[str, str]) -> dict[str, str]:
    """The settings that make a local session use the class, when it is built and the user's ``given`` settings
    name neither a class path nor a local file system of their own."""
    jar = built(folder)
    if jar is None or CLASS_PATH in given or FILE_SYSTEM in given:
        return {}
    return {CLASS_PATH: str(jar), FILE_SYSTEM: CLASS}
