"""The curation job: read → items → dedup → balance → split → write, counting on the way."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass

import pyspark
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pricecurate import datacard
from pricecurate import recipe as recipe_rules
from pricecurate import reuse
from pricecurate.accounting import build_accounting
from pricecurate.balance import apply_balance, plan_balance
from pricecurate.config import Config
from pricecurate.dedup import DUPLICATE_REASONS, mark_duplicates, mark_near_duplicates
from pricecurate.estimate import describe, estimate, read_heads
from pricecurate.fs import HadoopFS, redact, redact_text
from pricecurate.items import DROPPED, KEPT, QUARANTINED
from pricecurate.leakage import PROBED, find_leaks, how_known, implied_by_dedup, no_leaks
from pricecurate.live import SparkStatus, Totals
from pricecurate.progress import Progress
from pricecurate.publish import DATA_KEY, DEDUP_DONE, ITEMS_DONE, MANIFEST, finished_items, resumable
from pricecurate.read import discover, failed_file, parse_bytes, plan_layout, read_lines, split_size
from pricecurate.split import SPLIT_ORDER, assign_splits, plan_split
from pricecurate.stages import apply_recipe, cut_test_prompt, number_outcomes, numbered_schema, tally_outcomes
from pricecurate.tokenizer import cache_dir, choose_engine, load_spec
from pricecurate.write import CURATED, DUPLICATES, WORK, Output



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
) -> RunResult:
    progress = progress or Progress()
    started = dt.datetime.now(dt.timezone.utc)
    fs = HadoopFS(spark)
    sc = spark.sparkContext

    plan = discover(fs, input_uri, config.categories)
    output = Output(fs, output_uri, input_uri, datacard.render, started)
    for done in output.recover():
        progress.say(done)
    output.claim(overwrite)
    progress.say(
        f"input: {len(plan.files)} file(s) for {len(plan.categories)} categories"
        + (f"; no file for {', '.join(plan.missing)}" if plan.missing else "")
    )
    if plan.ignored:
        progress.say(f"ignored (not meta_<Category> files): {', '.join(plan.ignored)}")

    progress.say(f"recipe {config.recipe.label}" + _recipe_changes(config.recipe))
    for warning in recipe_rules.warnings(config.recipe):
        progress.warn(warning)
    with progress.stage("tokenizer"):
        spec = load_spec(config.tokenizer)
        key = reuse.curation_key([reuse.fingerprint(fs, file) for file in plan.files], config.recipe, spec.sha256,
                                 config.max_record_bytes)
        reused = (_reused(fs, config.reuse_items, key, config.write.rows_per_file) if config.reuse_items
                  else _resumed(fs, output.uri, key, progress))
        if reused is not None and reused.curation.get("engine"):  # the rules do not run: no engine to choose
            engine = reused.curation["engine"]
            why = f"{engine}, as in the run whose items are reused"
        else:
            engine, why = choose_engine(spec.json, config.tokenizer_engine)
        spec_broadcast = sc.broadcast(spec.json)
        builds = sc.accumulator(0)
        progress.say(f"tokenizer {spec.name} sha256 {spec.sha256[:16]}; engine {why}")

    layout = plan_layout(plan.files, sc.defaultParallelism, config.partitions)
    previous = _set_session(spark, _job_settings(spark, config, plan, layout))
    if reused is None:  # what is read, and how long that takes; a run on reused items reads none of it
        for name, share in layout.dominant_compressed:
            progress.warn(
                f"{name} is compressed, so one task reads it whole ({share:.0%} of the input); "
                "decompress it to let many tasks read it"
            )
        planned = estimate(plan, read_heads(fs, plan, RUN_SAMPLE_BYTES),
                           parse_bytes(spark.conf.get("spark.sql.files.maxPartitionBytes")), sc.defaultParallelism,
                           config, cache_dir())
        for line in describe(planned, per_file=False):
            progress.say(line)
    corrupt: dict[str, str] = {}
    records = sc.accumulator(0)
    kept = sc.accumulator(0)
    if sc.uiWebUrl:
        progress.say(f"Spark UI: {sc.uiWebUrl}")
    progress.watch(SparkStatus(sc, kept))
    curated = assigned = None
    try:
        if reused is None:
            progress.expect(Totals(bytes=sum(f.size for f in plan.files), records=planned.records))
        with progress.stage("items"):
            curated = _curate(
                spark, config, plan, layout, (spec, spec_broadcast, engine), builds, (records, kept), corrupt,
                progress, output, reused, key,
            )
            accounting = curated.accounting
            progress.say(
                f"{accounting['lines']:,} records " + (f"read in {curated.read_tasks} tasks" if reused is None else
                                                       "as read before")
                + f", {accounting['kept']:,} kept, "
                f"{sum(accounting['dropped'].values()):,} dropped, {sum(accounting['quarantined'].values()):,} quarantined"
            )

        items = curated.outcomes.filter(F.col("status") == KEPT)
        if sum(accounting["quarantined"].values()):
            with progress.stage("write quarantine"):
                output.write_quarantine(
                    curated.outcomes.filter(F.col("status") == QUARANTINED), sum(accounting["quarantined"].values()),
                    config.write.rows_per_file, sc.defaultParallelism,
                )

        with progress.stage("balance"):
            balance_plan = plan_balance(items, config.balance, config.seed, config.recipe.slots)
            balanced = apply_balance(items, balance_plan, config.balance, config.seed)
            progress.say(f"{balance_plan.available:,} items after balancing")

        with progress.stage("split"):
            split_plan = plan_split(balance_plan.available, config.split)
            # Counted, checked for leakage and written: balanced and split once.
            assigned = assign_splits(balanced, split_plan, config.seed).persist(StorageLevel.MEMORY_AND_DISK)
            balanced_by_category, split_by_category = _count_assigned(assigned, balance_plan.available)
            if split_plan.scaled:
                progress.say(f"only {balance_plan.available:,} balanced items: splits scaled down to {split_plan.sizes}")

        with progress.stage("leakage"):
            if implied_by_dedup(curated.near):
                leakage = no_leaks({name: split_plan.sizes[name] for name in PROBED}, config.near)
            else:
                leakage = find_leaks(assigned, config.near, config.seed, rules=config.recipe)
            progress.say(
                f"{leakage['count']:,} test/validation item(s) have a near-duplicate in train "
                f"(word {config.near.ngram}-gram Jaccard >= {config.near.threshold:g}; {how_known(leakage)})"
            )

        with progress.stage("write"):
            datasets = assigned.filter(F.col("split").isNotNull()).withColumnRenamed("split", "dataset")
            names = [name for name in SPLIT_ORDER if split_plan.sizes[name]]
            rows = sum(split_plan.sizes.values())
            same = _same_items(reused, curated)
            if same:
                fs.copy(same, output.path("items"))
                progress.say(f"items dataset: copied from {redact(reused.where)} (same items, deduplicated the same way)")
            else:
                datasets = items.withColumn("dataset", F.lit("items")).unionByName(datasets)
                names, rows = ["items", *names], rows + accounting["kept"]
            output.write_datasets(
                datasets.withColumn("text", _dataset_text(config.recipe)), names, rows, config.write.rows_per_file,
                cores=sc.defaultParallelism,
            )

        fs.delete(output.path(WORK))  # the near-duplicate rounds: the written datasets no longer read them
        manifest = _manifest(
            config, plan, spec, engine, layout, curated, balanced_by_category, balance_plan.by_slot, split_plan,
            split_by_category, spark, started, progress, builds.value, records.value, corrupt, leakage,
        ) | {DATA_KEY: output.folder, "curation": {
            **curated.curation, "reused_from": redact(reused.where) if reused else None}}
        with progress.stage("publish"):
            for removed in output.publish(manifest):
                progress.say(f"removed {removed}, the dataset this run replaced")
    except BaseException:
        output.abandon()
        raise
    finally:
        if curated is not None:
            curated.cached.unpersist()
        if assigned is not None:
            assigned.unpersist()
        spec_broadcast.unpersist()
        _set_session(spark, previous)
        progress.watch(None)
    progress.say(f"dataset written to {redact(output.uri)}")
    return RunResult(output.uri, manifest)


def _job_settings(spark, config: Config, plan, layout) -> dict[str, str]:
    """Session settings this run picks for itself; a setting the user gave in the config is left alone."""
    conf, cores = spark.conf, spark.sparkContext.defaultParallelism
    chosen = {
        "spark.sql.files.maxPartitionBytes": str(split_size(
            plan.files, cores, parse_bytes(conf.get("spark.sql.files.maxPartitionBytes")),
            parse_bytes(conf.get("spark.sql.files.openCostInBytes")),
        )),
        # Shuffles after the recipe carry only kept items: twice the cores is plenty.
        "spark.sql.shuffle.partitions": str(max(2 * cores, layout.spread_partitions)),
    }
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


def _count_assigned(assigned, available: int) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Balanced items per category, and split members per split and category, in one pass."""
    balanced: dict[str, int] = {}
    by_split: dict[str, dict[str, int]] = {}
    for row in assigned.groupBy("split", "category").count().collect():
        category, count = row["category"], row["count"]
        balanced[category] = balanced.get(category, 0) + count
        if row["split"] is not None:
            by_split.setdefault(row["split"], {})[category] = count
    if sum(balanced.values()) != available:  # the plan and the filter disagree: a bug, never a result
        raise RuntimeError(f"balancing planned {available:,} items but kept {sum(balanced.values()):,}")
    return balanced, by_split


