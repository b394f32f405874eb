"""Throughput benchmark: the course's per-record loop vs. the Spark job vs. the tokenizer alone.

    .venv/bin/python scripts/bench.py [--records N] [--baseline-records M] [--json] [--workdir DIR] [--keep]
    .venv/bin/python scripts/bench.py --scaleout [--records N] [...]   (runs scripts/scaleout.py instead)

Measures, on synthetic input spread evenly over all 34 categories:
  (a) baseline: json.loads + recipe + transformers encode/decode, one record at a time, in this process;
  (b) the `pricecurate run` CLI at local[1] held to one CPU, at local[1] unpinned and at local[2] (conf/course.yaml),
      and at local[2] with conf/default.yaml (all categories, exact and near dedup) and with it less `near`,
      each on the big input and on a tiny one (fixed cost); the baseline is held to the same one CPU;
  (c) the floor: one encode_batch_fast call over every text the recipe sends to the tokenizer;
  (d) near-duplicate groups against exact Jaccard, per similarity band (scripts/near_quality.py);
  (e) the recipe budget: conf/long-context.yaml's job rate beside default.yaml's, and what each preset keeps of
      the real records in ../shared/data (kept share, tokens per prompt; the synthetic texts are short).
The big input is the synthetic sample plus planted near-duplicate families (one per 2,000 records).
The Spark jobs run first, before this process loads any tokenizer, so nothing here competes with them
for the two cores and no process is forked after the tokenizers thread pool has started.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devtools/ (not installed)

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "pricecurate"
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
BUDGET_PRESETS = ("course.yaml", "long-context.yaml")
# 2023 records, and older records converted to the 2023 schema (shorter texts, on average).
SHARED_DATA = Path(os.environ.get("PRICECURATE_SHARED", ROOT.parent / "shared")) / "data"
BUDGET_SETS = ("real", "converted")
# Planted near-duplicate families (13 variants each) per 2,000 records: about 3% of the kept items have a
# near-twin, as measured on the real records in ../shared; the synthetic sample alone has none.
RECORDS_PER_PLANTED_FAMILY = 2_000
PLANTED_FILE = "meta_Video_Games.jsonl"
TINY_PER_CATEGORY = 20
POLL_SECONDS = 0.5
STDERR_TAIL_LINES = 40
TARGETS = {"local1_vs_baseline": 2.0, "local2_vs_local1": 1.7}  # informational, never asserted
NEAR_COST_TARGET = 0.40  # near may add at most this share to the steady-state wall time
REUSE_TARGET = 0.20  # a run on reused items, as a share of the full run's wall time


class BenchError(Exception):
    """A failure the user can act on; main() prints it without a traceback."""


def require_project() -> None:
    """Fail early and clearly when the venv lacks the package or its CLI."""
    if not CLI.exists():
        raise BenchError(f"{CLI} not found: create the venv and `pip install -e .[test]` in {ROOT}")
    try:
        import psutil  # noqa: F401

        import pricecurate  # noqa: F401
    except ImportError as exc:
        raise BenchError(f"{exc.name} is not importable by {sys.executable}; run this script with "
                         f"{ROOT / '.venv/bin/python'} after `pip install -e .[test]`") from exc


# ---------------------------------------------------------------- input


def ensure_sample(dest: Path, per_category: int, planted_families: int = 0) -> int:
    """Write (or reuse) per_category records for each category in dest, plus planted near-duplicate
    families appended to one file; return the record count."""
    from devtools.near_quality import planted_records
    from pricecurate.rules.categories import CATEGORIES
    from pricecurate.sample import write_sample

    # The marker sits beside the folder, not in it, and is written last: a half-written
    # folder from an interrupted run is never mistaken for a finished one.
    marker = dest.with_name(dest.name + ".done.json")
    wanted = {"records_per_category": per_category, "categories": len(CATEGORIES), "seed": 0,
              "planted_families": planted_families}
    planted = planted_records(bases=planted_families) if planted_families else []
    total = per_category * len(CATEGORIES) + len(planted)
    if marker.exists() and dest.is_dir() and json.loads(marker.read_text()) == wanted:
        return total
    shutil.rmtree(dest, ignore_errors=True)
    write_sample(dest, records_per_category=per_category, seed=0)
    with open(dest / PLANTED_FILE, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in planted)
    marker.write_text(json.dumps(wanted))
    return total


def category_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("meta_*.jsonl"))


def read_even_subset(folder: Path, count: int) -> list[str]:
    """The first lines of each category file, `count` in all, split as evenly as possible."""
    files = category_files(folder)
    share, extra = divmod(count, len(files))
    lines: list[str] = []
    for index, path in enumerate(files):
        wanted = share + (1 if index < extra else 0)
        with open(path, encoding="utf-8") as handle:
            for _, line in zip(range(wanted), handle):
                lines.append(line)
    return lines


# ---------------------------------------------------------------- (a) baseline and (c) floor


def hf_tokenizer(spec_json: str):
    """The transformers fast tokenizer the course notebook used, from the job's own tokenizer JSON."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(spec_json))


