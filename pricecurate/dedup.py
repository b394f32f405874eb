"""Exact-duplicate removal: one deterministic representative per title and per text."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pricecurate.items import DROPPED, KEPT
from pricecurate.keys import item_hash, tie_break
from pricecurate.stages import cut_test_prompt

# dedup field -> (what is compared, drop reason)
DUPLICATE_OF = {
    "title": (lambda: F.col("title"), "duplicate_title"),
    # The text without the price: two items with the same text must not both
    # appear, whatever their prices, or one could land in train and one in test.
    "text": (cut_test_prompt, "duplicate_text"),
}
DUPLICATE_REASONS = tuple(reason for _, reason in DUPLICATE_OF.values())


def mark_duplicates(outcomes: DataFrame, fields: list[str], seed: int) -> DataFrame:
    """Turn every kept item but one per duplicate group into a drop with a reason.

    The representative is the item with the smallest seeded hash, so the choice
    does not depend on partitioning. Only kept rows are shuffled.
    """
    if not fields:
        return outcomes
    kept = outcomes.filter(F.col("status") == KEPT)
    others = outcomes.filter(F.col("status") != KEPT)
    for field in fields:
        compared, reason = DUPLICATE_OF[field]
        group = Window.partitionBy(compared()).orderBy(item_hash(seed, "dedup"), *tie_break())
        ranked = kept.withColumn("_rank", F.row_number().over(group))
        duplicates = (
            ranked.filter(F.col("_rank") > 1)
            .drop("_rank")
            .withColumn("status", F.lit(DROPPED))
            .withColumn("reason", F.lit(reason))
        )
        kept = ranked.filter(F.col("_rank") == 1).drop("_rank")
        others = others.unionByName(duplicates)
    return kept.unionByName(others)
