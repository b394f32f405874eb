"""Reuse share per shipped config: a run on a previous run's items, as a share of that full run's wall time.

    .venv/bin/python scripts/reuse_share.py --input DIR [--configs course.yaml,default.yaml] [--master local[2]]
    .venv/bin/python scripts/reuse_share.py --records N --workdir DIR [...]    (writes the real-record corpus first)

For each config in conf/ (or --configs): one full run of `pricecurate run` on the input, all categories, then one
run on its items (reuse_items) with other balancing and splits, the bench's reuse run (balance.slot_cap=600,
split.test=5000); with --reseed also one with seed=7 as well, which deduplicates again and is shown beside it,
not held to the target. Each run is a subprocess timed from spawn to exit by the bench's runner
(devtools.bench.jobs.run_job: no report, no baselines). Prints per config the two walls, the share (target:
at most 20%) and each run's stage seconds from its manifest; --json adds one JSON line, last.

--records N writes (or reuses) N records recombined from the real records in ../shared
(devtools.real_corpus) into WORKDIR/input-real-N: what the issue asks the share to be measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devtools/ (not installed)

from devtools.bench.jobs import JobRun, JobSetup, run_job  # noqa: E402
from devtools.bench.project import ROOT, measure_in, say  # noqa: E402
from devtools.bench.report import REUSE_TARGET  # noqa: E402

CONF = ROOT / "conf"
# The bench's reuse run: other balancing and splits, same seed, so the duplicate marks are applied as they are.
REUSE_OVERRIDES = ("balance.slot_cap=600", "split.test=5000")
# Another seed picks other representatives of each duplicate group: deduplication runs again.
RESEED_OVERRIDES = (*REUSE_OVERRIDES, "seed=7")


def shipped_configs() -> list[str]:
    return sorted(path.name for path in CONF.glob("*.yaml"))


def run_summary(run: JobRun) -> dict:
    """What the table shows of one run: its wall, what it read and kept, its stages."""
    manifest = run.manifest
    return {"wall_s": round(run.wall, 2), "lines": manifest["accounting"]["lines"],
            "kept": manifest["accounting"]["kept"], "rule_records": manifest["spark"].get("rule_records"),
            "near_dropped": (manifest.get("near_duplicates") or {}).get("dropped"),
            "stage_seconds": manifest["stage_seconds"]}


def reuse_setup(config: Path, master: str, full_output: Path, overrides: tuple[str, ...]) -> JobSetup:
    label = f"{config.name} reusing the items ({', '.join(overrides)})"
    return JobSetup(master, False, label, config, (f"reuse_items={full_output}", *overrides))


def measure_config(name: str, input_dir: Path, workdir: Path, master: str, reseed: bool) -> dict:
    """The full run and the reuse run(s) of one config, on one input."""
    config, out, logs = CONF / name, workdir / "out", workdir / "logs"
    stem = config.stem
    say(f"{name}: full run")
    full = run_job(JobSetup(master, False, f"{name} full", config), input_dir, out / f"{stem}-full", logs)
    say(f"  {full.wall:.1f}s")
    variants = {"reuse": REUSE_OVERRIDES, **({"reseed": RESEED_OVERRIDES} if reseed else {})}
    result = {"config": name, "full": run_summary(full)}
    for variant, overrides in variants.items():
        say(f"{name}: {variant} run ({', '.join(overrides)})")
        run = run_job(reuse_setup(config, master, out / f"{stem}-full", overrides), input_dir,
                      out / f"{stem}-{variant}", logs)
        say(f"  {run.wall:.1f}s")
        result[variant] = {**run_summary(run), "share": round(run.wall / full.wall, 3)}
    result["met"] = result["reuse"]["share"] <= REUSE_TARGET
    return result


def stages_text(stage_seconds: dict) -> str:
    return ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stage_seconds.items())


def print_report(report: dict) -> None:
    print(f"\nreuse share on {report['input']} ({report['lines']:,} lines), master {report['master']}; "
          f"target: reuse run <= {REUSE_TARGET:.0%} of the full run's wall")
    print(f"{'config':<20} {'kept':>9} {'full s':>8} {'reuse s':>8} {'share':>7}  target")
    for row in report["configs"]:
        verdict = "met" if row["met"] else "NOT met"
        print(f"{row['config']:<20} {row['full']['kept']:>9,} {row['full']['wall_s']:>8.1f} "
              f"{row['reuse']['wall_s']:>8.1f} {row['reuse']['share']:>7.1%}  {verdict}")
        if "reseed" in row:
            print(f"{'  ... and seed=7':<20} {'':>9} {'':>8} {row['reseed']['wall_s']:>8.1f} "
                  f"{row['reseed']['share']:>7.1%}  (deduplicates again; not held to the target)")
    print("\nstage seconds (from each run's manifest):")
    for row in report["configs"]:
        for run in ("full", "reuse", "reseed"):
            if run in row:
                print(f"  {row['config']:<20} {run:<7} rules on {row[run]['rule_records']:,} lines: "
                      f"{stages_text(row[run]['stage_seconds'])}")


def resolve_input(args: argparse.Namespace, workdir: Path) -> Path:
    """--input as given, or the real-record corpus of --records lines, written unless already complete."""
    if args.input:
        return args.input
    from devtools.real_corpus import ensure_real_corpus

    say(f"real-record corpus: {args.records:,} records (reused when already there)")
    return ensure_real_corpus(workdir / f"input-real-{args.records}", args.records, jobs=os.cpu_count() or 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="folder of meta_<Category>.jsonl files")
    source.add_argument("--records", type=int,
                        help="write (or reuse) a real-record corpus of this many lines first (devtools.real_corpus)")
    parser.add_argument("--configs", default=",".join(shipped_configs()),
                        help="comma-separated file names in conf/ (default: %(default)s)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--reseed", action="store_true", help="also a reuse run with seed=7 (deduplicates again)")
    parser.add_argument("--workdir", type=Path, help="outputs, logs and the written corpus (kept; corpus reused)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line, last")
    args = parser.parse_args(argv)
    args.configs = [name.strip() for name in args.configs.split(",") if name.strip()]
    missing = [name for name in args.configs if not (CONF / name).is_file()]
    if missing:
        parser.error(f"not in {CONF}: {', '.join(missing)} (shipped: {', '.join(shipped_configs())})")
    if args.records is not None and args.records < 34:
        parser.error("--records must be at least 34 (one per category)")
    return args


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    input_dir = resolve_input(args, workdir)
    rows = [measure_config(name, input_dir, workdir, args.master, args.reseed) for name in args.configs]
    return {"input": str(input_dir), "lines": rows[0]["full"]["lines"], "master": args.master,
            "target": REUSE_TARGET, "configs": rows}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = measure_in("reuse_share", args.workdir, args.keep, lambda workdir: measure(args, workdir))
    if report is None:
        return 1
    print_report(report)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
