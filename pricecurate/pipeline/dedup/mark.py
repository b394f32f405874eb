"""Duplicate removal: one deterministic representative per title, per text, and per near-duplicate group."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pricecurate.config import NearParams
from pricecurate.pipeline.dedup.near import (
    NEAR_ID,
    NearGroups,
    fits_on_driver,
    near_groups,
    near_groups_on_driver,
    near_id,
    require_unique_ids,
    sign,
)
from pricecurate.rules.lines import DROPPED, KEPT
from pricecurate.rules.recipe import COURSE_2024, Recipe
from pricecurate.spark.columns import cut_test_prompt, item_hash, tie_break
from pricecurate.spark.session import CACHE

# dedup field -> (what is compared, given the recipe; drop reason)
DUPLICATE_OF = {
    "title": (lambda rules: F.col("title"), "duplicate_title"),
    # The text without the price: two items with the same text must not both
    # appear, whatever their prices, or one could land in train and one in test.
    "text": (cut_test_prompt, "duplicate_text"),
}
NEAR_DUPLICATE = "near_duplicate"
# Near-duplicate drops whose ids (8 bytes each) are sent to every task rather than the items to a shuffle.
BROADCAST_DROPS = 4_000_000
DUPLICATE_REASONS = (*(reason for _, reason in DUPLICATE_OF.values()), NEAR_DUPLICATE)


def mark_duplicates(outcomes: DataFrame, fields: list[str], seed: int, rules: Recipe = COURSE_2024) -> DataFrame:
    """Turn every kept item but one per exact duplicate group (title, text) into a drop with a reason.

    The representative is the item with the smallest seeded hash, so the choice
    does not depend on partitioning. Only kept rows are shuffled, once per field:
    each field's window marks its duplicates in place, and the next field's
    groups hold only the items still kept (the status is part of its key).
    Splitting each window's output into kept and dropped branches instead made
    Spark shuffle the same rows once per branch (the branches prune different
    columns, so their exchanges are not reused): five shuffles for two fields.
    """
    fields = [field for field in fields if field in DUPLICATE_OF]
    if not fields:
        return outcomes
    kept = outcomes.filter(F.col("status") == KEPT)
    for field in fields:
        compared, reason = DUPLICATE_OF[field]
        group = Window.partitionBy(compared(rules), "status").orderBy(item_hash(seed, "dedup"), *tie_break())
        duplicate = (F.col("status") == KEPT) & (F.col("_rank") > 1)
        kept = kept.withColumn("_rank", F.row_number().over(group)).select(*[
            F.when(duplicate, F.lit(DROPPED)).otherwise(F.col("status")).alias("status") if name == "status"
            else F.when(duplicate, F.lit(reason)).otherwise(F.col("reason")).alias("reason") if name == "reason"
            else F.col(name)
            for name in outcomes.columns
        ])
    return kept.unionByName(outcomes.filter(F.col("status") != KEPT))


def mark_near_duplicates(
    outcomes: DataFrame, params: NearParams, seed: int, scratch: str, broadcast_drops: int = BROADCAST_DROPS,
    rules: Recipe = COURSE_2024, most_items: int | None = None,
) -> tuple[DataFrame, NearGroups]:
    """Every kept item of a near-duplicate group but the one with the smallest seeded id becomes a drop.

    The dropped ids are broadcast to the items' tasks, so the items are not
    shuffled (beyond ``broadcast_drops`` ids they are joined by a shuffle).
    The caller persists the result and then calls ``groups.release()``; the
    result reads ``outcomes`` and ``scratch`` (see ``near_groups``) until then.
    ``most_items`` (when known: the items the rules kept, before any duplicate was dropped) bounds the kept items:
    when that many fit on the driver, they are signed straight to it, packed, in one job, and grouped there.
    """
    kept = outcomes.filter(F.col("status") == KEPT).withColumn(NEAR_ID, near_id(seed))
    if most_items is not None and fits_on_driver(most_items, params):
        groups = near_groups_on_driver(sign(kept, params, seed, rules=rules, packed=True), params)
    else:
        signed = sign(kept, params, seed, rules=rules).persist(CACHE)
        groups = near_groups(signed, params, scratch, require_unique_ids(signed))
        groups.cached.append(signed)
    drops = groups.labels.filter(F.col("id") != F.col("label")).select(
        F.col("id").alias(NEAR_ID), F.lit(True).alias("_near")
    )
    broadcast = groups.dropped <= broadcast_drops
    near = F.col("_near").isNotNull()
    marked = (
        kept.join(F.broadcast(drops) if broadcast else drops, NEAR_ID, "left")
        .withColumn("status", F.when(near, F.lit(DROPPED)).otherwise(F.col("status")))
        .withColumn("reason", F.when(near, F.lit(NEAR_DUPLICATE)).otherwise(F.col("reason")))
        .drop(NEAR_ID, "_near")
        .unionByName(outcomes.filter(F.col("status") != KEPT))
    )
    return marked, groups
