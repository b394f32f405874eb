"""The curation job: read → items → dedup → balance → split → write, counting on the way."""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass
from typing import NamedTuple

import pyspark
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricecurate.config import Config
from pricecurate.evaluate.baseline import baseline_lines, run_baselines
from pricecurate.output import source
from pricecurate.output.layout import DATA_KEY, FORMAT, FORMAT_KEY, WORK
from pricecurate.output.write import Output
from pricecurate.paths import cache_dir, local_path
from pricecurate.pipeline import reuse
from pricecurate.pipeline.arrow_rules import end_warm_up, warm_up_workers
from pricecurate.pipeline.balance import apply_balance, plan_balance, plan_balance_on_driver
from pricecurate.pipeline.bench_model import bench_rates
from pricecurate.pipeline.context import Counters, Run, Tokenizer
from pricecurate.pipeline.driver_order import DRIVER_ITEMS
from pricecurate.pipeline.estimate import describe, estimate_for_run, read_heads, spare_cpus
from pricecurate.pipeline.items import curate
from pricecurate.pipeline.leakage import PROBED, find_leaks, implied_by_dedup, no_leaks, probe_columns
from pricecurate.pipeline.live import SparkStatus, Totals
from pricecurate.pipeline.progress import Progress
from pricecurate.pipeline.read import discover, parse_bytes, plan_layout, read_settings, shuffle_partitions
from pricecurate.pipeline.reuse import resumed_items, reused_output, same_items
from pricecurate.pipeline.split import SPLIT_ORDER, driver_columns, plan_split, split_keyed, with_split_key
from pricecurate.report import card as datacard
from pricecurate.report.sections import how_known
from pricecurate.rules import recipe as recipe_rules
from pricecurate.rules.lines import KEPT, QUARANTINED
from pricecurate.spark.columns import cut_test_prompt
from pricecurate.spark.fs import HadoopFS, redact, redact_text
from pricecurate.spark.session import CACHE
from pricecurate.tokenizer.engine import choose_engine
from pricecurate.tokenizer.spec import load_spec

ITEMS_PER_TASK = 50_000  # kept items per task after the items stage (about 60 MB of real items)
RUN_SAMPLE_BYTES = 64 * 1024  # of each file's head, for the estimate printed before the run (about 40 records)


def _dataset_text(rules):
    """The prompt with its price, except in test, whose text stops where the price would start."""
    return F.when(F.col("dataset") == "test", cut_test_prompt(rules)).otherwise(F.col("prompt"))


@dataclass
class RunResult:
    output: str
    manifest: dict


def run_job(
    spark: SparkSession,
    config: Config,
    input_uri: str,
    output_uri: str,
    overwrite: bool = False,
    progress: Progress | None = None,
    wait: bool = False,
) -> RunResult:
    """Curate the input into a dataset published at the output (``wait``: for a run writing there to finish)."""
    progress = progress or Progress()
    started = dt.datetime.now(dt.timezone.utc)
    early = _start_rules_workers(spark, config)
    try:
        fs = HadoopFS(spark)
        plan = discover(fs, input_uri, config.categories)
        output = Output(fs, output_uri, input_uri, datacard.render, started)
        for done in output.open(overwrite, wait, progress.say):
            progress.say(done)
        try:
            return _run(spark, config, plan, output, progress, started, source.read_terms(fs, input_uri), early)
        except BaseException:
            output.abandon()
            raise
        finally:
            output.close()
    finally:
        if early is not None:
            end_warm_up(spark, early.warming)
            if early.tokenizer is not None:
                early.tokenizer.broadcast.unpersist()


class EarlyWorkers(NamedTuple):
    tokenizer: Tokenizer | None  # None: workers for a run on reused items (no codec built)
    warming: threading.Thread  # the warm-up job's thread (``warm_up_workers``)
    why: str  # why that engine, in words


