"""Read a Spark event log and replay its stages on more cores than this machine has.

The scale-out projection (``scripts/scaleout.py``) runs the job on a scale
model of the full input and records Spark's event log. This module turns that
log into per-stage task durations and byte counts, and projects the wall time
on P cores by replaying each stage's tasks, scaled up to the full input, the
way Spark's scheduler hands them out. Pure Python: no Spark import, so it is
tested with hand-written log lines.

Only uncompressed logs are read (the projection runs with
``spark.eventLog.compress=false``); a rolled log directory
(``eventlog_v2_<app>/events_<n>_<app>``) is read file by file in order.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

COMPRESSED_SUFFIXES = (".lz4", ".lzf", ".snappy", ".zstd")
_ROLLED_FILE = re.compile(r"^events_(\d+)_")
_FILE_SCAN = "FileScanRDD"  # the RDD Spark's file sources read input files with


class EventLogError(ValueError):
    """An event log this module cannot read, phrased for the user."""


@dataclass(frozen=True)
class Stage:
    """One stage of the selected jobs: its successful tasks and the bytes it moved."""

    stage_id: int
    name: str
    tasks: int  # as declared by the stage (its last attempt)
    task_seconds: tuple[float, ...]  # successful task attempts, in launch order of their index
    input_bytes: int  # files and cached blocks read alike: Spark counts both as input
    shuffle_write_bytes: int
    shuffle_read_bytes: int
    reads_files: bool  # computes a file scan, rather than reading it from a cache
    task_bytes: tuple[int, ...] = ()  # each task's input and shuffle-read bytes, as task_seconds is ordered


@dataclass
class _StageBuilder:
    stage_id: int
    name: str = ""
    tasks: int = 0
    submitted_ms: int = 0
    rdds: dict[int, dict] = field(default_factory=dict)
    durations: list[tuple[int, int, float, int]] = field(default_factory=list)  # (attempt, index, seconds, bytes)
    input_bytes: int = 0
    shuffle_write_bytes: int = 0
    shuffle_read_bytes: int = 0


# ---------------------------------------------------------------- reading


def event_log_files(path: str | Path) -> list[Path]:
    """The file(s) of one application's log: the file itself, or a rolled directory's parts in order."""
    path = Path(path)
    if path.is_dir():
        parts = [p for p in path.iterdir() if _ROLLED_FILE.match(p.name)]
        if not parts:
            raise EventLogError(f"{path} holds no events_<n>_<app> files; is it a Spark event log directory?")
        files = sorted(parts, key=lambda p: int(_ROLLED_FILE.match(p.name).group(1)))
    else:
        files = [path]
    for file in files:
        if file.name.removesuffix(".inprogress").endswith(COMPRESSED_SUFFIXES):
            raise EventLogError(f"{file} is compressed; run with spark.eventLog.compress=false")
    return files


def find_event_log(events_dir: str | Path, app_id: str) -> Path:
    """The log of ``app_id`` in ``spark.eventLog.dir``: a rolled directory or a single file."""
    events_dir = Path(events_dir)
    for name in (f"eventlog_v2_{app_id}", app_id, f"{app_id}.inprogress"):
        if (events_dir / name).exists():
            return events_dir / name
    raise EventLogError(f"no event log for application {app_id} in {events_dir}")


def read_events(path: str | Path) -> Iterator[dict]:
    """Every event of the log, in order. A cut-off last line (a log still being written) is skipped."""
    for file in event_log_files(path):
        with open(file, encoding="utf-8") as handle:
            lines = handle.readlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    break
                raise EventLogError(f"{file}, line {number}: not a JSON event") from None


# ---------------------------------------------------------------- stages of the selected jobs


def _selected_stage_ids(events: Sequence[dict], job_group: str | None, first_job: int) -> set[int]:
    """Stages of the jobs with id >= first_job and, when given, in ``job_group``."""
    chosen: set[int] = set()
    for event in events:
        if event.get("Event") != "SparkListenerJobStart" or event["Job ID"] < first_job:
            continue
        group = (event.get("Properties") or {}).get("spark.jobGroup.id")
        if job_group is None or group == job_group:
            chosen.update(event.get("Stage IDs", ()))
    return chosen


def _task_bytes(metrics: dict) -> tuple[int, int, int]:
    shuffle_read = metrics.get("Shuffle Read Metrics") or {}
    return (
        (metrics.get("Input Metrics") or {}).get("Bytes Read", 0),
        (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0),
        shuffle_read.get("Remote Bytes Read", 0) + shuffle_read.get("Local Bytes Read", 0),
    )


def _succeeded(event: dict) -> bool:
    info = event["Task Info"]
    reason = (event.get("Task End Reason") or {}).get("Reason", "Success")
    return reason == "Success" and not info.get("Failed") and not info.get("Killed")


def _add_task(builder: _StageBuilder, event: dict) -> None:
    """A successful attempt's wall time and bytes; failed and killed attempts (speculation) are left out."""
    if not _succeeded(event):
        return
    info = event["Task Info"]
    seconds = (info["Finish Time"] - info["Launch Time"]) / 1000
    read, written, shuffled_in = _task_bytes(event.get("Task Metrics") or {})
    builder.durations.append((event.get("Stage Attempt ID", 0), info["Index"], seconds, read + shuffled_in))
    builder.input_bytes += read
    builder.shuffle_write_bytes += written
    builder.shuffle_read_bytes += shuffled_in