def per_record_loop(lines: list[str], tokenizer) -> int:
    """The course's loop, one record at a time; returns how many items it kept."""
    from pricecurate.rules import recipe

    kept = 0
    for line in lines:
        prepared = recipe.prepare(json.loads(line))
        if isinstance(prepared, recipe.Drop):
            continue
        ids = tokenizer.encode(prepared.text, add_special_tokens=False)
        if not recipe.has_enough_tokens(len(ids)):
            continue
        text = tokenizer.decode(ids[: recipe.MAX_TOKENS], clean_up_tokenization_spaces=False)
        prompt = recipe.make_prompt(recipe.clean_up_decoded(text), prepared.price)
        len(tokenizer.encode(prompt, add_special_tokens=False))  # the token count the course stored
        kept += 1
    return kept


@dataclass
class Timed:
    seconds: float
    cpu_seconds: float  # this process only: shows when a call used more than one core
    value: object = None


def timed(function, *args) -> Timed:
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*args)
    return Timed(time.perf_counter() - wall, time.process_time() - cpu, value)


def job_codec(spec_json: str):
    """The batch codec the job's workers build (built outside any timed region, like the tokenizer above)."""
    from pricecurate.tokenizer.engine import build_codec

    return build_codec(spec_json)  # the job's default engine choice


def kept_by_build_items(lines: list[str], codec) -> int:
    """What the job's batch item builder keeps on the same lines (the sanity check for the baseline)."""
    from pricecurate.rules.lines import KEPT, build_items

    batch = 5000  # about the size of the Arrow batches the job feeds it
    return sum(
        outcome.status == KEPT
        for start in range(0, len(lines), batch)
        for outcome in build_items(lines[start : start + batch], codec)
    )