def _start_rules_workers(spark: SparkSession, config: Config) -> EarlyWorkers | None:
    """The tokenizer, and the rules' Python workers started with it (``warm_up_workers``) before the input is listed
    and the output claimed, for a run whose rules will run (no ``reuse_items``). In a cold JVM the warm-up's query
    takes about as long to plan as the rules' own: started with the items stage, its tasks ran after the rules'
    first ones, which started their workers themselves (a second on the sample run's critical path)."""
    if config.reuse_items:
        return _start_reused_run_workers(spark, config)
    spec = load_spec(config.tokenizer)
    tokenizer, why = _tokenizer(spark, spec, config, None)
    warming = warm_up_workers(spark, tokenizer.broadcast, spec.sha256, tokenizer.builds, tokenizer.engine,
                              spec.clean_up_spaces)
    return EarlyWorkers(tokenizer, warming, why)


def _start_reused_run_workers(spark: SparkSession, config: Config) -> EarlyWorkers | None:
    """For a run on a local output's items that will run Python (``runs_python_on_reused``, from that output's
    manifest), the workers started first thing, without a codec. Started after the tokenizer stage, their warm-up
    still held both cores when balancing's first job came: 0.9 s of waiting in the course's reuse run of 1M real
    records."""
    manifest = reuse.local_manifest(config.reuse_items)
    if manifest is None or not runs_python_on_reused(config, manifest.get("curation") or {}):
        return None
    return EarlyWorkers(None, warm_up_workers(spark, None, "", None, build_codec=False), "")


def _run(spark: SparkSession, config: Config, plan, output: Output, progress: Progress,
         started: dt.datetime, terms: dict, early: EarlyWorkers | None) -> RunResult:
    """The run on an output this run holds: items, dedup, balance, split, leakage, write, publish; ``terms``: the
    source's licence as the input folder's copy of its card states it (``output.source``), for the data card;
    ``early``: the tokenizer and warm-up ``_start_rules_workers`` started, if it did."""
    _say_input(config, plan, progress)
    warming = None
    rules_early = early is not None and early.tokenizer is not None
    with progress.stage("tokenizer"):
        spec = early.tokenizer.spec if rules_early else load_spec(config.tokenizer)
        key = reuse.curation_key([reuse.fingerprint(output.fs, file) for file in plan.files], config.recipe,
                                 spec.sha256, config.max_record_bytes, config.max_gzip_bytes)
        reused = (reused_output(output.fs, config.reuse_items, key, config.write.rows_per_file) if config.reuse_items
                  else resumed_items(output.fs, output.uri, key, progress))
        if rules_early and reused is None:
            tokenizer, warming, why = early
        else:  # resumed items keep their run's engine; the early warm-up (if any) ends with the run
            tokenizer, why = _tokenizer(spark, spec, config, reused)
        progress.say(f"tokenizer {spec.name} sha256 {spec.sha256[:16]}; engine {why}")
    # On reused items the Python workers of the leakage check or of near-duplicate signing, when either will run,
    # start while the driver plans the run (a second or two to start them cold), unless they started first thing.
    if reused is not None and runs_python_on_reused(config, reused.curation) and (early is None or rules_early):
        warming = warm_up_workers(spark, tokenizer.broadcast, spec.sha256, tokenizer.builds, tokenizer.engine,
                                  spec.clean_up_spaces, build_codec=False)
    sc = spark.sparkContext
    layout = plan_layout(plan.files, sc.defaultParallelism, config.partitions)
    run = Run(spark, config, plan, layout, output, progress, started, tokenizer,
              Counters(records=sc.accumulator(0), kept=sc.accumulator(0)))
    previous = _set_session(spark, _job_settings(spark, config, plan, layout))
    planned = _say_estimate(run) if reused is None else None  # a run on reused items reads no input
    if sc.uiWebUrl:
        progress.say(f"Spark UI: {sc.uiWebUrl}")
    progress.watch(SparkStatus(sc, run.counters.kept))
    cached = []
    try:
        if planned is not None:
            progress.expect(Totals(bytes=sum(f.size for f in plan.files), records=planned.records))
        curated = _items(run, reused, key)
        cached.append(curated.cached)
        items = _kept_items(run, curated)
        planned_on_driver = curated.accounting["kept"] <= DRIVER_ITEMS
        if reused is not None and not planned_on_driver:
            # Reused items are read from their files, not from the rules' cache: cached by balancing's first pass,
            # so its later passes read memory instead of Parquet and the duplicate marks' join. Planned on the
            # driver, balancing reads the items twice (a few columns, then the kept ones), faster than a cache.
            items = items.persist(CACHE)
            cached.append(items)
        _write_quarantine(run, curated)
        balance_plan, balanced, ranking = _balance(run, items, planned_on_driver)
        split_plan, assigned, counts, keyed = _split(run, balanced, balance_plan.available, curated, ranking)
        cached.append(keyed)
        leakage = _leakage(run, curated, assigned, split_plan)
        _write(run, items, assigned, split_plan, curated, reused)
        output.fs.delete(output.path(WORK))  # the near-duplicate rounds: the written datasets no longer read them
        output.written()
        baselines = _baselines(run, assigned.frame)
        manifest = _manifest(run, curated, counts, balance_plan.by_slot, split_plan, leakage) | {
            DATA_KEY: output.folder, FORMAT_KEY: FORMAT, "baselines": baselines, source.MANIFEST_KEY: terms,
            "curation": {**curated.curation, "reused_from": redact(reused.where) if reused else None}}
        with progress.stage("publish"):
            for removed in output.publish(manifest):
                progress.say(f"removed {removed}, the dataset this run replaced")
    finally:
        if warming is not None:
            end_warm_up(spark, warming)
        for frame in cached:
            frame.unpersist()
        tokenizer.broadcast.unpersist()
        _set_session(spark, previous)
        progress.watch(None)
    progress.say(f"dataset written to {redact(output.uri)}")
    return RunResult(output.uri, manifest)


