"""One writer per output: a lease file that a run creates if absent, keeps fresh, and deletes when it ends.

The lease (``OUTPUT/_pricecurate.lease``) holds the run's id, host, pid, start
and last heartbeat. A second run finds it and stops with one line naming the
first (or, with ``--wait``, waits for it). A lease is stale, and taken over
with a word saying so, when its heartbeat is older than the timeout (10 minutes
by default, ``PRICECURATE_LEASE_TIMEOUT`` seconds), or at once when it names a
process on this host that is gone (a killed run).

Creating the lease is the filesystem's create-if-absent (``fs.create_new``):
exclusive on local disks and HDFS; on object stores a conditional PUT where the
connector makes one, else a PUT read back after a pause (see
``pricecurate.spark.fs.HadoopFS.create_new``). Publishing checks the lease is still
this run's before its commit, so a run whose lease was taken over publishes
nothing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pricecurate.errors import OutputError

DEFAULT_TIMEOUT = 600.0  # seconds without a heartbeat before another run may take the lease over
TIMEOUT_ENV = "PRICECURATE_LEASE_TIMEOUT"
WAIT_POLL = 2.0  # seconds between looks at a held lease under --wait


class LeaseHeld(OutputError):
    """Another run is writing this output."""


class LeaseLost(OutputError):
    """This run's lease was taken over (its heartbeat stopped for longer than the timeout)."""


def timeout_seconds() -> float:
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise OutputError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def _process_start(pid: int) -> str | None:
    """When the process started (Linux clock ticks since boot), so a reused pid is not taken for a live run."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return started is None or _process_start(pid) in (None, started)


@dataclass(frozen=True)
class Holder:
    """What a lease file says about the run that holds it (``run`` None: the file is cut short)."""

    run: str | None
    host: str = "?"
    pid: int = 0
    process_start: str | None = None
    started: float = 0.0
    heartbeat: float = 0.0

    @classmethod
    def parse(cls, text: str | None, modified: float) -> Holder:
        try:
            data = json.loads(text or "")
            return cls(str(data["run"]), str(data["host"]), int(data["pid"]), data.get("process_start"),
                       float(data["started"]), float(data["heartbeat"]))
        except (ValueError, KeyError, TypeError):
            return cls(None, heartbeat=modified)  # being written, or cut short: judged by its file's age

    def stale(self, now: float, timeout: float) -> str | None:
        """Why the lease may be taken over, or None while its run may still be going."""
        if self.run is not None and self.host == socket.gethostname() and not _alive(self.pid, self.process_start):
            return f"its process {self.pid} on this host is gone"
        if now - self.heartbeat > timeout:
            return f"no heartbeat for {now - self.heartbeat:.0f} s (stale after {timeout:.0f} s)"
        return None

    def describe(self, now: float) -> str:
        if self.run is None:
            return "a run whose lease file is being written or was cut short"
        return (f"run {self.run} (host {self.host}, pid {self.pid}, started "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.started))}, "
                f"last heartbeat {max(0.0, now - self.heartbeat):.0f} s ago)")


class Lease:
    """This run's lease on an output; ``acquire`` it, ``check`` it before committing, ``release`` it at the end."""

    def __init__(self, fs, uri: str, run: str, timeout: float):
        self.fs, self.uri, self.run, self.timeout = fs, uri, run, timeout
        pid = os.getpid()
        self._record = {"run": run, "host": socket.gethostname(), "pid": pid, "process_start": _process_start(pid),
                        "started": time.time()}
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost: str | None = None

    def _text(self) -> str:
        return json.dumps({**self._record, "heartbeat": time.time()}) + "\n"

    def holder(self) -> Holder | None:
        try:
            text = self.fs.read_text(self.uri)
        except Exception:  # noqa: BLE001 - gone between two looks: nobody holds it
            return None if not self.fs.exists(self.uri) else Holder(None, heartbeat=time.time())
        return Holder.parse(text, self._modified())

    def _modified(self) -> float:
        try:
            return self.fs.modified(self.uri) / 1000.0
        except Exception:  # noqa: BLE001 - a filesystem without modification times: judged as fresh
            return time.time()

    @classmethod
    def acquire(cls, fs, uri: str, run: str, output: str, wait: bool = False,
                say: Callable[[str], None] = lambda _: None, timeout: float | None = None) -> Lease:
        """Take the lease or raise ``LeaseHeld`` naming the run that has it; with ``wait``, wait until it is free."""
        lease = cls(fs, uri, run, timeout_seconds() if timeout is None else timeout)
        told = False
        while True:
            if fs.create_new(uri, lease._text()):
                lease._start_heartbeat()
                return lease
            holder = lease.holder()
            if holder is None:
                continue  # released between the two looks
            now = time.time()
            why = holder.stale(now, lease.timeout)
            if why:
                if lease._take_over(holder):
                    say(f"took over the lease on {output} from {holder.describe(now)}: {why}")
                    lease._start_heartbeat()
                    return lease
                continue
            if not wait:
                raise LeaseHeld(f"output {output} is being written by {holder.describe(now)}; wait for it to "
                                "finish (or pass --wait), or choose another --output")
            if not told:
                say(f"waiting for {holder.describe(now)} to finish writing {output}")
                told = True
            time.sleep(WAIT_POLL)

    def _take_over(self, stale: Holder) -> bool:
        """Delete a stale lease only while it is still the one judged stale, then create ours."""
        if self.holder() != stale:
            return False
        self.fs.delete(self.uri)
        return self.fs.create_new(self.uri, self._text())

    def _start_heartbeat(self) -> None:
        interval = max(0.5, min(30.0, self.timeout / 10))

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        return
                except Exception:  # noqa: BLE001 - a missed heartbeat is retried; the timeout allows ten
                    continue

        self._beat = threading.Thread(target=beat, name="pricecurate-lease", daemon=True)
        self._beat.start()

    def renew(self) -> bool:
        """Refresh the heartbeat; False (and ``lost`` set) when another run holds the lease now."""
        holder = self.holder()
        if holder is None or holder.run != self.run:
            self.lost = f"the lease on this output was taken over by {holder.describe(time.time())}" if holder \
                else "the lease file of this run was deleted"
            return False
        self.fs.write_text(self.uri, self._text())
        return True

    def check(self) -> None:
        """Raise ``LeaseLost`` unless this run still holds the lease."""
        holder = self.holder()
        if self.lost is None and (holder is None or holder.run != self.run):
            self.lost = ("the lease file of this run was deleted" if holder is None
                         else f"the lease on this output was taken over by {holder.describe(time.time())}")
        if self.lost:
            raise LeaseLost(f"{self.lost}; this run publishes nothing")

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this run's."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=60)
        holder = self.holder()
        if holder is not None and holder.run == self.run:
            self.fs.delete(self.uri)