def budget_on_real_records(spec_json: str) -> dict | None:
    """Per record set and preset, what the preset's recipe keeps of the real records in ../shared and how long
    the prompts are."""
    from pricecurate.config import load_config
    from pricecurate.rules.lines import KEPT, build_items

    if not SHARED_DATA.is_dir():
        return None
    codec = job_codec(spec_json)
    found = {}
    for name in BUDGET_SETS:
        lines = [line for path in sorted((SHARED_DATA / name).glob("*.jsonl"))
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for preset in BUDGET_PRESETS:
            rules = load_config(ROOT / "conf" / preset).recipe
            tokens = [o.token_count for o in build_items(lines, codec, rules=rules) if o.status == KEPT]
            found[f"{name}, {preset}"] = {
                "recipe": rules.label, "records": len(lines), "kept": len(tokens),
                "mean_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
                "max_tokens": max(tokens, default=None), "prompt_tokens": sum(tokens)}
    return found


def candidate_texts(folder: Path) -> list[str]:
    """Every text the recipe hands to the tokenizer, i.e. the Candidates over the whole input."""
    from pricecurate.rules import recipe

    texts = []
    for path in category_files(folder):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                prepared = recipe.prepare(json.loads(line))
                if isinstance(prepared, recipe.Candidate):
                    texts.append(prepared.text)
    return texts


def encode_all(tokenizer, texts: list[str]) -> int:
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    return len(encode(texts, add_special_tokens=False))


def _baseline_on_one_cpu(folder: str, count: int, spec_json: str) -> Timed:
    os.sched_setaffinity(0, one_cpu())
    return timed(per_record_loop, read_even_subset(Path(folder), count), hf_tokenizer(spec_json))


def baseline_on_one_cpu(folder: Path, count: int, spec_json: str) -> Timed:
    """The baseline in a fresh interpreter held to one CPU, like the pinned job.

    A fresh process, because the tokenizers thread pool keeps the CPU set of
    the moment it starts: started here under the pin, it would hobble the floor.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_baseline_on_one_cpu, str(folder), count, spec_json).result()


def floor_single_thread(tokenizer, texts: list[str]) -> Timed:
    """The same call with the tokenizers thread pool switched off, for a per-core comparison."""
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read by tokenizers on every batch call
    try:
        return timed(encode_all, tokenizer, texts)
    finally:
        if previous is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


# ---------------------------------------------------------------- (b) the Spark job


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


def one_cpu() -> set[int]:
    return {min(os.sched_getaffinity(0))}


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


# ---------------------------------------------------------------- machine and report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def java_version() -> str:
    try:
        result = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        return (result.stderr or result.stdout).splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine_info() -> dict:
    import psutil
    import pyspark
    import tokenizers
    import transformers

    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
        "java": java_version(),
        # Every job here starts a JVM: with the class archive (`pricecurate prepare`) each starts ~3 s sooner.
        "jvm_archive": jvm_archive_mapped(),
    }


def jvm_archive_mapped() -> bool:
    from pricecurate.paths import cache_dir
    from pricecurate.spark.jvm_archive import mapped

    return mapped(cache_dir()) is not None


def outside_stages(run: JobRun) -> float:
    """Wall time the job spent outside its stages: JVM launch, session, imports, stop."""
    return run.wall - sum(run.manifest["stage_seconds"].values())


def rate(records: int, seconds: float | None) -> float | None:
    return round(records / seconds, 1) if seconds and seconds > 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def fmt(value, spec: str = ",.0f", missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def print_report(r: dict, big: dict[str, JobRun], tiny: dict[str, JobRun]) -> None:
    m = r["machine"]
    print(f"\npricecurate bench: {r['records']:,} records ({r['records'] // 34:,} per category), "
          f"baseline on {r['baseline_records']:,}")
    print(f"machine: {m['cores']} cores ({m['cpu_model']}), {m['ram_gb']} GiB RAM, "
          f"1-min load {m['load_average_at_start'][0]} at start, {m['load_average_at_end'][0]} at end")
    print(f"         Python {m['python']}, pyspark {m['pyspark']}, tokenizers {m['tokenizers']}, "
          f"transformers {m['transformers']}, {m['java']}"
          + (", JVM class archive mapped" if m.get("jvm_archive") else ", no JVM class archive (`pricecurate prepare`)"))

    print(f"\n{'throughput':<52}{'records/s':>11}{'wall s':>9}{'cpu s':>8}{'cores':>7}")
    for label, rps, wall, cpu in r["_rows"]:
        cores = fmt(cpu / wall if cpu and wall else None, ".2f", "")
        print(f"  {label:<50}{fmt(rps):>11}{fmt(wall, '.2f', ''):>9}{fmt(cpu, '.1f', ''):>8}{cores:>7}")

    print(f"\n{'ratios':<52}{'value':>11}{'target':>9}")
    for key, label in (("local1_vs_baseline", "job local[1] one core / baseline (steady)"),
                       ("local2_vs_local1", "job local[2] / job local[1] one core (steady)"),
                       ("local1_unpinned_vs_baseline", "job local[1] unpinned / baseline (steady)"),
                       ("local2_vs_local1_unpinned", "job local[2] / job local[1] unpinned (steady)"),
                       ("local1_vs_floor", "job local[1] / floor (steady)"),
                       ("local2_vs_floor", "job local[2] / floor (steady)"),
                       ("local1_vs_floor_1thread", "job local[1] / floor 1 thread (steady)"),
                       ("local1_vs_job_engine_floor", "job local[1] / job-engine floor (steady)"),
                       ("local2_default_vs_local2", "job local[2] default.yaml / course.yaml (steady)"),
                       ("local2_exact_vs_local2", "job local[2] exact dedup only / course.yaml (steady)"),
                       ("local2_long_vs_local2_default", "job local[2] long-context / default.yaml (steady)")):
        value, target = r["ratios"][key], TARGETS.get(key)
        verdict = "" if target is None or value is None else ("  met" if value >= target else "  NOT met")
        shown = "n/a" if value is None else f"{value:.2f}x"
        print(f"  {label:<50}{shown:>11}{'' if target is None else f'{target:.1f}x':>9}{verdict}")

    near = r["near_cost"]
    if near is not None:
        verdict = "met" if near <= NEAR_COST_TARGET else "NOT met"
        print(f"  {'near-duplicates add to steady-state wall time':<50}{near:>10.0%}{NEAR_COST_TARGET:>9.0%}  {verdict}"
              f"  ({r['near_groups']:,} groups, {r['near_dropped']:,} dropped)")

    fixed = r["fixed_cost_s"]
    print(f"\nfixed cost (wall of a {tiny['local1'].manifest['accounting']['lines']:,}-record run): "
          + ", ".join(f"{JOBS[name].label.removeprefix('job ')} {seconds:.1f}s" for name, seconds in fixed.items()))
    if max(fixed.values()) > 0.5 * min(run.wall for run in big.values()):
        print("  note: fixed cost is over half of a big run; steady-state rates are noisy at this N")
    shares = ", ".join(f"{JOBS[name].label.removeprefix('job ')} {seconds:.1f}s ({100 * r['startup_share'][name]:.0f}%)"
                       for name, seconds in r["startup_s"].items())
    print(f"Spark start-up and stop (wall outside the stages) in the big runs: {shares}")
    if None in (r[f"job_{name}_rps"] for name in JOBS):
        print("  note: a big run was no slower than its tiny run, so its steady rate is n/a (raise --records)")

    reuse = r.get("reuse")
    if reuse:
        print(f"\nreusing the items of the default run (full run {reuse['reuse']['full_wall_s']:.1f}s):")
        for name, what in (("reuse", "other balancing and splits"), ("reseed", "... and another seed, deduplicated again")):
            run = reuse[name]
            verdict = f" (target < {REUSE_TARGET:.0%}: {'met' if run['share'] < REUSE_TARGET else 'NOT met'})" \
                if name == "reuse" else ""
            stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in run["stage_seconds"].items())
            print(f"  {what}: {run['wall_s']:.1f}s, {run['share']:.0%} of the full run{verdict}; rules ran on "
                  f"{run['rule_records']:,} lines; {stages}")
        archive = r.get("jvm_archive")
        if archive:
            print(f"  JVM class archive: the tiny default run {archive['fixed_cost_s']:.1f}s with it, "
                  f"{archive['fixed_cost_without_s']:.1f}s without; the reuse run {archive['reuse_s']:.1f}s with it, "
                  f"{archive['reuse_without_s']:.1f}s ({archive['reuse_without_s'] / reuse['reuse']['full_wall_s']:.0%}"
                  " of the full run) without")
        else:
            print("  no JVM class archive on this machine (`pricecurate prepare` builds it): every run starts ~3 s later")
    baselines = r.get("baselines")
    if baselines:
        print(f"\nbaselines on the default run's splits ({baselines['train_items']:,} train, "
              f"{baselines['test_items']:,} test): `pricecurate baseline` {baselines['wall_s']:.1f}s wall, "
              f"{baselines['fit_s']:.1f}s fitting and scoring (what `baseline: true` adds to a run)")
        for name, scores in baselines["models"].items():
            print(f"  {name:<10} average error ${scores['average_error']:,.2f}  RMSLE {scores['rmsle']:.3f}  "
                  f"hits {scores['hit_rate']:.1%}")
    budget = r.get("budget")
    if budget:
        print(f"\n{'recipe budget, shared records':<30}{'recipe':>26}{'records':>9}{'kept':>7}{'share':>8}{'tokens':>8}"
              f"{'max':>6}{'all tokens':>12}")
        for label, b in budget.items():
            print(f"  {label:<28}{b['recipe']:>26}{b['records']:>9,}{b['kept']:>7,}{b['kept'] / b['records']:>8.1%}"
                  f"{fmt(b['mean_tokens'], '.0f'):>8}{fmt(b['max_tokens'], ',.0f'):>6}{b['prompt_tokens']:>12,}")
        print(f"  ({SHARED_DATA}; tokens: prompt tokens per kept item, mean)")
    long_kept = r["kept"].get("local2_long")
    if long_kept is not None:
        print(f"  synthetic input: long-context keeps {long_kept:,} items, default.yaml {r['kept']['local2_default']:,}")

    short = {"local1": "l1", "local1_unpinned": "l1u", "local2": "l2", "local2_default": "l2d", "local2_exact": "l2x",
             "local2_long": "l2L"}
    runs = {f"{short[name]} {size}": group[name] for name in JOBS for size, group in (("tiny", tiny), ("big", big))}
    stages = list(dict.fromkeys(s for run in runs.values() for s in run.manifest["stage_seconds"]))
    print(f"\n{'stage seconds':<30}" + "".join(f"{name:>9}" for name in runs))
    for stage in stages:
        print(f"  {stage:<28}" + "".join(f"{fmt(run.manifest['stage_seconds'].get(stage), '.2f'):>9}"
                                          for run in runs.values()))
    print(f"  {'outside stages (start/stop)':<28}" + "".join(f"{outside_stages(run):>9.2f}" for run in runs.values()))
    print(f"  {'wall':<28}" + "".join(f"{run.wall:>9.2f}" for run in runs.values()))

    print(f"\n{'peak RSS MB (big runs)':<30}" + "".join(f"{short[name]:>10}" for name in JOBS))
    for key in r["peak_rss_mb"]["local1"]:
        print(f"  {key:<28}" + "".join(f"{fmt(r['peak_rss_mb'][name][key], ',.0f'):>10}" for name in JOBS))
    builds = r["tokenizer_builds"]
    print(f"  {'tokenizer worker builds':<28}" + "".join(f"{builds[name]:>10}" for name in JOBS))
    once = {name: count == r["records"] for name, count in r["rule_records"].items()}
    print(f"  {'rules ran once per line':<28}" + "".join(f"{'yes' if once[name] else 'NO':>10}" for name in JOBS))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # A million records keep Spark's start-up and stop under a tenth of even the fastest big run.
    parser.add_argument("--records", type=int, default=1_000_000,
                        help="input records, spread evenly over the 34 categories (default: %(default)s)")
    parser.add_argument("--baseline-records", type=int,
                        help="records for the slow per-record baseline (default: min(N, 60000))")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line, last")
    parser.add_argument("--workdir", type=Path, help="where inputs and outputs go (kept; inputs reused)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--scaleout", action="store_true",
                        help="run the scale-out projection instead (scripts/scaleout.py; its options follow)")
    args = parser.parse_args(argv)
    if args.records < 34:
        parser.error("--records must be at least 34 (one per category)")
    return args


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def bench(args: argparse.Namespace, workdir: Path) -> dict:
    from pricecurate.rules.categories import CATEGORIES
    from pricecurate.tokenizer.spec import load_spec

    machine = machine_info()
    say("generating input (reused when already there)")
    records = ensure_sample(workdir / "input", math.ceil(args.records / len(CATEGORIES)),
                            args.records // RECORDS_PER_PLANTED_FAMILY)
    ensure_sample(workdir / "tiny", TINY_PER_CATEGORY)
    baseline_records = min(args.baseline_records or 60_000, records)
    spec = load_spec()  # on the driver too; this fills its cache so no job pays for building it

    big: dict[str, JobRun] = {}
    tiny: dict[str, JobRun] = {}
    inputs = {"tiny": workdir / "tiny", "big": workdir / "input"}
    for name, setup in JOBS.items():
        # Tiny first: it measures the fixed cost (JVM start, session, imports) the big run also pays.
        for size, runs in (("tiny", tiny), ("big", big)):
            say(f"{setup.label} on the {size} input")
            runs[name] = run_job(setup, inputs[size], workdir / "out" / f"{name}-{size}", workdir / "logs")
            say(f"  {runs[name].wall:.1f}s")
        if big[name].manifest["accounting"]["lines"] != records:
            say(f"warning: {setup.label} read {big[name].manifest['accounting']['lines']:,} lines, not {records:,}")

    # Iterating on balancing and splits: the default run again on the big input's items, reused; then with another
    # seed too, which picks other representatives of each duplicate group, so deduplication runs again.
    from pricecurate.spark.jvm_archive import OFF_ENV

    reuse_runs = {}
    archive = jvm_archive_mapped()
    without_archive = {OFF_ENV: "off"}
    for name, overrides, env in (
            ("reuse", ("balance.slot_cap=600", "split.test=5000"), None),
            ("reseed", ("balance.slot_cap=600", "split.test=5000", "seed=7"), None),
            *([("reuse_no_archive", ("balance.slot_cap=600", "split.test=5000"), without_archive)] if archive else [])):
        setup = JobSetup("local[2]", False, f"job local[2], default.yaml reusing the items ({', '.join(overrides)})"
                         + (", no JVM class archive" if env else ""), ROOT / "conf" / "default.yaml",
                         (f"reuse_items={workdir / 'out' / 'local2_default-big'}", *overrides))
        say(f"{setup.label} on the big input")
        reuse_runs[name] = run_job(setup, inputs["big"], workdir / "out" / f"local2_{name}-big", workdir / "logs", env)
        say(f"  {reuse_runs[name].wall:.1f}s")
    if archive:  # what the archive saves every run: the tiny default run again without it
        say("job local[2], conf/default.yaml on the tiny input, no JVM class archive")
        tiny_without = run_job(JOBS["local2_default"], inputs["tiny"], workdir / "out" / "local2_default-tiny-noarchive",
                               workdir / "logs", without_archive)
        say(f"  {tiny_without.wall:.1f}s")

    say("baselines: `pricecurate baseline` on the default run's output")
    baselines = time_baselines(workdir / "out" / "local2_default-big", workdir / "logs")
    say(f"  {baselines['wall_s']:.1f}s")

    say("near-duplicate quality against exact Jaccard (scripts/near_quality.py)")
    quality = near_quality()

    say(f"baseline: per-record loop over {baseline_records:,} records")
    baseline = baseline_on_one_cpu(workdir / "input", baseline_records, spec.json)
    subset = read_even_subset(workdir / "input", baseline_records)
    batch = timed(kept_by_build_items, subset, job_codec(spec.json))
    if baseline.value != batch.value:
        say(f"warning: baseline kept {baseline.value:,} items, build_items keeps {batch.value:,} on the same lines")
    del subset

    say("floor: preparing every record, then one batch encode")
    from tokenizers import Tokenizer

    texts = candidate_texts(workdir / "input")
    tokenizer = Tokenizer.from_str(spec.json)
    floor = timed(encode_all, tokenizer, texts)
    floor_1 = floor_single_thread(tokenizer, texts)
    # The engine the job actually uses (tiktoken for Llama 3), on the same texts in one call.
    engine = job_codec(spec.json)
    floor_engine = timed(lambda: len(engine.encode(texts)))

    def steady(name: str) -> float | None:
        return rate(records, big[name].wall - tiny[name].wall)

    result = {
        "records": records,
        "baseline_records": baseline_records,
        "baseline_kept": baseline.value,
        "build_items_kept": batch.value,
        "floor_texts": len(texts),
        "baseline_rps": rate(baseline_records, baseline.seconds),
        "build_items_rps": rate(baseline_records, batch.seconds),
        **{f"job_{name}_rps": steady(name) for name in JOBS},
        **{f"job_{name}_raw_rps": rate(records, big[name].wall) for name in JOBS},
        "floor_rps": rate(records, floor.seconds),
        "floor_1thread_rps": rate(records, floor_1.seconds),
        "floor_job_engine_rps": rate(records, floor_engine.seconds),
        "job_engine": type(engine).__name__,
        "fixed_cost_s": {name: round(run.wall, 2) for name, run in tiny.items()},
        "wall_s": {name: round(run.wall, 2) for name, run in big.items()},
        "startup_s": {name: round(outside_stages(run), 2) for name, run in big.items()},
        "startup_share": {name: round(outside_stages(run) / run.wall, 3) for name, run in big.items()},
        "stage_seconds": {name: run.manifest["stage_seconds"] for name, run in big.items()},
        "stage_seconds_tiny": {name: run.manifest["stage_seconds"] for name, run in tiny.items()},
        "peak_rss_mb": {name: run.peaks_mb for name, run in big.items()},
        "tokenizer_builds": {name: run.manifest["tokenizer"]["worker_builds"] for name, run in big.items()},
        "kept": {name: run.manifest["accounting"]["kept"] for name, run in big.items()},
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }
    result["ratios"] = {
        "local1_vs_baseline": ratio(result["job_local1_rps"], result["baseline_rps"]),
        "local2_vs_local1": ratio(result["job_local2_rps"], result["job_local1_rps"]),
        "local1_unpinned_vs_baseline": ratio(result["job_local1_unpinned_rps"], result["baseline_rps"]),
        "local2_vs_local1_unpinned": ratio(result["job_local2_rps"], result["job_local1_unpinned_rps"]),
        "local1_vs_floor": ratio(result["job_local1_rps"], result["floor_rps"]),
        "local2_vs_floor": ratio(result["job_local2_rps"], result["floor_rps"]),
        "local1_vs_floor_1thread": ratio(result["job_local1_rps"], result["floor_1thread_rps"]),
        "local1_vs_job_engine_floor": ratio(result["job_local1_rps"], result["floor_job_engine_rps"]),
        "local2_default_vs_local2": ratio(result["job_local2_default_rps"], result["job_local2_rps"]),
        "local2_exact_vs_local2": ratio(result["job_local2_exact_rps"], result["job_local2_rps"]),
        "local2_long_vs_local2_default": ratio(result["job_local2_long_rps"], result["job_local2_default_rps"]),
    }
    result["budget"] = budget_on_real_records(spec.json)
    full_wall = big["local2_default"].wall
    result["reuse"] = {name: {"wall_s": round(run.wall, 2), "full_wall_s": round(full_wall, 2),
                              "share": round(run.wall / full_wall, 3),
                              "rule_records": run.manifest["spark"]["rule_records"],
                              "near_rounds": (run.manifest["near_duplicates"] or {}).get("component_rounds"),
                              "stage_seconds": run.manifest["stage_seconds"]}
                       for name, run in reuse_runs.items()}
    result["jvm_archive"] = {
        "fixed_cost_s": round(tiny["local2_default"].wall, 2), "fixed_cost_without_s": round(tiny_without.wall, 2),
        "reuse_s": round(reuse_runs["reuse"].wall, 2), "reuse_without_s": round(reuse_runs["reuse_no_archive"].wall, 2),
    } if archive else None
    result["baselines"] = baselines
    # Steady-state seconds with near over seconds without, less one.
    exact_vs_near = ratio(result["job_local2_exact_rps"], result["job_local2_default_rps"])
    result["near_cost"] = None if exact_vs_near is None else round(exact_vs_near - 1, 3)
    near_section = big["local2_default"].manifest["near_duplicates"] or {}
    result["near_groups"], result["near_dropped"] = near_section.get("groups", 0), near_section.get("dropped", 0)
    result["near_quality"] = quality
    result["rule_records"] = {name: run.manifest["spark"].get("rule_records") for name, run in big.items()}
    result["_rows"] = [
        ("baseline: per-record loop, 1 process", result["baseline_rps"], baseline.seconds, baseline.cpu_seconds),
        ("build_items in this process (no Spark)", result["build_items_rps"], batch.seconds, batch.cpu_seconds),
        *[row for name, setup in JOBS.items() for row in (
            (f"{setup.label}, raw (N / wall)", result[f"job_{name}_raw_rps"], big[name].wall, big[name].cpu_seconds),
            (f"{setup.label}, steady (N / (wall - tiny))", result[f"job_{name}_rps"], None, None))],
        ("floor: encode_batch_fast, thread pool", result["floor_rps"], floor.seconds, floor.cpu_seconds),
        ("floor: encode_batch_fast, 1 thread", result["floor_1thread_rps"], floor_1.seconds, floor_1.cpu_seconds),
        (f"floor: job engine ({result['job_engine']}), 1 call", result["floor_job_engine_rps"],
         floor_engine.seconds, floor_engine.cpu_seconds),
    ]
    print_report(result, big, tiny)
    if quality:
        from near_quality import print_table

        print_table(quality)
    return result


def remember(result: dict) -> Path:
    """This machine's figures, where `pricecurate plan` looks for its per-core rate."""
    from pricecurate.paths import cache_dir
    from pricecurate.pipeline.estimate import save_bench

    return save_bench(cache_dir(), result)


def near_quality() -> dict | None:
    """scripts/near_quality.py in its own process (its own Spark), as JSON."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "near_quality.py"), "--json"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
        say("near_quality.py failed:\n" + "\n".join(tail))
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_scaleout(argv: list[str]) -> int:
    """scripts/scaleout.py with the remaining options (its own defaults: 400,000 records)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("scaleout", Path(__file__).with_name("scaleout.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["scaleout"] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--scaleout" in argv:
        return run_scaleout([arg for arg in argv if arg != "--scaleout"])
    started = time.perf_counter()
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pricecurate-bench-"))
    remove = args.workdir is None and not args.keep
    try:
        require_project()
        workdir.mkdir(parents=True, exist_ok=True)
        result = bench(args, workdir)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if remove:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir.exists():
            say(f"workdir kept: {workdir}")
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nbench total: {result['bench_seconds']:.1f}s")
    saved = remember(result)
    say(f"figures kept for `pricecurate plan` in {saved}")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
