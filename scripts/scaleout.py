"""Scale-out projection: how the job would run on 8, 64 and 256 cores, measured on this machine.

    .venv/bin/python scripts/scaleout.py [--records 400000] [--cores 8,64,256] [--fixed-task-seconds 0.05]
                                         [--json] [--workdir DIR] [--keep]
    .venv/bin/python scripts/bench.py --scaleout [--records N] ...     (the same)

N records with the full dataset's category proportions are a scale model of its 48.2M records: every
size-based setting (split size, AQE partition sizes, broadcast threshold, the job's own size targets) is
divided by R = 48.2M / N, so the model has the full run's task structure, and `spark.default.parallelism`
is the modelled cluster's cores P. The job runs at local[2] with Spark's event log on; each stage's task
time is then scaled to the full input (all but a fixed per-task cost multiplied by R), shared among the
stage's tasks by the bytes each read, and replayed on P cores (a stage that reads no bytes works on a
table made on the driver, as big in the model as in the full run, and is not scaled). Printed per P:
projected wall, ideal (task time / P), efficiency, each stage's byte skew and longest task, the same
projection with every task's own time multiplied by R (which multiplies its noise too), and the bytes
the input-reading stages shuffle. Left out of the model: network, stragglers, driver time between
stages, worker start-up, storage throughput, memory pressure (see the README).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devtools/ (not installed)

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20

# Full-scale values of every size-based setting, divided by R in the model. Three kinds of key:
#   "spark.*"           a Spark setting (the value is Spark's default unless the job sets its own);
#   "section.key"       a key of the job's config (skipped, with a note, when this version lacks it);
#   "module:NAME"       a driver-side constant of the job (skipped, with a note, when it does not exist).
FULL_SCALE: dict[str, int] = {
    "spark.sql.files.maxPartitionBytes": 128 * MiB,
    "spark.sql.files.openCostInBytes": 4 * MiB,
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": 64 * MiB,
    "spark.sql.adaptive.coalescePartitions.minPartitionSize": 1 * MiB,
    "spark.sql.autoBroadcastJoinThreshold": 10 * MiB,
    "write.rows_per_file": 500_000,
    "pricecurate.pipeline.read:BYTES_PER_PARTITION": 48 * MiB,  # per-task target for spreading a big file
    "pricecurate.pipeline.read:SHUFFLE_INPUT_BYTES": 128 * MiB,  # input bytes per shuffle partition after the rules
}
DEFAULT_CORES = (8, 64, 256)
DEFAULT_RECORDS = 400_000
DEFAULT_FIXED_TASK_SECONDS = 0.05
MASTER, SLOTS = "local[2]", 2
CONFIG = ROOT / "conf" / "default.yaml"
WARM_UP_PER_CATEGORY = 20
WARM_UP_OVERRIDES = ["partitions=2"]  # few tasks: the warm-up is there to start things, not to measure
WARM_UP_GROUP, MODEL_GROUP = "warm-up", "scale-model"
TARGET_EFFICIENCY = {64: 0.8, 256: 0.5}
TARGET_SHUFFLE_SHARE = 0.10


def say(message: str) -> None:
    print(f"[scaleout] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the scale model's settings


def scaled(full: int, ratio: float) -> int:
    return max(1, math.floor(full / ratio))


@dataclass
class ModelSettings:
    spark: dict[str, str]  # Spark settings for the session
    overrides: list[str]  # config overrides, key=value
    constants: dict[str, int]  # "module:NAME" -> scaled value


def scaled_values(ratio: float) -> dict[str, int]:
    return {key: scaled(full, ratio) for key, full in FULL_SCALE.items()}


def model_settings(ratio: float, cores: int, events_dir: Path) -> ModelSettings:
    settings = ModelSettings({}, [], {})
    for key, value in scaled_values(ratio).items():
        if key.startswith("spark."):
            settings.spark[key] = str(value)
        elif ":" in key:
            settings.constants[key] = value
        else:
            settings.overrides.append(f"{key}={value}")
    settings.spark.update({
        "spark.default.parallelism": str(cores),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": str(events_dir),
        "spark.eventLog.compress": "false",  # devtools.eventlog reads plain JSON lines only
        "spark.eventLog.rolling.enabled": "false",
        "spark.ui.enabled": "false",  # not needed for the log; spares a port and some CPU
    })
    return settings


def load_model_config(overrides: list[str], notes: list[str]):
    """conf/default.yaml with the scaled config keys this version of the job knows; the others noted."""
    from pricecurate.config import ConfigError, load_config

    accepted = []
    for override in overrides:
        try:
            load_config(CONFIG, [*accepted, override])
        except ConfigError as error:
            reason = str(error).split(";")[0]
            notes.append(f"{override.split('=')[0]} not scaled: this version's config rejects it ({reason})")
            continue
        accepted.append(override)
    return load_config(CONFIG, [*accepted, "baseline=false"])  # the curation's tasks; baselines are timed apart


@contextmanager
def scaled_constants(constants: dict[str, int], notes: list[str]):
    """Set the job's driver-side size constants for the model, restoring them afterwards."""
    saved = []
    for target, value in constants.items():
        module_name, name = target.split(":")
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            notes.append(f"{target} not scaled: this version of the job has no such constant")
            continue
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


