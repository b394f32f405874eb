"""What a running stage has done so far, read from Spark's status, and the one line that says it.

Spark's status store (the driver's record of every stage, which its web UI serves) knows the active stages' tasks
and the input bytes and records they have read, running tasks included (executors report them with their
heartbeats). It is read through the JVM gateway, not the UI's REST API: that needs the UI on, and its first call
costs the driver about a CPU-second (the REST service starts), the better part of a small run's spare capacity on
two cores. The store is Spark's internal API: where it cannot be read, Spark's public status tracker gives the
tasks alone, and a snapshot says what it does not know as None.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

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


class StageRead(NamedTuple):
    """One Spark stage attempt as the status store has it."""

    stage_id: int
    tasks_done: int
    tasks: int
    bytes: int  # input read so far (all of it, once the stage ended)
    records: int


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

    def __init__(self, sc, kept=None, clock=time.monotonic):
        self._sc = sc
        self._kept = kept
        self._clock = clock
        self._store = _status_store(sc)
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

    def _active_stages(self) -> list[StageRead] | None:
        """The running stages as the status store has them, or None when it cannot be read."""
        if self._store is None:
            return None
        try:
            stages = self._store.activeStages()
            return [_stage_fields(stages.apply(i)) for i in range(stages.size())]
        except Exception:  # noqa: BLE001 - internal API: the status tracker answers instead
            return None

    def _count_ended(self, active: set[int]) -> None:
        """A stage seen running and now ended: what it read in all (its last attempt), once."""
        for stage_id in [i for i in self._read if i not in active and i not in self._final]:
            try:
                last = _stage_fields(self._store.lastStageAttempt(stage_id))
            except Exception:  # noqa: BLE001 - not known (yet): counted as last seen
                continue
            self._read[stage_id] = (last.bytes, last.records)
            self._final.add(stage_id)

    def snapshot(self) -> Snapshot | None:
        kept = self._kept.value - self._kept_before if self._kept is not None else None
        stages = self._active_stages()
        if stages is not None:
            if not stages:
                return None
            for stage in stages:
                self._read[stage.stage_id] = (stage.bytes, stage.records)
            self._count_ended({stage.stage_id for stage in stages})
            return Snapshot(
                sum(s.tasks_done for s in stages), sum(s.tasks for s in stages),
                sum(b for b, _ in self._read.values()), sum(r for _, r in self._read.values()), kept,
                self._active_seconds([s.stage_id for s in stages]),
            )
        tracker = self._sc.statusTracker()
        ids = tracker.getActiveStageIds()
        infos = [info for info in map(tracker.getStageInfo, ids) if info is not None]
        if not infos:
            return None
        return Snapshot(sum(i.numCompletedTasks for i in infos), sum(i.numTasks for i in infos), kept=kept,
                        active_seconds=self._active_seconds(ids))


def _status_store(sc):
    """The driver's status store (``SparkContext.statusStore``), or None where the JVM does not offer it."""
    try:
        return sc._jsc.sc().statusStore()
    except Exception:  # noqa: BLE001 - another Spark, or no JVM context (Spark Connect)
        return None


def _stage_fields(stage) -> StageRead:
    """What a snapshot reads of one ``status.api.v1.StageData``."""
    return StageRead(stage.stageId(), stage.numCompleteTasks(), stage.numTasks(), stage.inputBytes(),
                     stage.inputRecords())
