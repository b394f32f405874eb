"""A big run on this machine: the job on millions of records, its rate against a smaller run, memory and scratch disk.

    .venv/bin/python scripts/bigrun.py [--records 5500000] [--compare 1000000] [--config conf/default.yaml]
                                       [--master local[2]] [--workdir DIR] [--keep] [--json]

Writes (or reuses, in --workdir) corpora with the full dataset's category proportions, then runs
`pricecurate run` as a subprocess on a tiny input (the fixed cost), on --compare records and on --records,
with the session's default driver memory. Each run is timed from spawn to exit while its process tree is
polled for peak memory (driver Python, driver JVM, Python workers) and its Spark scratch folder
(SPARK_LOCAL_DIRS, fresh per run: shuffle files, spilled and cached blocks) for peak size on disk.
Prints records/s (raw: N / wall; steady: N / (wall - tiny run's wall)) and whether the big run's
steady rate stays within 15% of the smaller run's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devtools/ (not installed)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECORDS = 5_500_000  # about 5.2 GiB of generated JSON lines
DEFAULT_COMPARE = 1_000_000  # the bench's size
MAX_RATE_LOSS = 0.15


def load_bench() -> SimpleNamespace:
    """The bench's subprocess runner, process-tree sampler and figures (``devtools.bench``), under one name."""
    from devtools.bench import inputs, jobs, project, report

    return SimpleNamespace(
        DiskSampler=jobs.DiskSampler, JobSetup=jobs.JobSetup, run_job=jobs.run_job, disk_usage=jobs.disk_usage,
        rate=report.rate, TINY_PER_CATEGORY=inputs.TINY_PER_CATEGORY, measure_in=project.measure_in,
    )


def say(message: str) -> None:
    print(f"[bigrun] {message}", file=sys.stderr, flush=True)


def parquet_files(output: Path) -> dict[str, int]:
    data = output / json.loads((output / "manifest.json").read_text())["data"]
    return {dataset: len(list((data / dataset).glob("*/*.parquet")))
            for dataset in ("items", "train", "validation", "test") if (data / dataset).is_dir()}


def one_run(bench, setup, name: str, input_dir: Path, workdir: Path) -> dict:
    scratch = workdir / "scratch" / name
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    disk = bench.DiskSampler(scratch)
    output = workdir / "out" / name
    # A fresh output: on one an earlier run left unfinished, the job would resume from its items.
    shutil.rmtree(output, ignore_errors=True)
    say(f"{name}: pricecurate run on {input_dir.name} (log: {workdir / 'logs' / (name + '.stderr')})")
    run = bench.run_job(setup, input_dir, output, workdir / "logs", env={"SPARK_LOCAL_DIRS": str(scratch)},
                        samplers=(disk,))
    manifest = run.manifest
    say(f"  {run.wall:.1f}s")
    result = {
        "records": manifest["accounting"]["lines"],
        "rule_records": manifest["spark"]["rule_records"],
        "kept": manifest["accounting"]["kept"],
        "read_tasks": manifest["spark"]["read_tasks"],
        "input_bytes": sum(p.stat().st_size for p in input_dir.glob("meta_*.jsonl")),
        "wall_s": round(run.wall, 1),
        "cpu_s": round(run.cpu_seconds, 1),
        "stage_seconds": manifest["stage_seconds"],
        "peak_mb": run.peaks_mb,
        "scratch_peak_mb": round(disk.peak / 2**20, 1),
        "output_mb": round(bench.disk_usage(output) / 2**20, 1),
        "parquet_files": parquet_files(output),
        "balanced": manifest["balanced"],
        "split_sizes": manifest["splits"]["sizes"],
    }
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def rates(bench, runs: dict[str, dict]) -> None:
    fixed = runs["tiny"]["wall_s"]
    for name, run in runs.items():
        run["raw_rps"] = bench.rate(run["records"], run["wall_s"])
        run["steady_rps"] = None if name == "tiny" else bench.rate(run["records"], run["wall_s"] - fixed)


def shown_name(name: str) -> str:
    return f"{int(name):,}" if name.isdigit() else name


