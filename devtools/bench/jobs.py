"""(b) the Spark job: the runs (JOBS), each CLI subprocess timed and sampled (run_job), baselines, (d) near_quality."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.bench.project import CLI, ROOT, BenchError, one_cpu, say

CONFIG = ROOT / "conf" / "course.yaml"


@dataclass(frozen=True)
class JobSetup:
    master: str
    one_core: bool  # pinned to one CPU with its JVM and Python workers, so local[1] is really one core
    label: str
    config: Path = CONFIG
    overrides: tuple[str, ...] = ()  # --set key=value


# local[1] is one task thread, but its JVM (reader, Arrow, GC, JIT threads) is free to use the
# other core; the per-core targets are judged on the pinned run, the unpinned one is shown beside it.
JOBS = {
    "local1": JobSetup("local[1]", True, "job local[1], one core"),
    "local1_unpinned": JobSetup("local[1]", False, "job local[1], unpinned"),
    "local2": JobSetup("local[2]", False, "job local[2]"),
    # All categories with dedup: the rules must still run once per line (its rate should match the course's).
    "local2_default": JobSetup("local[2]", False, "job local[2], conf/default.yaml", ROOT / "conf" / "default.yaml"),
    # The same without near-duplicate detection: what `near` costs.
    "local2_exact": JobSetup("local[2]", False, "job local[2], default.yaml, exact dedup only",
                             ROOT / "conf" / "default.yaml", ("dedup=title,text",)),
    # The bigger budget: texts up to 3,400 characters go through the tokenizer instead of 1,120.
    "local2_long": JobSetup("local[2]", False, "job local[2], conf/long-context.yaml",
                            ROOT / "conf" / "long-context.yaml"),
}

POLL_SECONDS = 0.5
STDERR_TAIL_LINES = 40


class Poller:
    """Calls ``sample()`` every ``interval`` seconds on a thread, from ``start()`` until ``stop()`` (and once more)."""

    interval = POLL_SECONDS

    def sample(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


@dataclass
class TreeSampler(Poller):
    """Polls a process tree for peak RSS per role, and the last CPU time seen per process."""

    root_pid: int
    peaks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("driver_python", "driver_jvm", "driver_total", "python_worker"), 0))
    cpu_by_pid: dict[int, float] = field(default_factory=dict)

    def sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return  # the CLI has just exited
        driver = {"driver_python": 0, "driver_jvm": 0}
        for process in processes:
            try:
                with process.oneshot():
                    rss, cmdline = process.memory_info().rss, " ".join(process.cmdline())
                    times = process.cpu_times()
            except psutil.Error:
                continue  # exited between listing and reading
            # Own user+system only: children's times would count reaped workers twice.
            self.cpu_by_pid[process.pid] = times.user + times.system
            role = self._role(process.pid, cmdline)
            if role in driver:
                driver[role] += rss
            if role:
                self.peaks[role] = max(self.peaks[role], rss)
        self.peaks["driver_total"] = max(self.peaks["driver_total"], sum(driver.values()))

    def _role(self, pid: int, cmdline: str) -> str | None:
        if pid == self.root_pid:
            return "driver_python"
        if "org.apache.spark.launcher.Main" in cmdline:
            return None  # spark-class's launcher: a short-lived JVM that only builds the real command line
        if "org.apache.spark.deploy.SparkSubmit" in cmdline:
            return "driver_jvm"  # in local mode this JVM also hosts the executor
        if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline:
            return "python_worker"
        return None

    def peaks_mb(self) -> dict[str, float | None]:
        return {f"{role}_peak_mb": round(rss / 2**20, 1) if rss else None for role, rss in self.peaks.items()}


@dataclass
class JobRun:
    wall: float
    cpu_seconds: float
    manifest: dict
    peaks_mb: dict


def disk_usage(folder: Path) -> int:
    """Bytes allocated on disk under ``folder`` (files vanish while Spark runs; those are skipped)."""
    total = 0
    for directory, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue
    return total


@dataclass
class DiskSampler(Poller):
    """Polls a folder's size on disk for its peak, in bytes (a Spark scratch folder, say)."""

    folder: Path
    peak: int = 0
    interval = 2.0  # walking a folder of shuffle files costs more than reading /proc

    def sample(self) -> None:
        self.peak = max(self.peak, disk_usage(self.folder))


def run_job(setup: JobSetup, input_dir: Path, output_dir: Path, log_dir: Path,
            env: dict[str, str] | None = None, samplers: tuple = ()) -> JobRun:
    """One `pricecurate run` subprocess, timed from spawn to exit and sampled while it runs.

    ``env`` is added to this process's environment; ``samplers`` (with start/stop) run beside the tree sampler.
    """
    # Baselines are timed on their own (``time_baselines``): a run's wall here is the curation alone.
    command = [str(CLI), "run", "--config", str(setup.config), "--input", str(input_dir), "--output", str(output_dir),
               "--categories", "all", "--master", setup.master, "--overwrite", "--no-report",
               *[part for override in ("baseline=false", *setup.overrides) for part in ("--set", override)]]
    cpus = one_cpu() if setup.one_core else None
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None  # inherited by the JVM and its workers
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"{output_dir.name}.stderr"
    with open(log_dir / f"{output_dir.name}.stdout", "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   preexec_fn=pin, env={**os.environ, **(env or {})})
        sampler = TreeSampler(process.pid)
        for each in (sampler, *samplers):
            each.start()
        code = process.wait()
        wall = time.perf_counter() - started
        for each in (sampler, *samplers):
            each.stop()
    if code != 0:
        tail = stderr_path.read_text(errors="replace").splitlines()[-STDERR_TAIL_LINES:]
        raise BenchError(f"`{' '.join(command)}` exited with {code}; last lines of its stderr:\n" + "\n".join(tail))
    manifest = json.loads((output_dir / "manifest.json").read_text())
    return JobRun(wall, sum(sampler.cpu_by_pid.values()), manifest, sampler.peaks_mb())


def time_baselines(output_dir: Path, log_dir: Path) -> dict:
    """`pricecurate baseline` on a finished output, timed from spawn to exit, and the scores it recorded."""
    command = [str(CLI), "baseline", str(output_dir), "--master", "local[2]"]
    with open(log_dir / "baseline.stdout", "wb") as out, open(log_dir / "baseline.stderr", "wb") as err:
        started = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode
        wall = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"`{' '.join(command)}` exited with {code}; see {log_dir / 'baseline.stderr'}")
    section = json.loads((output_dir / "manifest.json").read_text())["baselines"]
    return {"wall_s": round(wall, 2), "fit_s": section.get("seconds"), "train_items": section["train_items"],
            "test_items": section["test_items"],
            "models": {name: {key: scores[key] for key in ("average_error", "rmsle", "hit_rate")}
                       for name, scores in section["models"].items()}}


def near_quality() -> dict | None:
    """scripts/near_quality.py in its own process (its own Spark), as JSON."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "near_quality.py"), "--json"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
        say("near_quality.py failed:\n" + "\n".join(tail))
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])