# ---------------------------------------------------------------- input


def ensure_warm_up_input(dest: Path) -> None:
    from pricecurate.sample import write_sample

    if not dest.is_dir():
        write_sample(dest, records_per_category=WARM_UP_PER_CATEGORY, seed=0)


def input_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("meta_*.jsonl"))


# ---------------------------------------------------------------- one model run


@dataclass
class ModelRun:
    cores: int
    measured_wall_s: float  # run_job on the model input at local[2]
    tokenizer_builds: int  # in the model run; 0 when the warm-up did its job
    records_read: int
    stages: list  # devtools.eventlog.Stage


def build_worker_codecs(spark, config) -> None:
    """Build the tokenizer in every Python worker, just before the model run.

    Spark retires a Python worker after a minute idle (a fixed timeout in its
    worker factory), and the warm-up run's last minute is JVM work, so its
    workers may be gone. A mapInArrow like the job's goes to the same worker
    pool; each task holds its worker for a moment so that all slots get one.
    """
    from pricecurate.tokenizer.spec import load_spec

    spec = load_spec(config.tokenizer)
    spec_json = spark.sparkContext.broadcast(spec.json)
    sha256, engine = spec.sha256, config.tokenizer_engine

    def build(batches):
        from pricecurate.tokenizer import engine as tokenizer

        tokenizer.codec_for(spec_json.value, sha256, engine)
        time.sleep(1)
        yield from batches

    spark.range(SLOTS, numPartitions=SLOTS).mapInArrow(build, "id long").collect()
    spec_json.unpersist()


def run_model(cores: int, ratio: float, corpus: Path, warm_up_input: Path, workdir: Path,
              notes: list[str]) -> ModelRun:
    """A warm-up, then the scale model, in one session; the model's stages from the event log.

    The warm-up runs the job on a tiny input (JVM classes, code generation,
    Python imports) and then builds the tokenizer in each Python worker: all
    per-executor costs that do not grow with the data, so the model's tasks
    must not carry them into the multiplication by R. Spark reuses the workers.
    """
    from devtools.eventlog import find_event_log, read_stages
    from pricecurate.pipeline.job import run_job
    from pricecurate.pipeline.progress import Progress
    from pricecurate.spark.session import build_session

    events_dir = workdir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    settings = model_settings(ratio, cores, events_dir)
    config = load_model_config(settings.overrides, notes)
    warm_up_config = load_model_config([*settings.overrides, *WARM_UP_OVERRIDES], [])
    log_path = workdir / "logs" / f"model-{cores}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log, scaled_constants(settings.constants, notes):
        spark = build_session(MASTER, settings.spark, app_name=f"pricecurate-scaleout-{cores}")
        try:
            sc = spark.sparkContext
            sc.setJobGroup(WARM_UP_GROUP, "warm-up: start the executor and the Python workers")
            run_job(spark, warm_up_config, str(warm_up_input), str(workdir / "out" / "warm-up"), overwrite=True,
                    progress=Progress(stream=log))
            build_worker_codecs(spark, config)
            sc.setJobGroup(MODEL_GROUP, f"scale model of the full input on {cores} cores")
            started = time.perf_counter()
            result = run_job(spark, config, str(corpus), str(workdir / "out" / f"model-{cores}"), overwrite=True,
                             progress=Progress(stream=log))
            wall = time.perf_counter() - started
            app_id = sc.applicationId
        finally:
            spark.stop()  # also closes the event log
    manifest = result.manifest
    stages = read_stages(find_event_log(events_dir, app_id), job_group=MODEL_GROUP)
    return ModelRun(cores, wall, manifest["tokenizer"]["worker_builds"], manifest["accounting"]["lines"], stages)


# ---------------------------------------------------------------- report


