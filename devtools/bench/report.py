"""Machine and report: what this machine is, the rate/ratio/fmt helpers, and the printed report."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from devtools.bench.jobs import JOBS, JobRun
from devtools.bench.loop import SHARED_DATA

TARGETS = {"local1_vs_baseline": 6.0, "local2_vs_local1": 1.7}  # issue 26's; informational, never asserted
NEAR_COST_TARGET = 0.15  # near may add at most this share to the steady-state wall time (issue 26)
AFTER_ITEMS_TARGET = 10.0  # seconds after the items stage per 250k kept items at local[2] (issue 26)
AFTER_ITEMS_MIN_KEPT = 100_000
REUSE_TARGET = 0.20  # a run on reused items, as a share of the full run's wall time
ESTIMATE_TARGET = 0.25  # the run's estimate of its wall time, as a share of the wall (issue: within 25%)
# Spark's own read split settings, which the job's split size starts from (it changes read tasks, not seconds).
SPARK_SPLIT_DEFAULTS = {"spark.sql.files.maxPartitionBytes": "128m", "spark.sql.files.openCostInBytes": "4m"}


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


NEAR_PAIR = ("local2_default", "local2_exact")  # with near, and the same without


def near_cost(big: dict[str, JobRun], again: dict[str, JobRun], tiny: dict[str, JobRun]) -> dict:
    """What near adds to the steady-state wall time (both big runs of each, less twice its tiny run), and the same
    from each pair alone (first the bench's runs, then the runs again): how far one pair can be off."""
    with_near, without = NEAR_PAIR

    def added(*rounds: dict[str, JobRun]) -> float | None:
        steady = {name: sum(runs[name].wall - tiny[name].wall for runs in rounds) for name in NEAR_PAIR}
        return round(steady[with_near] / steady[without] - 1, 3) if min(steady.values()) > 0 else None

    return {"near_cost": added(big, again), "near_cost_rounds": [added(big), added(again)],
            "wall_again_s": {name: round(run.wall, 2) for name, run in again.items()}}


AFTER_ITEMS_KEPT = 250_000  # the issue's unit: seconds after the items stage per 250k kept items


def after_items_per_250k(run: JobRun) -> float | None:
    """The run's stages after the items stage (balance, split, leakage, write...), per ``AFTER_ITEMS_KEPT`` kept."""
    stages, kept = run.manifest["stage_seconds"], run.manifest["accounting"]["kept"]
    after = sum(seconds for stage, seconds in stages.items() if stage not in ("tokenizer", "items", "publish"))
    return round(after / kept * AFTER_ITEMS_KEPT, 2) if kept else None


def rate(records: int, seconds: float | None) -> float | None:
    return round(records / seconds, 1) if seconds and seconds > 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def fmt(value, spec: str = ",.0f", missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def estimate_check(result: dict, big: dict[str, JobRun], input_dir: Path, make_codec) -> dict[str, dict]:
    """For each big run: the wall time the run's own estimate (``estimate_for_run``, as `pricecurate run` says it
    before its items stage, without the report) gives from this bench's figures, against the measured wall."""
    from pricecurate.config import load_config
    from pricecurate.pipeline.bench_model import model_from_bench
    from pricecurate.pipeline.estimate import estimate_for_run, spare_cpus
    from pricecurate.pipeline.job import RUN_SAMPLE_BYTES
    from pricecurate.pipeline.read import chosen_split_bytes, discover
    from pricecurate.spark.fs import LocalFiles

    model = model_from_bench(result, "this bench")
    plan = discover(LocalFiles(), str(input_dir), "all")
    heads = {}
    for file in plan.files:
        with open(file.uri, "rb") as handle:
            heads[file.name] = handle.read(RUN_SAMPLE_BYTES)
    checks = {}
    for name, run in big.items():
        setup = JOBS[name]
        config = load_config(setup.config, ["categories=all", "baseline=false", *setup.overrides])  # as run_job
        cores = int(setup.master.removeprefix("local[").removesuffix("]"))
        split = chosen_split_bytes(plan.files, cores, SPARK_SPLIT_DEFAULTS, config.spark)
        spare = 0 if setup.one_core else spare_cpus(setup.master, cores)  # a pinned run's affinity has none
        seconds = estimate_for_run(plan, heads, split, cores, config, model, make_codec,
                                   spare_cpus=spare).wall.without_report
        checks[name] = {"estimate_s": round(seconds, 1), "wall_s": round(run.wall, 1),
                        "error": round(seconds / run.wall - 1, 3)}
    return checks


def print_estimate_check(checks: dict[str, dict]) -> None:
    print(f"\n{'estimate check: the run said before its items stage':<52}{'estimate':>9}{'wall':>9}{'error':>8}")
    for name, check in checks.items():
        verdict = "met" if abs(check["error"]) <= ESTIMATE_TARGET else "NOT met"
        print(f"  {JOBS[name].label:<50}{check['estimate_s']:>8.1f}s{check['wall_s']:>8.1f}s{check['error']:>+8.0%}"
              f"  {verdict}")
    print(f"  (the estimate from this bench's figures, without the report; target within {ESTIMATE_TARGET:.0%}. The "
          "local[2] course, exact-only and default.yaml runs are the model's own inputs, so there only the records "
          "and the kept share are estimated; the local[1] and long-context runs test it)")


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
        rounds = " and ".join("n/a" if share is None else f"{share:.0%}" for share in r.get("near_cost_rounds", []))
        print(f"  {'near-duplicates add to steady-state wall time':<50}{near:>10.0%}{NEAR_COST_TARGET:>9.0%}  {verdict}"
              f"  ({r['near_groups']:,} groups, {r['near_dropped']:,} dropped; "
              f"two runs each, A-B-B-A; the pairs alone: {rounds})")
    # Runs that keep few items (long-context keeps ~2,000 of the synthetic records) have no per-item figure to speak of.
    after = {name: seconds for name, seconds in (r.get("after_items_per_250k_s") or {}).items()
             if seconds is not None and JOBS[name].master == "local[2]" and r["kept"][name] >= AFTER_ITEMS_MIN_KEPT}
    for name, seconds in after.items():
        verdict = "met" if seconds <= AFTER_ITEMS_TARGET else "NOT met"
        config = JOBS[name].label.removeprefix("job local[2]").strip(", ") or "course"
        label = f"after the items stage, s per 250k kept ({config})"
        print(f"  {label:<50}{seconds:>10.1f}s{AFTER_ITEMS_TARGET:>8.0f}s  {verdict}")

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
    if r.get("_estimate_check"):
        print_estimate_check(r["_estimate_check"])

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