@dataclass
class Curated:
    """The outcomes of every line, numbered and deduplicated, and where every line went."""

    outcomes: DataFrame  # one row per kept or quarantined line, one per tally of dropped lines
    accounting: dict
    read_tasks: int
    cached: DataFrame  # what to unpersist at the end
    near: dict | None = None  # near-duplicate settings and groups, when ``dedup`` has ``near``
    # What reuse needs: the key the items depend on, and the tally of lines as the rules left them (before dedup).
    curation: dict | None = None


@dataclass(frozen=True)
class Reused:
    """A previous run whose curated items stand for this run's."""

    where: str  # its output folder
    folder: str  # its data folder
    curation: dict  # its manifest's curation section
    items_dataset: str | None = None  # its items dataset, when written with this run's rows_per_file

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"


def _reused(fs, where: str, key: dict, rows_per_file: int) -> Reused:
    """The previous output at ``where``, if its curated items stand for this run's; else ``reuse.ReuseError``."""
    where = fs.qualify(where).rstrip("/")
    manifest = json.loads(fs.read_text(f"{where}/{MANIFEST}")) if fs.exists(f"{where}/{MANIFEST}") else None
    curation = reuse.check(manifest, key, where)
    folder = f"{where}/{manifest[DATA_KEY]}"
    same_files = manifest["config"]["write"]["rows_per_file"] == rows_per_file and fs.exists(f"{folder}/items")
    reused = Reused(where, folder, curation, f"{folder}/items" if same_files else None)
    if not fs.exists(reused.path(CURATED)):
        raise reuse.ReuseError(f"cannot reuse items: {redact(reused.path(CURATED))} is missing")
    return reused