def short_name(stage_name: str) -> str:
    """`collect at /long/path/pricecurate/pipeline/job.py:154` -> `collect at job.py:154`."""
    if stage_name.startswith("$anonfun$"):  # AQE materializes query stages from a thread pool
        return "query stage " + stage_name.rsplit(" at ", 1)[-1]
    return re.sub(r"\S*/", "", stage_name)


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} TB"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def run_result(run: ModelRun, ratio: float, fixed_seconds: float, total_input: int) -> dict:
    from devtools.eventlog import AS_MEASURED, BY_BYTES, input_shuffle, project

    projection = project(run.stages, ratio, run.cores, fixed_seconds, spread=BY_BYTES)
    as_measured = project(run.stages, ratio, run.cores, fixed_seconds, spread=AS_MEASURED)
    shuffle = input_shuffle(run.stages, total_input)
    return {
        "measured_wall_s": round(run.measured_wall_s, 2),
        "tokenizer_builds_in_model": run.tokenizer_builds,
        "records_read": run.records_read,
        "tasks": sum(len(stage.task_seconds) for stage in run.stages),
        **projection.to_dict(),
        "as_measured": {key: value for key, value in as_measured.to_dict().items() if key != "stages"},
        "input_scan_stages": shuffle.scan_stages,
        "input_reads": round(shuffle.reads_of_input, 2),
        "input_shuffle_write_bytes": shuffle.shuffle_write_bytes,
        "input_shuffle_share": round(shuffle.share, 4),
        "_projection": projection,
        "_as_measured": as_measured,
        "_stages": run.stages,
    }


def byte_skew(stage) -> float:
    """The most bytes one task read, over the stage's mean (1.0: even; 0 when the tasks read nothing)."""
    if not stage.task_bytes or not sum(stage.task_bytes):
        return 0.0
    return max(stage.task_bytes) / (sum(stage.task_bytes) / len(stage.task_bytes))


def print_run(result: dict, ratio: float) -> None:
    cores = result["cores"]
    print(f"\n== P = {cores} cores (spark.default.parallelism={cores}) ==")
    print(f"measured at {MASTER}: {result['measured_wall_s']:.1f} s wall for the model run, "
          f"{len(result['stages'])} stages, {result['tasks']:,} tasks; "
          f"tokenizer builds in the model run: {result['tokenizer_builds_in_model']} (0: all in the warm-up)")
    measured = result["as_measured"]
    print(f"projected wall {result['wall_s']:,.1f} s   ideal {result['ideal_s']:,.1f} s   "
          f"efficiency {result['efficiency']:.2f}   (task times as measured: wall {measured['wall_s']:,.1f} s, "
          f"efficiency {measured['efficiency']:.2f})")
    print(f"  {'stage':>5}  {'name':<38}{'tasks':>7}{'skew':>6}{'longest s':>11}{'stage s':>10}{'measured':>10}"
          f"{'input MB':>10}{'shuffle w MB':>14}")
    for projected, raw, stage in zip(result["_projection"].stages, result["_as_measured"].stages, result["_stages"]):
        scan = " scan" if stage.reads_files else ""  # reads the input files (not a cache)
        print(f"  {projected.stage_id:>5}  {short_name(projected.name)[:37]:<38}{projected.tasks:>7,}"
              f"{byte_skew(stage):>6.1f}{projected.longest_s:>11,.1f}{projected.wall_s:>10,.1f}{raw.longest_s:>10,.1f}"
              f"{stage.input_bytes / 1e6:>10,.1f}{stage.shuffle_write_bytes / 1e6:>14,.1f}{scan}")
    print("  skew: a task's most bytes read over the mean; longest and stage s: the stage's time shared by bytes; "
          "measured: the longest task as measured, x R (bytes: model run, x R for full scale)")
    written = result["input_shuffle_write_bytes"]
    print(f"input-reading stages: {result['input_scan_stages']}, reading the input {result['input_reads']:.1f} times; "
          f"shuffle written by them {human_bytes(written)} (x R = {human_bytes(written * ratio)}), "
          f"{100 * result['input_shuffle_share']:.1f}% of the input bytes")


def targets(results: dict[int, dict]) -> list[dict]:
    checks = [
        {"target": f"efficiency at {cores} cores >= {minimum}", "value": results[cores]["efficiency"],
         "met": results[cores]["efficiency"] >= minimum}
        for cores, minimum in TARGET_EFFICIENCY.items() if cores in results
    ]
    worst = max(result["input_shuffle_share"] for result in results.values())
    checks.append({"target": f"shuffle written by input-reading stages <= {TARGET_SHUFFLE_SHARE:.0%} of input bytes",
                   "value": worst, "met": worst <= TARGET_SHUFFLE_SHARE})
    return checks


def print_summary(report: dict, results: dict[int, dict]) -> None:
    print(f"\n{'cores':>7}{'projected s':>14}{'ideal s':>12}{'efficiency':>12}{'as measured':>13}"
          f"{'model run s':>13}")
    for cores, result in results.items():
        print(f"{cores:>7}{result['wall_s']:>14,.1f}{result['ideal_s']:>12,.1f}{result['efficiency']:>12.2f}"
              f"{result['as_measured']['efficiency']:>13.2f}{result['measured_wall_s']:>13.1f}")
    print("efficiency: each stage's time shared among its tasks by the bytes they read; as measured: every task's "
          "own time x R, which multiplies per-task noise and JIT warm-up by R too")
    print("\ntargets (N >= 400,000):")
    for check in report["targets"]:
        shown = f"{check['value']:.1%}" if "shuffle" in check["target"] else f"{check['value']:.2f}"
        print(f"  {check['target']:<66}{shown:>8}  {verdict(check['met'])}")


