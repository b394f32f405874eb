"""Reading a written dataset back, the way a user's tools would."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import threading

import psutil
import pyarrow.parquet as pq

SPLIT_COLUMNS = ["text", "price", "category", "parent_asin", "title", "token_count"]


def data_dir(output: str) -> str:
    """The published data folder, as the output's manifest names it."""
    return os.path.join(str(output), manifest(output)["data"])


def split_files(output: str, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(data_dir(output), split, "category=*", "*.parquet")))


def split_rows(output: str, split: str) -> list[tuple]:
    """All rows of a split as sorted tuples (content, not file names)."""
    rows = []
    for path in split_files(output, split):
        table = pq.read_table(path)
        assert table.column_names == SPLIT_COLUMNS, path
        rows.extend(zip(*[table.column(c).to_pylist() for c in SPLIT_COLUMNS]))
    return sorted(rows)


@contextlib.contextmanager
def session_settings(spark, settings: dict[str, str]):
    """Settings for one run, unset after it (given to the CLI's config, they would stay in the shared session)."""
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in settings:
            spark.conf.unset(key)


def manifest(output: str) -> dict:
    with open(os.path.join(output, "manifest.json"), encoding="utf-8") as handle:
        return json.load(handle)


LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


# What a process of a Spark run is, told by its command line.
ROLES = (("CoarseGrainedExecutorBackend", "executor jvm"), ("deploy.SparkSubmit", "driver jvm"),
         ("deploy.master.Master", "master"), ("deploy.worker.Worker", "worker"),
         ("pyspark.daemon", "python worker"), ("pyspark.worker", "python worker"))


def process_role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    return next((role for marker, role in ROLES if marker in command), process.name())


def listening_sockets(root: psutil.Process) -> set[tuple[str, str, int]]:
    """(process role, address, port) of every listening TCP socket of ``root`` and its descendants."""
    found = set()
    for process in [root, *root.children(recursive=True)]:
        try:
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    found.add((process_role(process), connection.laddr.ip, connection.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a Python worker that ended between the listing and the look
    return found


class SocketSampler(threading.Thread):
    """Lists the listening sockets of ``roots`` and their descendants every 0.5 s until stopped, so short-lived
    listeners (a Python worker, an executor) are seen too."""

    def __init__(self, roots: list[psutil.Process]):
        super().__init__(daemon=True)
        self.roots = roots
        self.seen: set[tuple[str, str, int]] = set()
        self.done = threading.Event()

    def _sample(self) -> None:
        for root in self.roots:
            try:
                self.seen |= listening_sockets(root)
            except psutil.NoSuchProcess:
                continue

    def run(self) -> None:
        while not self.done.is_set():
            self._sample()
            self.done.wait(0.5)

    def stop(self) -> set[tuple[str, str, int]]:
        self.done.set()
        self.join()
        self._sample()
        return self.seen


def shared_records(limit: int) -> list[dict]:
    """The JSON objects among the first ``limit`` lines of every shared data file (real, converted and edge
    records), or none where ../shared is absent."""
    from tests.conftest import SHARED, shared_available

    if not shared_available():
        return []
    records = []
    for path in sorted((SHARED / "data").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:limit]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records