def _resumed(fs, output: str, key: dict, progress) -> Reused | None:
    """The items an interrupted run on this output finished, when they stand for this run's."""
    folder = resumable(fs, output)
    if folder is None:
        return None
    curation = finished_items(fs, f"{output}/{folder}")
    reason = reuse.difference(curation["key"], key)
    if reason:
        progress.say(f"not resuming from the items in {folder}: {reason}")
        return None
    progress.say(f"resuming: the items in {folder}, which an interrupted run finished, stand for this run's")
    return Reused(f"{output}/{folder}", f"{output}/{folder}", curation)


def _same_items(reused: Reused | None, curated: Curated) -> str | None:
    """A reused run's items dataset when it is the one this run would write: same curated items, deduplicated
    with the same settings and seed, in files of as many rows."""
    if reused is None or reused.items_dataset is None:
        return None
    same_dedup = reused.curation.get("dedup", {}).get("key") == curated.curation["dedup"]["key"]
    return reused.items_dataset if same_dedup else None


def _recipe_changes(rules) -> str:
    """``: max_tokens 480, min_tokens 400`` for a changed recipe, nothing for the base recipe as it is."""
    changes = rules.changes()
    return (": " + ", ".join(f"{key} {value!r}" for key, value in changes.items())) if changes else ""