def print_header(report: dict) -> None:
    print(f"\npricecurate scale-out projection: {report['records']:,} records as a model of "
          f"{report['full_records']:,} (R = {report['ratio']:.2f}); fixed per-task cost F = "
          f"{report['fixed_task_seconds']} s; run at {MASTER}, 1-min load average "
          f"{report['load_average_1min']['start']} at start, {report['load_average_1min']['end']} at end")
    print(f"input: {human_bytes(report['input_bytes'])} (x R = {human_bytes(report['input_bytes'] * report['ratio'])})")
    print("scaled settings: " + ", ".join(f"{key}={value}" for key, value in report["scaled_settings"].items()))
    for note in report["notes"]:
        print(f"  note: {note}")


# ---------------------------------------------------------------- main


def parse_cores(text: str) -> tuple[int, ...]:
    try:
        cores = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected core counts like 8,64,256, got {text!r}") from None
    if not cores or min(cores) < 1:
        raise argparse.ArgumentTypeError(f"core counts must be at least 1, got {text!r}")
    return cores


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS,
                        help="model input records, in the full dataset's proportions (default: %(default)s)")
    parser.add_argument("--cores", type=parse_cores, default=DEFAULT_CORES,
                        help="modelled core counts, comma-separated (default: 8,64,256)")
    parser.add_argument("--fixed-task-seconds", type=float, default=DEFAULT_FIXED_TASK_SECONDS,
                        help="per-task cost that does not grow with the data (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line, last")
    parser.add_argument("--workdir", type=Path, help="where input, event logs and outputs go (kept; input reused)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir and the job outputs")
    args = parser.parse_args(argv)
    if args.records < 34:
        parser.error("--records must be at least 34 (one per category)")
    if args.fixed_task_seconds < 0:
        parser.error("--fixed-task-seconds must be >= 0")
    return args


def scaleout(args: argparse.Namespace, workdir: Path) -> dict:
    from devtools.corpus import FULL_DATASET_RECORDS, ensure_scaled_corpus

    ratio = FULL_DATASET_RECORDS / args.records
    # Driver and workers must import the same pricecurate: this interpreter's.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    say(f"input: {args.records:,} records in the full dataset's proportions (reused when already there)")
    corpus, warm_up_input = workdir / "input", workdir / "warm-up-input"
    # Before any JVM starts: the generator forks a process pool.
    ensure_scaled_corpus(corpus, args.records, jobs=os.cpu_count() or 1)
    ensure_warm_up_input(warm_up_input)

    notes: list[str] = []
    results: dict[int, dict] = {}
    load_at_start = os.getloadavg()[0]  # other work on the machine stretches the measured task times
    for cores in args.cores:
        say(f"model run for {cores} cores at {MASTER} (job log: {workdir / 'logs' / f'model-{cores}.log'})")
        run_notes: list[str] = []
        run = run_model(cores, ratio, corpus, warm_up_input, workdir, run_notes)
        notes.extend(note for note in run_notes if note not in notes)
        results[cores] = run_result(run, ratio, args.fixed_task_seconds, input_bytes(corpus))
        say(f"  {run.measured_wall_s:.1f}s, projected efficiency {results[cores]['efficiency']:.2f}")
        if not args.keep:
            shutil.rmtree(workdir / "out", ignore_errors=True)

    report = {
        "records": args.records,
        "full_records": FULL_DATASET_RECORDS,
        "ratio": round(ratio, 4),
        "fixed_task_seconds": args.fixed_task_seconds,
        "input_bytes": input_bytes(corpus),
        "scaled_settings": scaled_values(ratio),
        "notes": notes,
        "load_average_1min": {"start": round(load_at_start, 2), "end": round(os.getloadavg()[0], 2)},
        "runs": results,
    }
    report["targets"] = targets(results)
    print_header(report)
    for result in results.values():
        print_run(result, ratio)
    print_summary(report, results)
    return report


def public(value):
    """The report without the objects kept for printing (keys starting with '_')."""
    if isinstance(value, dict):
        return {str(k): public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pricecurate-scaleout-"))
    remove = args.workdir is None and not args.keep
    started = time.perf_counter()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        report = scaleout(args, workdir)
    finally:
        if remove:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir.exists():
            say(f"workdir kept: {workdir}")
    report["scaleout_seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nscale-out total: {report['scaleout_seconds']:.1f}s")
    if args.json:
        print(json.dumps(public(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