def print_report(report: dict) -> None:
    runs = report["runs"]
    names = [name for name in runs if name != "tiny"]
    print(f"\npricecurate big run: {report['config']} at {report['master']}, default driver memory; "
          f"1-min load {report['load_average_1min']['start']} at start, {report['load_average_1min']['end']} at end")
    rows = [
        ("records", lambda r: f"{r['records']:,}"),
        ("input GiB", lambda r: f"{r['input_bytes'] / 2**30:.2f}"),
        ("read tasks", lambda r: f"{r['read_tasks']:,}"),
        ("rules ran once per line", lambda r: "yes" if r["rule_records"] == r["records"] else "NO"),
        ("kept by the rules", lambda r: f"{r['kept']:,}"),
        ("after balancing", lambda r: f"{r['balanced']:,}"),
        ("wall s", lambda r: f"{r['wall_s']:,.1f}"),
        ("CPU s (process tree)", lambda r: f"{r['cpu_s']:,.0f}"),
        ("records/s, raw", lambda r: f"{r['raw_rps']:,.0f}"),
        ("records/s, steady", lambda r: "n/a" if r["steady_rps"] is None else f"{r['steady_rps']:,.0f}"),
        *[(f"  stage {stage} s", (lambda stage: lambda r: f"{r['stage_seconds'].get(stage, 0):,.1f}")(stage))
          for stage in dict.fromkeys(s for n in names for s in runs[n]["stage_seconds"])],
        *[(f"peak {key.removesuffix('_peak_mb').replace('_', ' ')} MB",
           (lambda key: lambda r: f"{r['peak_mb'][key] or 0:,.0f}")(key)) for key in runs["tiny"]["peak_mb"]],
        ("peak Spark scratch MB", lambda r: f"{r['scratch_peak_mb']:,.0f}"),
        ("output MB", lambda r: f"{r['output_mb']:,.0f}"),
        *[(f"Parquet files, {dataset}", (lambda dataset: lambda r: f"{r['parquet_files'].get(dataset, 0):,}")(dataset))
          for dataset in ("items", "train", "validation", "test")],
    ]
    print(f"\n{'records in the run':<30}" + "".join(f"{shown_name(name):>16}" for name in runs))
    for label, show in rows:
        print(f"  {label:<28}" + "".join(f"{show(run):>16}" for run in runs.values()))
    check = report.get("check")
    if check:
        shown = "n/a (a run was no slower than the tiny one: use more records)" if check["ratio"] is None \
            else f"{check['ratio']:.2f}"
        print(f"\nsteady records/s, {shown_name(check['big'])} / {shown_name(check['small'])}: {shown} "
              f"(target >= {1 - MAX_RATE_LOSS:.2f}): {'met' if check['met'] else 'NOT met'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="big run records (default: %(default)s)")
    parser.add_argument("--compare", type=int, default=DEFAULT_COMPARE,
                        help="records of the run to compare with; 0 skips it (default: %(default)s)")
    parser.add_argument("--config", type=Path, default=ROOT / "conf" / "default.yaml")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--workdir", type=Path, help="inputs, outputs and logs (kept; inputs reused)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line, last")
    args = parser.parse_args(argv)
    if args.records < 34 or (args.compare and args.compare < 34):
        parser.error("--records and --compare must be at least 34 (one per category)")
    return args


def bigrun(bench, args: argparse.Namespace, workdir: Path) -> dict:
    from devtools.corpus import ensure_scaled_corpus
    from pricecurate.sample import write_sample

    sizes = {str(n): n for n in sorted({args.compare, args.records} - {0})}
    say("inputs: " + ", ".join(f"{n:,}" for n in sizes.values()) + " records in the full dataset's proportions (reused when already there)")
    inputs = {"tiny": workdir / "input-tiny"}
    if not inputs["tiny"].is_dir():
        write_sample(inputs["tiny"], records_per_category=bench.TINY_PER_CATEGORY, seed=0)
    for name, records in sizes.items():
        inputs[name] = ensure_scaled_corpus(workdir / f"input-{records}", records, jobs=os.cpu_count() or 1)

    setup = bench.JobSetup(args.master, False, f"job {args.master}", args.config)
    load_start = os.getloadavg()[0]
    runs = {name: one_run(bench, setup, name, folder, workdir) for name, folder in inputs.items()}
    rates(bench, runs)
    report = {
        "config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config),
        "master": args.master,
        "load_average_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "runs": runs,
    }
    if len(sizes) == 2:
        small, big = sizes
        steady = runs[big]["steady_rps"], runs[small]["steady_rps"]
        ratio = steady[0] / steady[1] if None not in steady else None  # None: a run no slower than the tiny one
        report["check"] = {"big": big, "small": small, "ratio": ratio and round(ratio, 3),
                           "met": ratio is not None and ratio >= 1 - MAX_RATE_LOSS}
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = load_bench()
    report = bench.measure_in("bigrun", args.workdir, args.keep, lambda workdir: bigrun(bench, args, workdir))
    if report is None:
        return 1
    print_report(report)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