def _say_input(config: Config, plan, progress: Progress) -> None:
    progress.say(
        f"input: {len(plan.files)} file(s) for {len(plan.categories)} categories"
        + (f"; no file for {', '.join(plan.missing)}" if plan.missing else "")
    )
    if plan.ignored:
        progress.say(f"ignored (not meta_<Category> files): {', '.join(plan.ignored)}")
    progress.say(f"recipe {config.recipe.label}" + _recipe_changes(config.recipe))
    for warning in recipe_rules.warnings(config.recipe):
        progress.warn(warning)


def runs_python_on_reused(config: Config, curation: dict) -> bool:
    """Whether a run on reused items (``curation``: their run's manifest section) runs Python: unless the reused
    run's duplicate marks apply (same dedup settings and seed) and imply the leakage check, it signs near-duplicates
    anew or runs the check."""
    same = reuse.same_marks(curation, config.dedup, config.near, config.seed)
    return not (same and implied_by_dedup((curation.get("dedup") or {}).get("near")))


def _tokenizer(spark: SparkSession, spec, config: Config, reused) -> tuple[Tokenizer, str]:
    """The engine (chosen here, or the reused run's: its rules do not run again) and the broadcast JSON; why that
    engine, in words."""
    if reused is not None and reused.curation.get("engine"):
        engine = reused.curation["engine"]
        why = f"{engine}, as in the run whose items are reused"
    else:
        engine, why = choose_engine(spec.json, config.tokenizer_engine)
    sc = spark.sparkContext
    return Tokenizer(spec, sc.broadcast(spec.json), engine, sc.accumulator(0)), why