def _curate(spark, config, plan, layout, tokenizer, builds, counters, corrupt, progress, output: Output,
            reused: Reused | None, key: dict) -> Curated:
    """Lines → outcomes (the rules run once per line, cached, or read back from a previous run) → kept for
    reuse → duplicates marked."""
    if reused is None:
        numbered, tally, read_tasks, cached = _apply_rules(
            spark, config, plan, layout, tokenizer, builds, counters, corrupt, progress)
        reuse.keep(numbered, output.path(CURATED))
    else:
        # Copied byte for byte: this output can be reused in turn, and reads only its own folder from here on.
        output.fs.copy(reused.path(CURATED), output.path(CURATED))
        # Not cached: each later pass reads only the columns it needs from Parquet, which beats building a cache.
        numbered = reuse.read_back(spark, output.path(CURATED), numbered_schema())
        tally = Counter({tuple(row[:4]): row[4] for row in reused.curation["tally"]})
        read_tasks, cached = reused.curation["read_tasks"], numbered
        corrupt.update(reused.curation["damaged"])
        progress.say(f"items: reusing what the rules made in {redact(reused.where)} (same inputs, recipe and tokenizer)")
    curated = Curated(numbered, {}, read_tasks, cached, curation={
        "key": key, "read_tasks": read_tasks, "damaged": dict(corrupt), "engine": tokenizer[2],
        "tally": [[*line, count] for line, count in sorted(
            tally.items(), key=lambda item: tuple("" if part is None else str(part) for part in item[0])) if count],
    })
    # Written last: a run killed from here on leaves items the next run on this output can resume from.
    output.fs.write_text(output.path(ITEMS_DONE), json.dumps(curated.curation))
    _deduplicate(config, curated, output, reused, progress)
    for file, category, reason, count in curated.curation["dedup"]["dropped"]:
        tally[(file, category, KEPT, None)] -= count
        tally[(file, category, DROPPED, reason)] += count
    curated.accounting = build_accounting(
        ((*key, count) for key, count in tally.items() if count),
        files={f.name: f.category for f in plan.files},
    )
    return curated


def _deduplicate(config, curated: Curated, output: Output, reused: Reused | None, progress) -> None:
    """Mark the duplicates ``config.dedup`` asks for on the cached outcomes, or the lines a previous run marked
    with the same dedup settings and seed; keep the marks (``DUPLICATES``) and what they dropped
    (``curation["dedup"]``) for later runs."""
    numbered = curated.outcomes
    key = reuse.dedup_key(config.dedup, config.near, config.seed)
    known = reused.curation.get("dedup") if reused else None
    if not config.dedup:
        dropped = []
    elif known and known["key"] == key and output.fs.exists(reused.path(DUPLICATES)):
        output.fs.copy(reused.path(DUPLICATES), output.path(DUPLICATES))
        marks = sum(count for *_, count in known["dropped"])
        # Not cached: a join with a broadcast list over the cached outcomes is cheap to run for each use.
        curated.outcomes = reuse.mark_known_duplicates(numbered, output.path(DUPLICATES), marks, DROPPED)
        dropped, curated.near = known["dropped"], known["near"]
        progress.say(f"duplicates: the {marks:,} lines {redact(reused.where)} marked (same dedup settings and seed)")
    else:
        # Marked on the cached outcomes and cached in turn: neither the rules nor
        # the dedup windows run again for each later use of the items.
        marked = mark_duplicates(numbered, config.dedup, config.seed, config.recipe)
        groups = None
        if "near" in config.dedup:
            exact = marked.persist(StorageLevel.MEMORY_AND_DISK)  # signed and joined: the windows run once
            marked, groups = mark_near_duplicates(exact, config.near, config.seed, output.path(WORK),
                                                  rules=config.recipe)
            groups.cached.append(exact)
        curated.outcomes = marked.persist(StorageLevel.MEMORY_AND_DISK)
        dropped = sorted([r["file"], r["category"], r["reason"], r["count"]] for r in (
            curated.outcomes.filter(F.col("reason").isin(*DUPLICATE_REASONS))
            .groupBy("file", "category", "reason").count().collect()
        ))
        reuse.keep_duplicates(curated.outcomes, DUPLICATE_REASONS, output.path(DUPLICATES))
        numbered.unpersist()  # the deduplicated cache is complete and no longer reads it
        curated.cached = curated.outcomes
        if groups is not None:
            groups.release()
            near = curated.near = _near_summary(config.near, groups)
            progress.say(
                f"near duplicates: {near['groups']:,} group(s) of {near['items_in_groups']:,} items "
                f"(largest {near['largest_group']:,}), {near['dropped']:,} dropped"
            )
    curated.curation["dedup"] = {"key": key, "dropped": dropped, "near": curated.near}
    # Written after the marks: a run killed from here on resumes without deduplicating again.
    output.fs.write_text(output.path(DEDUP_DONE), json.dumps(curated.curation["dedup"]))