def _add_stage_info(builder: _StageBuilder, info: dict) -> None:
    builder.name = info.get("Stage Name", builder.name)
    builder.tasks = info.get("Number of Tasks", builder.tasks)
    builder.submitted_ms = info.get("Submission Time") or builder.submitted_ms
    for rdd in info.get("RDD Info", ()):
        builder.rdds[rdd["RDD ID"]] = rdd


def _is_persisted(rdd: dict) -> bool:
    level = rdd.get("Storage Level") or {}
    return bool(level.get("Use Memory") or level.get("Use Disk") or level.get("Use Off Heap"))


def _computed_rdds(rdds: dict[int, dict], cached: set[int]) -> set[int]:
    """The RDDs a stage really computes: its lineage, cut at RDDs already cached by an earlier stage."""
    parents_in_stage = {p for rdd in rdds.values() for p in rdd.get("Parent IDs", ()) if p in rdds}
    todo = [rdd_id for rdd_id in rdds if rdd_id not in parents_in_stage]  # the stage's output RDD(s)
    seen: set[int] = set()
    while todo:
        rdd_id = todo.pop()
        if rdd_id in seen:
            continue
        seen.add(rdd_id)
        if rdd_id not in cached:
            todo.extend(p for p in rdds[rdd_id].get("Parent IDs", ()) if p in rdds)
    return seen


def _finish(builders: Iterable[_StageBuilder]) -> list[Stage]:
    """Stages in submission order, each told whether it scans files or reads them from a cache.

    Spark's event log lists a stage's whole lineage, including a file scan
    behind a cached DataFrame, and counts cache reads as input bytes too. The
    first stage that computes a persisted RDD reads its lineage; later stages
    read the cache (the job persists MEMORY_AND_DISK, so nothing is evicted).
    """
    stages, cached = [], set()
    for builder in sorted(builders, key=lambda b: (b.submitted_ms, b.stage_id)):
        computed = _computed_rdds(builder.rdds, cached)
        reads_files = any(builder.rdds[r].get("Name") == _FILE_SCAN for r in computed)
        cached.update(r for r in computed if _is_persisted(builder.rdds[r]))
        tasks = sorted(builder.durations)
        stages.append(Stage(builder.stage_id, builder.name, builder.tasks, tuple(t[2] for t in tasks),
                            builder.input_bytes, builder.shuffle_write_bytes, builder.shuffle_read_bytes, reads_files,
                            tuple(t[3] for t in tasks)))
    return stages


def read_stages(path: str | Path, job_group: str | None = None, first_job: int = 0) -> list[Stage]:
    """The stages that ran tasks for the selected jobs, in submission order.

    ``job_group`` keeps only jobs started under ``SparkContext.setJobGroup(job_group, ...)``;
    ``first_job`` drops jobs with a smaller id (a warm-up run before them).
    Stages a job listed but skipped (their shuffle output already existed) ran no tasks and are left out.
    """
    events = list(read_events(path))
    chosen = _selected_stage_ids(events, job_group, first_job)
    builders: dict[int, _StageBuilder] = {}
    for event in events:
        kind = event.get("Event")
        if kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            info = event["Stage Info"]
            if info["Stage ID"] in chosen:
                _add_stage_info(builders.setdefault(info["Stage ID"], _StageBuilder(info["Stage ID"])), info)
        elif kind == "SparkListenerTaskEnd" and event.get("Stage ID") in chosen:
            _add_task(builders.setdefault(event["Stage ID"], _StageBuilder(event["Stage ID"])), event)
    return _finish(b for b in builders.values() if b.durations)


# ---------------------------------------------------------------- projection


def replay(task_seconds: Sequence[float], slots: int) -> float:
    """Makespan of the tasks on ``slots`` cores: in order, each to the slot that frees first, as Spark does."""
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    free_at = [0.0] * min(slots, max(len(task_seconds), 1))
    for seconds in task_seconds:
        heapq.heapreplace(free_at, free_at[0] + seconds)
    return max(free_at)


def scaled_seconds(seconds: float, ratio: float, fixed_seconds: float) -> float:
    """A task's time on the full input: its fixed per-task cost stays, the rest grows with the data."""
    return min(seconds, fixed_seconds) + max(0.0, seconds - fixed_seconds) * ratio