def _say_estimate(run: Run):
    """What is read, and how long the whole run takes (said before the items stage); the estimate."""
    from pricecurate.tokenizer.engine import build_codec

    for name, share in run.layout.dominant_compressed:
        run.progress.warn(
            f"{name} is compressed, so one task reads it whole ({share:.0%} of the input); "
            "decompress it to let many tasks read it"
        )
    spec, engine = run.tokenizer.spec, run.tokenizer.engine
    planned = estimate_for_run(
        run.plan, read_heads(run.fs, run.plan, RUN_SAMPLE_BYTES),
        parse_bytes(run.spark.conf.get("spark.sql.files.maxPartitionBytes")), run.cores, run.config,
        bench_rates(cache_dir()),
        # Built only when the kept share matters; the driver has checked the engine already.
        lambda: build_codec(spec.json, engine, spec.clean_up_spaces, verified=True),
        open_cost=parse_bytes(run.spark.conf.get("spark.sql.files.openCostInBytes")),
        spare_cpus=spare_cpus(run.spark.sparkContext.master, run.cores))
    for line in describe(planned, per_file=False):
        run.progress.say(line)
    return planned


def _items(run: Run, reused, key: dict):
    with run.progress.stage("items"):
        curated = curate(run, reused, key)
        accounting = curated.accounting
        run.progress.say(
            f"{accounting['lines']:,} records " + (f"read in {curated.read_tasks} tasks" if reused is None else
                                                   "as read before")
            + f", {accounting['kept']:,} kept, "
            f"{sum(accounting['dropped'].values()):,} dropped, {sum(accounting['quarantined'].values()):,} quarantined"
        )
    return curated


def _kept_items(run: Run, curated):
    """The kept items in tasks of at most ``ITEMS_PER_TASK``: read splits are sized for the rules, so a small input
    of many files (one split each) would otherwise pay every later job's per-task cost once per file. A multiple of
    the cores: a last wave of fewer tasks than cores would leave cores idle in every pass over the items."""
    tasks = run.cores * max(1, math.ceil(curated.accounting["kept"] / (ITEMS_PER_TASK * run.cores)))
    return curated.outcomes.filter(F.col("status") == KEPT).coalesce(tasks)


def _write_quarantine(run: Run, curated) -> None:
    quarantined = sum(curated.accounting["quarantined"].values())
    if quarantined:
        with run.progress.stage("write quarantine"):
            run.output.write_quarantine(curated.outcomes.filter(F.col("status") == QUARANTINED), quarantined,
                                        run.config.write.rows_per_file, run.cores)


def _balance(run: Run, items, plan_on_driver: bool):
    """The balance plan, the balanced items and, planned on the driver (when the kept items fit there), the columns
    of the balanced ones that rank them for the split there too (one Spark job, not seven); else None."""
    config = run.config
    with run.progress.stage("balance"):
        ranking = None
        if plan_on_driver:
            balance_plan, ranking = plan_balance_on_driver(items, config.balance, config.seed, config.recipe.slots,
                                                           driver_columns(config.seed))
        else:
            balance_plan = plan_balance(items, config.balance, config.seed, config.recipe.slots)
        balanced = apply_balance(items, balance_plan, config.balance, config.seed)
        run.progress.say(f"{balance_plan.available:,} items after balancing")
    return balance_plan, balanced, ranking


def _split(run: Run, balanced, available: int, curated, ranking):
    """The split plan, the balanced items with their split (and the leakage check's probes when it runs), their
    counts per category, and the cache to release; ``ranking``: the balanced items' ranking columns, on the driver."""
    with run.progress.stage("split"):
        split_plan = plan_split(available, run.config.split)
        # The probes, test and validation, are the first items in split order: the split's second pass brings them.
        probes = 0 if implied_by_dedup(curated.near) else sum(split_plan.sizes[name] for name in PROBED)
        keyed = with_split_key(balanced, run.config.seed)
        if ranking is None or probes or run.config.baseline:
            # Cached before the split's first pass, which fills it: the split's passes, the leakage check, the
            # baselines and the write read the balanced items from it rather than balancing them again. Read by
            # the write alone, a cache would cost a pass of its own (filled in a job before the write's).
            keyed = keyed.persist(CACHE)
        assigned = split_keyed(keyed, split_plan, probes, probe_columns(run.config.seed), ranking)
        counts = _count_assigned(assigned.counts, available)
        if split_plan.scaled:
            run.progress.say(f"only {available:,} balanced items: splits scaled down to {split_plan.sizes}")
    return split_plan, assigned, counts, keyed


