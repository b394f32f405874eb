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
  (f) the estimate: for each big run, the wall time `pricecurate run` estimates before its items stage from this
      bench's figures, against the measured wall (``estimate_error``, estimate / wall - 1).
The big input is the synthetic sample plus planted near-duplicate families (one per 2,000 records).
The Spark jobs run first, before this process loads any tokenizer, so nothing here competes with them
for the two cores and no process is forked after the tokenizers thread pool has started.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devtools/ (not installed)

# The measures live in devtools/bench/ (its docstring is the map); this script runs them in order.
from devtools.bench.inputs import (
    RECORDS_PER_PLANTED_FAMILY,
    TINY_PER_CATEGORY,
    candidate_texts,
    ensure_sample,
    read_even_subset,
)
from devtools.bench.jobs import JOBS, JobRun, JobSetup, near_quality, run_job, time_baselines
from devtools.bench.loop import (
    baseline_on_one_cpu,
    budget_on_real_records,
    encode_all,
    floor_single_thread,
    job_codec,
    kept_by_build_items,
    timed,
)
from devtools.bench.project import ROOT, BenchError, require_project, say
from devtools.bench.report import (
    NEAR_PAIR,
    after_items_per_250k,
    estimate_check,
    jvm_archive_mapped,
    machine_info,
    near_cost,
    outside_stages,
    print_report,
    rate,
    ratio,
)

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

    # What near costs: its two runs again in reverse order (exact-only, then default), so that a drift of this shared
    # machine's speed over the four weighs on both alike (one pair gave 2% and 27% in two benches).
    again = {}
    for name in NEAR_PAIR[::-1]:
        say(f"{JOBS[name].label} on the big input, again (near's cost in A-B-B-A order)")
        again[name] = run_job(JOBS[name], inputs["big"], workdir / "out" / f"{name}-big-again", workdir / "logs")
        say(f"  {again[name].wall:.1f}s")

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
        # What the wall-time estimate is made of (pricecurate.pipeline.estimate.model_from_bench) beside the above.
        "rules_kept": {name: kept_by_the_rules(run.manifest["accounting"]) for name, run in big.items()},
        "tiny_records": tiny["local2"].manifest["accounting"]["lines"],
        "date": time.strftime("%Y-%m-%d"),
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
    result.update(near_cost(big, again, tiny))
    result["after_items_per_250k_s"] = {name: after_items_per_250k(run) for name, run in big.items()}
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
    checks = estimate_check(result, big, inputs["big"], lambda: engine)
    result["estimate_s"] = {name: check["estimate_s"] for name, check in checks.items()}
    result["estimate_error"] = {name: check["error"] for name, check in checks.items()}
    result["_estimate_check"] = checks
    print_report(result, big, tiny)
    if quality:
        from near_quality import print_table

        print_table(quality)
    return result


def kept_by_the_rules(accounting: dict) -> int:
    """Items the rules kept, before deduplication dropped any: what the estimate's kept share counts."""
    from pricecurate.pipeline.dedup.mark import DUPLICATE_REASONS

    return accounting["kept"] + sum(accounting["dropped"].get(reason, 0) for reason in DUPLICATE_REASONS)


def remember(result: dict) -> Path:
    """This machine's figures, where `pricecurate plan` and `run` take their wall-time estimate from
    (``pricecurate.pipeline.bench_model.bench_rates``: every run's walls, stage seconds and kept items)."""
    from pricecurate.paths import cache_dir
    from pricecurate.pipeline.bench_model import save_bench

    return save_bench(cache_dir(), result)


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
