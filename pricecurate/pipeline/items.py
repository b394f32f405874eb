"""The items stage: every line through the rules once (or a previous run's items read back), kept for reuse,
then deduplicated (or marked as a previous run with the same dedup settings marked them)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.output.layout import (
    CURATED,
    DEDUP_DONE,
    DUPLICATES,
    ITEMS_DONE,
    WORK,
)
from pricecurate.pipeline import reuse
from pricecurate.pipeline.accounting import build_accounting
from pricecurate.pipeline.arrow_rules import apply_recipe, number_outcomes, numbered_schema, tally_outcomes
from pricecurate.pipeline.context import Run
from pricecurate.pipeline.dedup.mark import DUPLICATE_REASONS, mark_duplicates, mark_near_duplicates
from pricecurate.pipeline.long_lines import find_skipped_lines, read_again
from pricecurate.pipeline.read import failed_file, line_limit, read_failure, read_lines
from pricecurate.rules.lines import DROPPED, KEPT
from pricecurate.spark.fs import redact
from pricecurate.spark.session import CACHE

ROWS_PER_TASK = 100_000  # outcome rows per task after deduplication (about 150 MB of real kept items)

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


def curate(run: Run, reused: reuse.Reused | None, key: dict) -> Curated:
    """Lines → outcomes (the rules run once per line, cached, or read back from a previous run) → kept for
    reuse → duplicates marked."""
    output, progress, corrupt = run.output, run.progress, run.counters.damaged
    if reused is None:
        numbered, tally, read_tasks, cached = _apply_rules(run)
        reuse.keep(numbered, output.path(CURATED))
    else:
        # Checked, then copied byte for byte (and the copy checked): this output can be reused in turn, and
        # reads only its own folder from here on.
        reuse.verify(output.fs, reused.path(CURATED), reused.curation.get("files", {}).get(CURATED))
        output.fs.copy(reused.path(CURATED), output.path(CURATED))
        # Not cached: each later pass reads only the columns it needs from Parquet, which beats building a cache.
        numbered = reuse.read_back(run.spark, output.path(CURATED), numbered_schema())
        tally = Counter({tuple(row[:4]): row[4] for row in reused.curation["tally"]})
        read_tasks, cached = reused.curation["read_tasks"], numbered
        corrupt.update(reused.curation["damaged"])
        progress.say(f"items: reusing what the rules made in {redact(reused.where)} (same inputs, recipe and tokenizer)")
    curated = Curated(numbered, {}, read_tasks, cached, curation={
        "key": key, "read_tasks": read_tasks, "damaged": dict(corrupt), "engine": run.tokenizer.engine,
        "tally": [[*line, count] for line, count in sorted(
            tally.items(), key=lambda item: tuple("" if part is None else str(part) for part in item[0])) if count],
        # What a later run checks before it reuses these folders.
        "files": {CURATED: output.fs.tree(output.path(CURATED))},
    })
    # Written last: a run killed from here on leaves items the next run on this output can resume from.
    output.fs.write_text(output.path(ITEMS_DONE), json.dumps(curated.curation))
    _deduplicate(run, curated, reused)
    for file, category, reason, count in curated.curation["dedup"]["dropped"]:
        tally[(file, category, KEPT, None)] -= count
        tally[(file, category, DROPPED, reason)] += count
    curated.accounting = build_accounting(
        ((*line, count) for line, count in tally.items() if count),
        files={f.name: f.category for f in run.plan.files},
    )
    return curated


def _deduplicate(run: Run, curated: Curated, reused: reuse.Reused | None) -> None:
    """Mark the duplicates ``config.dedup`` asks for on the cached outcomes, or the lines a previous run marked
    with the same dedup settings and seed; keep the marks (``DUPLICATES``) and what they dropped
    (``curation["dedup"]``) for later runs."""
    config, output, progress = run.config, run.output, run.progress
    numbered = curated.outcomes
    key = reuse.dedup_key(config.dedup, config.near, config.seed)
    known = reused.curation.get("dedup") if reused else None
    if not config.dedup:
        dropped = []
    elif (reused and reuse.same_marks(reused.curation, config.dedup, config.near, config.seed)
          and output.fs.exists(reused.path(DUPLICATES))):
        reuse.verify(output.fs, reused.path(DUPLICATES), reused.curation.get("files", {}).get(DUPLICATES))
        output.fs.copy(reused.path(DUPLICATES), output.path(DUPLICATES))
        marks = sum(count for *_, count in known["dropped"])
        # Not cached: a join with a broadcast list is cheap to run again for each use of the outcomes.
        curated.outcomes = reuse.mark_known_duplicates(numbered, output.path(DUPLICATES), marks, DROPPED)
        dropped, curated.near = known["dropped"], known["near"]
        progress.say(f"duplicates: the {marks:,} lines {redact(reused.where)} marked (same dedup settings and seed)")
    else:
        # Marked on the cached outcomes and cached in turn: neither the rules nor
        # the dedup windows run again for each later use of the items.
        # The windows' shuffles and the unions of kept and other lines add up to hundreds of partitions even on
        # a small input; later passes pay each one's task cost. At most ROWS_PER_TASK outcome rows a task.
        tasks = max(run.cores, math.ceil(sum(line[-1] for line in curated.curation["tally"]) / ROWS_PER_TASK))
        marked = mark_duplicates(numbered, config.dedup, config.seed, config.recipe).coalesce(tasks)
        groups = None
        if "near" in config.dedup:
            exact = marked.persist(CACHE)  # signed and joined: the windows run once
            kept = sum(count for _, _, status, _, count in curated.curation["tally"] if status == KEPT)
            marked, groups = mark_near_duplicates(exact, config.near, config.seed, output.path(WORK),
                                                  rules=config.recipe, most_items=kept)
            marked = marked.coalesce(tasks)
            groups.cached.append(exact)
        curated.outcomes = marked.persist(CACHE)
        dropped = sorted([r["file"], r["category"], r["reason"], r["count"]] for r in (
            curated.outcomes.filter(F.col("reason").isin(*DUPLICATE_REASONS))
            .groupBy("file", "category", "reason").count().collect()
        ))
        reuse.keep_duplicates(curated.outcomes, DUPLICATE_REASONS, output.path(DUPLICATES))
        curated.cached.unpersist()  # the deduplicated cache is complete and no longer reads the rules' cache
        curated.cached = curated.outcomes
        if groups is not None:
            groups.release()
            near = curated.near = _near_summary(config.near, groups)
            progress.say(
                f"near duplicates: {near['groups']:,} group(s) of {near['items_in_groups']:,} items "
                f"(largest {near['largest_group']:,}), {near['dropped']:,} dropped"
            )
    curated.curation["dedup"] = {"key": key, "dropped": dropped, "near": curated.near}
    if output.fs.exists(output.path(DUPLICATES)):
        curated.curation["files"][DUPLICATES] = output.fs.tree(output.path(DUPLICATES))
    # Written after the marks: a run killed from here on resumes without deduplicating again.
    output.fs.write_text(output.path(DEDUP_DONE), json.dumps(
        {**curated.curation["dedup"], "files": curated.curation["files"].get(DUPLICATES)}))


def _apply_rules(run: Run):
    """The rules over every line, once: (numbered outcomes, tally per file/category/status/reason, read tasks,
    the cache to release).

    A file Spark cannot decode to the end (a truncated or damaged .gz) fails
    the job; it is then read again up to the damage, and the run goes on with
    the file named in the manifest. Files without damage pay nothing for this.
    The reader skips lines longer than ``max_record_bytes`` unread; a file where
    it did, or a .gz past ``max_gzip_bytes``, is read again alone, its skipped
    lines quarantined (``pricecurate.pipeline.long_lines``); the others pay nothing.
    """
    spark, config, plan, progress = run.spark, run.config, run.plan, run.progress
    tokenizer, counters, corrupt = run.tokenizer, run.counters, run.counters.damaged
    max_line = line_limit(config.max_record_bytes)

    def rules(lines, segments=None):
        return apply_recipe(lines, config.recipe, tokenizer.broadcast, tokenizer.spec.sha256, config.max_record_bytes,
                            tokenizer.builds, tokenizer.engine, counters.records, tokenizer.spec.clean_up_spaces,
                            counters.kept, segments)

    while True:
        lines = read_lines(spark, plan, run.layout, frozenset(corrupt), max_line)
        outcomes = rules(lines).persist(CACHE)
        try:
            tallies = tally_outcomes(outcomes)
        except Exception as error:  # noqa: BLE001 - Spark wraps read failures in several types
            outcomes.unpersist()
            damaged = failed_file(error, plan)
            if damaged is None or damaged.name in corrupt:
                raise
            corrupt[damaged.name] = read_failure(error)
            progress.warn(f"{damaged.name} cannot be read to the end; reading it up to the damage")
            continue
        break
    read_tasks = lines.rdd.getNumPartitions()
    scans = find_skipped_lines(spark, plan, tallies, max_line, config.max_gzip_bytes, corrupt)
    if scans:
        for file, scan in scans.items():
            progress.warn(scan.describe(file.name))
        outcomes, tallies = read_again(spark, outcomes, scans, rules, corrupt, max_line)
        corrupt.update({file.name: scan.cut for file, scan in scans.items() if scan.cut and file.name not in corrupt})
    tally: Counter = Counter()
    for t in tallies:
        tally[(t.file, t.category, t.status, t.reason)] += t.lines
    return number_outcomes(outcomes, tallies), tally, read_tasks, outcomes


def _near_summary(params, groups) -> dict:
    return {
        **params.settings(),
        "groups": groups.groups, "largest_group": groups.largest, "items_in_groups": groups.grouped,
        "dropped": groups.dropped,
        "candidate_pairs": groups.candidate_pairs, "similar_pairs": groups.similar_pairs,
        "component_rounds": groups.rounds, "star_buckets": groups.star_buckets,
    }