def _leakage(run: Run, curated, assigned, split_plan) -> dict:
    config = run.config
    with run.progress.stage("leakage"):
        if implied_by_dedup(curated.near):
            leakage = no_leaks({name: split_plan.sizes[name] for name in PROBED}, config.near)
        else:
            leakage = find_leaks(assigned.frame, config.near, config.seed, rules=config.recipe, probes=assigned.head)
        run.progress.say(
            f"{leakage['count']:,} test/validation item(s) have a near-duplicate in train "
            f"(word {config.near.ngram}-gram Jaccard >= {config.near.threshold:g}; {how_known(leakage)})"
        )
    return leakage


def _write(run: Run, items, assigned, split_plan, curated, reused) -> None:
    """The split datasets, and the items dataset (copied when a reused run's is the same)."""
    output = run.output
    with run.progress.stage("write"):
        datasets = assigned.frame.filter(F.col("split").isNotNull()).withColumnRenamed("split", "dataset")
        names = [name for name in SPLIT_ORDER if split_plan.sizes[name]]
        groups = {(name, *group): count for name in names for group, count in assigned.counts.get(name, {}).items()}
        same = same_items(reused, curated)
        if same:
            run.fs.copy(same, output.path("items"))
            run.progress.say(f"items dataset: copied from {redact(reused.where)} "
                             "(same items, deduplicated the same way)")
        else:
            datasets = items.withColumn("dataset", F.lit("items")).unionByName(datasets)
            names, groups = ["items", *names], groups | _kept_per_file(run, curated.accounting)
        lines = {name: entry["lines"] for name, entry in curated.accounting["files"].items()}
        output.write_datasets(datasets.withColumn("text", _dataset_text(run.config.recipe)), names, groups, lines,
                              run.config.write.rows_per_file, cores=run.cores)


def _kept_per_file(run: Run, accounting: dict) -> dict[tuple, int]:
    """The items dataset's rows per (dataset, category, file), as the accounting counted them."""
    return {("items", file.category, file.name): accounting["files"][file.name]["kept"] for file in run.plan.files
            if accounting["files"].get(file.name, {}).get("kept")}


def _baselines(run: Run, assigned) -> dict | None:
    config = run.config
    if not config.baseline:
        return None
    with run.progress.stage("baselines"):
        members = assigned.withColumn("dataset", F.col("split")).withColumn("text", _dataset_text(config.recipe))
        baselines = run_baselines(members.filter(F.col("split") == "train"),
                                  members.filter(F.col("split") == "test"), config.seed, config.recipe)
        for line in baseline_lines(baselines):
            run.progress.say(line.strip())
    return baselines


def _job_settings(spark, config: Config, plan, layout) -> dict[str, str]:
    """Session settings this run picks for itself; a setting the user gave in the config is left alone."""
    conf, cores = spark.conf, spark.sparkContext.defaultParallelism
    read = read_settings(plan.files, cores, {
        key: conf.get(key) for key in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    }, config.spark)
    chosen = {
        **{key: str(value) for key, value in read.items()},
        # A fixed count (it was twice the cores) grew every shuffle task with the input: at 5.5M records
        # on 2 cores, one task's hash aggregate of band rows wanted pages of 250 MB and the heap ran out.
        "spark.sql.shuffle.partitions": str(max(shuffle_partitions(plan.files, cores), layout.spread_partitions)),
    }
    if all(local_path(file.uri) is not None for file in plan.files):
        # Past 32 paths Spark lists them in a job of its own (1.7 s on one core for the 34 categories' files);
        # local files list faster on the driver. Remote stores keep the parallel listing.
        chosen["spark.sql.sources.parallelPartitionDiscovery.threshold"] = str(max(32, len(plan.files)))
    chosen = {key: value for key, value in chosen.items() if key not in config.spark}
    # The config's SQL settings hold for this run even in a session that was running before it (they are
    # runtime settings; the others only take effect when the session starts).
    return chosen | {key: value for key, value in config.spark.items() if key.startswith("spark.sql.")}


