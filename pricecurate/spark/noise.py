"""Hiding the start-up messages of Spark's JVM and of libraries, which say nothing a user can act on.

Spark's JVM inherits this process's standard error when the session starts, so
its start-up lines (the JVM's incubator-module warning, log4j's default-profile
notice, Hadoop's native-library warning) cannot be turned off from Python
settings alone. While the session starts, file descriptor 2 is a pipe read by a
thread that drops those lines and passes everything else on; the JVM keeps the
pipe for its lifetime, so its later warnings and errors still come through (and
MLlib's lines about a missing native BLAS become one line of pricecurate's).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager

# Lines (substrings) printed at every start, or by every near-duplicate run, none of them a problem.
STARTUP_NOISE = (
    # The UI's text of a query plan is cut at spark.sql.maxPlanStringLength: a fact about the UI, not the job.
    "Truncated the string representation of a plan since it was too long",
    "WARNING: Using incubator modules",
    "Using Spark's default log4j profile",
    "Setting default log level to",
    "To adjust logging level use sc.setLogLevel",
    "NativeCodeLoader: Unable to load native-hadoop library",
    "resolves to a loopback address",
    "Set SPARK_LOCAL_IP if you need to bind to another address",
    # The baselines' coefficients (65,536 values) travel with each of their tasks, as MLlib sends them.
    "Broadcasting large task binary",
    # Another Spark on this machine holds the UI's port: Spark takes the next one, which the status lines name.
    "Service 'SparkUI' could not bind on port",
)
# MLlib's native loader (dev.ludovic.netlib) prints one of these in a JVM that finds no native BLAS or LAPACK,
# and then uses its Java implementation: one line of ours says so instead, once per process.
NATIVE_MISSING = re.compile(r"netlib-(blas|lapack|arpack): JNI_OnLoad: dlopen\(")
NATIVE_NOTE = ("pricecurate: no native BLAS/LAPACK (libblas.so.3, liblapack.so.3) on this machine; Spark MLlib uses "
               "its Java implementation (scripts/setup.sh installs libblas3 and liblapack3 where it runs as root)")
_native_noted = threading.Event()


def is_startup_noise(line: str) -> bool:
    return any(marker in line for marker in STARTUP_NOISE) or bool(NATIVE_MISSING.search(line))


def _shown(line: bytes) -> bytes | None:
    """What the terminal gets for one line of standard error: the line, our note instead, or nothing."""
    text = line.decode("utf-8", "replace")
    if NATIVE_MISSING.search(text):
        if _native_noted.is_set():
            return None
        _native_noted.set()
        return f"{NATIVE_NOTE}\n".encode()
    return None if is_startup_noise(text) else line


def silence_libraries() -> None:
    """transformers announces at import that PyTorch is missing; pricecurate never needs PyTorch."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _forward(read_fd: int, write_fd: int, drain_marker: bytes, drained: threading.Event) -> None:
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:  # ends when every writer (this process, the JVM) has closed the pipe
            if line == drain_marker:
                drained.set()
                continue
            shown = _shown(line)
            if shown is not None:
                os.write(write_fd, shown)
    os.close(write_fd)


@contextmanager
def startup_noise_filtered():
    """Inside: file descriptor 2 goes through the filter (and so does that of any process started inside)."""
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    drain_marker, drained = f"\0pricecurate-drained-{os.getpid()}\n".encode(), threading.Event()
    threading.Thread(target=_forward, args=(read_fd, os.dup(original), drain_marker, drained), daemon=True,
                     name="stderr-filter").start()
    try:
        yield
    finally:
        sys.stderr.flush()
        # What this process wrote inside is out before what it writes next: the pipe is in order.
        os.write(2, drain_marker)
        drained.wait(5)
        os.dup2(original, 2)  # this process writes straight to stderr again; children keep the pipe
        os.close(original)
