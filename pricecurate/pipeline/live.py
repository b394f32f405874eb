"""What a running stage has done so far, read from Spark's status, and the one line that says it.

Spark's status tracker knows the active stages' tasks; the web UI's REST API
also knows the input bytes and records they have read, running tasks included
(executors report them with their heartbeats). Either may be missing: with the
UI off only tasks are known, and a snapshot says what it does not know as None.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass

from pricecurate.units import duration_text, size_text


@dataclass(frozen=True)
class Snapshot:
    """Where the driver's current work stands: the active Spark stages' tasks, and what was read since it began."""

    tasks_done: int  # in the Spark stages running now
    tasks_total: int
    bytes_read: int | None = None  # input bytes, summed over every Spark stage since the work began (None: unknown)
    records_read: int | None = None  # input records, likewise
    kept: int | None = None  # items kept by the rules since the work began (counted as tasks finish)
    active_seconds: float = 0.0  # since the oldest Spark stage running now was first seen


@dataclass(frozen=True)
class Totals:
    """What the stage will have read when done, where known before it runs."""

    bytes: int | None = None
    records: int | None = None


READ_DONE = 0.95


def remaining_seconds(snapshot: Snapshot, totals: Totals, elapsed: float) -> float | None:
    """Seconds left at the pace so far: by input bytes while the input is being read (when its size is known),
    else by the running stages' tasks."""
    # Spark's byte count ends a little short of the files' sizes: past READ_DONE the read is over and the
    # stage's remaining work (numbering, keeping the items) is better judged by its tasks.
    if totals.bytes and snapshot.bytes_read and snapshot.bytes_read < READ_DONE * totals.bytes and elapsed > 0:
        done = snapshot.bytes_read / totals.bytes
        return elapsed * (1 - done) / done
    if snapshot.tasks_done and snapshot.active_seconds > 0:
        return snapshot.active_seconds * (snapshot.tasks_total - snapshot.tasks_done) / snapshot.tasks_done
    return None


def status_line(stage: str, snapshot: Snapshot, totals: Totals, elapsed: float) -> str:
    """E.g. ``items: 12/40 tasks, 1.21 GB of 3.40 GB read (36%), 2,310,000 records, 410,200 kept,
    23,100 records/s, ETA 2m05s``."""
    parts = [f"{stage}: {snapshot.tasks_done:,}/{snapshot.tasks_total:,} tasks"]
    reading = bool(totals.bytes)  # the stage that reads the input: its zeros say something too
    if snapshot.bytes_read is not None and (reading or snapshot.bytes_read):
        read = size_text(min(snapshot.bytes_read, totals.bytes or snapshot.bytes_read))
        if totals.bytes:
            # Later stages re-read the cache, which Spark counts as input too: the file read is done at 100%.
            share = min(snapshot.bytes_read / totals.bytes, 1.0)
            read += f" of {size_text(totals.bytes)} read ({share:.0%})"
        else:
            read += " read"
        parts.append(read)
    if snapshot.records_read is not None and (reading or snapshot.records_read):
        parts.append(f"{snapshot.records_read:,} records"
                     + (f" of ~{totals.records:,}" if totals.records else ""))
    if snapshot.kept is not None and (reading or snapshot.kept):
        parts.append(f"{snapshot.kept:,} kept")
    if snapshot.records_read and elapsed > 0:
        parts.append(f"{snapshot.records_read / elapsed:,.0f} records/s")
    left = remaining_seconds(snapshot, totals, elapsed)
    parts.append(f"ETA {duration_text(left)}" if left is not None else f"{duration_text(elapsed)} so far")
    return ", ".join(parts)


class SparkStatus:
    """Snapshots of a SparkContext's work since the last ``begin()``; ``kept`` is an accumulator the rules add to."""

    def __init__(self, sc, kept=None, timeout: float = 2.0, clock=time.monotonic):
        self._sc = sc
        self._kept = kept
        self._timeout = timeout
        self._clock = clock
        self._rest = None
        if sc.uiWebUrl:
            self._stages = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages"
            self._rest = f"{self._stages}?status=active"
            # The UI answers its first REST call slowly (a second or two): make it now, not during the first stage.
            threading.Thread(target=self._from_rest, daemon=True, name="status-warm-up").start()
        self.begin()

    def begin(self) -> None:
        """Start counting input again (a new stage of the job)."""
        self._read: dict[int, tuple[int, int]] = {}  # Spark stage id -> (bytes, records) when last seen
        self._final: set[int] = set()  # stages whose read is counted in full (they ended)
        self._first_seen: dict[int, float] = {}
        self._kept_before = self._kept.value if self._kept is not None else 0

    def _active_seconds(self, stage_ids) -> float:
        now = self._clock()
        return now - min(self._first_seen.setdefault(i, now) for i in stage_ids) if stage_ids else 0.0

    def _from_rest(self, url: str | None = None) -> list[dict] | None:
        try:
            with urllib.request.urlopen(url or self._rest, timeout=self._timeout) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None  # the UI is busy or gone: fall back to the status tracker this time

    def _count_ended(self, active: set[int]) -> None:
        """A stage seen running and now ended: what it read in all (its last attempt), once."""
        for stage_id in [i for i in self._read if i not in active and i not in self._final]:
            attempts = self._from_rest(f"{self._stages}/{stage_id}")
            if attempts:
                last = max(attempts, key=lambda attempt: attempt.get("attemptId", 0))
                self._read[stage_id] = (last.get("inputBytes", 0), last.get("inputRecords", 0))
                self._final.add(stage_id)

    def snapshot(self) -> Snapshot | None:
        kept = self._kept.value - self._kept_before if self._kept is not None else None
        stages = self._from_rest() if self._rest else None
        if stages is not None:
            if not stages:
                return None
            for stage in stages:
                self._read[stage["stageId"]] = (stage.get("inputBytes", 0), stage.get("inputRecords", 0))
            self._count_ended({stage["stageId"] for stage in stages})
            return Snapshot(
                sum(s.get("numCompleteTasks", 0) for s in stages), sum(s.get("numTasks", 0) for s in stages),
                sum(b for b, _ in self._read.values()), sum(r for _, r in self._read.values()), kept,
                self._active_seconds([s["stageId"] for s in stages]),
            )
        tracker = self._sc.statusTracker()
        ids = tracker.getActiveStageIds()
        infos = [info for info in map(tracker.getStageInfo, ids) if info is not None]
        if not infos:
            return None
        return Snapshot(sum(i.numCompletedTasks for i in infos), sum(i.numTasks for i in infos), kept=kept,
                        active_seconds=self._active_seconds(ids))