# How a stage's scaled time is shared among its tasks.
AS_MEASURED = "measured"  # each task's own measured time, scaled
BY_BYTES = "bytes"  # the stage's scaled data time, shared in proportion to the bytes each task read


def spread_by_bytes(task_seconds: Sequence[float], task_bytes: Sequence[int], ratio: float,
                    fixed_seconds: float) -> list[float]:
    """Each task's full-scale time: its fixed cost, plus the stage's data time shared by the bytes it read.

    Measured on a small model, a task's time also holds costs that do not grow
    with its data (the first tasks of a stage on each executor thread run the
    stage's code before the JIT has compiled it; GC pauses; the machine's other
    work). Scaled by R, a 0.2 s hiccup becomes a 24 s task at R = 120. Sharing
    the stage's total by bytes keeps what a cluster cares about, a task that
    reads more than the others, and drops the amplified noise.

    A stage whose tasks read nothing, neither input nor shuffle, works on a
    table made on the driver (the split line offsets, the balancing cuts): it
    has as many rows in the model as in the full run, so it is not scaled.
    """
    total_bytes = sum(task_bytes)
    if not total_bytes:
        return list(task_seconds)
    data_seconds = sum(max(0.0, s - fixed_seconds) for s in task_seconds) * ratio
    return [min(s, fixed_seconds) + data_seconds * b / total_bytes for s, b in zip(task_seconds, task_bytes)]


@dataclass(frozen=True)
class StageProjection:
    stage_id: int
    name: str
    tasks: int
    longest_s: float  # the longest scaled task: no core count makes the stage shorter
    wall_s: float  # replayed on the cores
    task_s: float  # sum of scaled task times


@dataclass(frozen=True)
class Projection:
    cores: int
    ratio: float
    fixed_seconds: float
    stages: list[StageProjection]
    wall_s: float  # stages one after another
    ideal_s: float  # all scaled task time spread perfectly over the cores
    spread: str = AS_MEASURED

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s if self.wall_s else 1.0

    def to_dict(self) -> dict:
        return {
            "cores": self.cores,
            "wall_s": round(self.wall_s, 2),
            "ideal_s": round(self.ideal_s, 2),
            "efficiency": round(self.efficiency, 3),
            "spread": self.spread,
            "stages": [
                {"stage_id": s.stage_id, "name": s.name, "tasks": s.tasks, "longest_s": round(s.longest_s, 2),
                 "wall_s": round(s.wall_s, 2), "task_s": round(s.task_s, 2)}
                for s in self.stages
            ],
        }


def project(stages: Sequence[Stage], ratio: float, cores: int, fixed_seconds: float,
            spread: str = AS_MEASURED) -> Projection:
    """Each stage's tasks scaled by ``ratio`` and replayed on ``cores``; stages run in sequence.

    ``spread`` is ``AS_MEASURED`` (every task's own time, scaled) or ``BY_BYTES`` (``spread_by_bytes``).
    """
    if spread not in (AS_MEASURED, BY_BYTES):
        raise ValueError(f"spread must be {AS_MEASURED!r} or {BY_BYTES!r}, got {spread!r}")
    projected = []
    for stage in stages:
        if spread == BY_BYTES:
            if len(stage.task_bytes) != len(stage.task_seconds):
                raise ValueError(f"stage {stage.stage_id} has no bytes per task to share its time by")
            scaled = spread_by_bytes(stage.task_seconds, stage.task_bytes, ratio, fixed_seconds)
        else:
            scaled = [scaled_seconds(seconds, ratio, fixed_seconds) for seconds in stage.task_seconds]
        projected.append(StageProjection(stage.stage_id, stage.name, len(scaled), max(scaled, default=0.0),
                                         replay(scaled, cores), sum(scaled)))
    wall = sum(s.wall_s for s in projected)
    ideal = sum(s.task_s for s in projected) / cores
    return Projection(cores, ratio, fixed_seconds, projected, wall, ideal, spread)


@dataclass(frozen=True)
class ShuffleSummary:
    """What the stages that scan the input files read and shuffle, against the input's size."""

    input_bytes: int  # the input files' size
    scanned_bytes: int  # bytes those stages read: more than input_bytes when the input is read again
    shuffle_write_bytes: int
    scan_stages: int

    @property
    def share(self) -> float:
        return self.shuffle_write_bytes / self.input_bytes if self.input_bytes else 0.0

    @property
    def reads_of_input(self) -> float:
        return self.scanned_bytes / self.input_bytes if self.input_bytes else 0.0


def input_shuffle(stages: Sequence[Stage], input_bytes: int | None = None) -> ShuffleSummary:
    """Shuffle bytes written by the file-scanning stages; ``input_bytes`` defaults to the bytes they read."""
    scans = [s for s in stages if s.reads_files]
    scanned = sum(s.input_bytes for s in scans)
    return ShuffleSummary(scanned if input_bytes is None else input_bytes, scanned,
                          sum(s.shuffle_write_bytes for s in scans), len(scans))