def _apply_rules(spark, config, plan, layout, tokenizer, builds, counters, corrupt, progress):
    """The rules over every line, once: (numbered outcomes, tally per file/category/status/reason, read tasks,
    the cache to release).

    A file Spark cannot decode to the end (a truncated or damaged .gz) fails
    the job; it is then read again up to the damage, and the run goes on with
    the file named in the manifest. Files without damage pay nothing for this.
    """
    spec, spec_broadcast, engine = tokenizer
    records, kept = counters
    while True:
        lines = read_lines(spark, plan, layout, frozenset(corrupt))
        outcomes = apply_recipe(
            lines, config.recipe, spec_broadcast, spec.sha256, config.max_record_bytes, builds, engine, records,
            spec.clean_up_spaces, kept,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            tallies = tally_outcomes(outcomes)
        except Exception as error:  # noqa: BLE001 - Spark wraps read failures in several types
            outcomes.unpersist()
            damaged = failed_file(error, plan)
            if damaged is None or damaged.name in corrupt:
                raise
            corrupt[damaged.name] = str(error).strip().splitlines()[0][:300]
            progress.warn(f"{damaged.name} cannot be read to the end; reading it up to the damage")
            continue
        break
    tally: Counter = Counter()
    for t in tallies:
        tally[(t.file, t.category, t.status, t.reason)] += t.lines
    return number_outcomes(outcomes, tallies), tally, lines.rdd.getNumPartitions(), outcomes


def _near_summary(params, groups) -> dict:
    bands, rows = params.lsh
    return {
        "threshold": params.threshold, "ngram": params.ngram, "num_perm": params.num_perm,
        "bands": bands, "rows_per_band": rows,
        "groups": groups.groups, "largest_group": groups.largest, "items_in_groups": groups.grouped,
        "dropped": groups.dropped,
        "candidate_pairs": groups.candidate_pairs, "similar_pairs": groups.similar_pairs,
        "component_rounds": groups.rounds, "star_buckets": groups.star_buckets,
    }


def _manifest(config, plan, spec, engine, layout, curated, balanced, balanced_by_slot, split_plan, split_by_category,
              spark, started, progress, tokenizer_builds, rule_records, corrupt, leakage) -> dict:
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
        "created": started.isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "tokenizer": {**spec.identity(), "engine": engine, "worker_builds": tokenizer_builds},
        "input": {
            "files": [f.manifest_entry() for f in plan.files],
            "missing_categories": plan.missing,
            "ignored_files": plan.ignored,
            "damaged_files": [
                {"file": name, "lines_read": accounting["files"][name]["lines"], "error": redact_text(error)}
                for name, error in sorted(corrupt.items())
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
            "master": spark.sparkContext.master,
            "read_tasks": curated.read_tasks,
            "split_bytes": parse_bytes(spark.conf.get("spark.sql.files.maxPartitionBytes")),
            "spread_files": sorted(layout.spread_files),
            "spread_partitions": layout.spread_partitions,
            # Lines through the item rules: equals accounting.lines when each ran once
            # (task retries after a lost executor add to it).
            "rule_records": rule_records,
        },
        "stage_seconds": {k: round(v, 2) for k, v in progress.stage_seconds.items()},
    }