def _set_session(spark, settings: dict[str, str]) -> dict[str, str]:
    """Apply ``settings``; return what they replaced, to put back when the run ends."""
    previous = {key: spark.conf.get(key) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    return previous


def _count_assigned(counts: dict, available: int) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Balanced items per category, and split members per split and category, from the split's counts per split
    and (category, file)."""
    balanced: dict[str, int] = {}
    by_split: dict[str, dict[str, int]] = {}
    for split, groups in counts.items():
        for (category, _file), count in groups.items():
            balanced[category] = balanced.get(category, 0) + count
            if split is not None:
                members = by_split.setdefault(split, {})
                members[category] = members.get(category, 0) + count
    if sum(balanced.values()) != available:  # the plan and the filter disagree: a bug, never a result
        raise RuntimeError(f"balancing planned {available:,} items but kept {sum(balanced.values()):,}")
    return balanced, by_split


def _recipe_changes(rules) -> str:
    """``: max_tokens 480, min_tokens 400`` for a changed recipe, nothing for the base recipe as it is."""
    changes = rules.changes()
    return (": " + ", ".join(f"{key} {value!r}" for key, value in changes.items())) if changes else ""


def _manifest(run: Run, curated, counts, balanced_by_slot, split_plan, leakage) -> dict:
    """The run's manifest, but for what publishing adds (the data folder, the format, baselines, curation)."""
    config, plan, spark, tokenizer = run.config, run.plan, run.spark, run.tokenizer
    balanced, split_by_category = counts
    accounting = curated.accounting
    categories = {}
    for category in plan.categories:
        counts = accounting["categories"].get(category, {"lines": 0, "kept": 0})
        categories[category] = {
            "lines": counts["lines"],
            "kept": counts["kept"],
            "balanced": balanced.get(category, 0),
            **{name: split_by_category.get(name, {}).get(category, 0) for name in SPLIT_ORDER},
        }
    return {
        "recipe": config.recipe.describe(),
        "created": run.started.isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "tokenizer": {**tokenizer.spec.identity(), "engine": tokenizer.engine, "worker_builds": tokenizer.builds.value},
        "input": {
            "files": [f.manifest_entry() for f in plan.files],
            "missing_categories": plan.missing,
            "ignored_files": plan.ignored,
            "damaged_files": [
                {"file": name, "lines_read": accounting["files"][name]["lines"], "error": redact_text(error)}
                for name, error in sorted(run.counters.damaged.items())
            ],
        },
        "accounting": accounting,
        "near_duplicates": curated.near,
        "leakage": leakage,
        "balanced": sum(balanced.values()),
        # The balanced set's prices, per $1 slot: most balanced items are in no split, so no file holds them.
        "balanced_by_price_slot": {str(slot): count for slot, count in balanced_by_slot.items()},
        "splits": {
            "sizes": split_plan.sizes,
            "requested": split_plan.requested,
            "available": split_plan.available,
            "scaled": split_plan.scaled,
        },
        "categories": categories,
        "spark": {
            "version": pyspark.__version__,
            "master": redact(spark.sparkContext.master),
            "read_tasks": curated.read_tasks,
            "split_bytes": parse_bytes(spark.conf.get("spark.sql.files.maxPartitionBytes")),
            "spread_files": sorted(run.layout.spread_files),
            "spread_partitions": run.layout.spread_partitions,
            # Lines through the item rules: equals accounting.lines when each ran once
            # (task retries after a lost executor add to it).
            "rule_records": run.counters.records.value,
        },
        "stage_seconds": {k: round(v, 2) for k, v in run.progress.stage_seconds.items()},
    }
