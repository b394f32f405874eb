"""The leakage check: test and validation items with a near-duplicate in train.

It uses the signatures and band keys of near-duplicate detection (same seed,
same settings), so with ``dedup: near`` on it can only find pairs that share
nothing but buckets too crowded for near-duplicate detection to compare every
pair in them (``star_buckets``): any other pair sharing a bucket was compared,
and, if similar, grouped, so one of the two was dropped. With no such bucket
the check is implied, and not run. The probe side (test and validation) is
small and broadcast; train stays where it is.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.config import NearParams
from pricecurate.pipeline.dedup.near import NEAR_ID, agreement, band_rows, min_agreement, near_id, sign
from pricecurate.rules.recipe import COURSE_2024, Recipe
from pricecurate.spark.session import CACHE

EXAMPLES = 20
PROBED = ("test", "validation")
def implied_by_dedup(near: dict | None) -> bool:
    """True when this run's near-duplicate removal (same settings and seed as the check) compared every pair
    of items sharing a bucket: then no test or validation item can have a near-duplicate in train."""
    return near is not None and near.get("star_buckets") == 0


def no_leaks(checked: dict[str, int], params: NearParams) -> dict:
    """The check's result when ``implied_by_dedup``: nothing leaks, and nothing was compared to say so."""
    return {"threshold": params.threshold, "checked": checked, "leaking": dict.fromkeys(PROBED, 0), "count": 0,
            "examples": [], "implied_by_dedup": True}


def find_leaks(
    assigned: DataFrame, params: NearParams, seed: int, examples: int = EXAMPLES, rules: Recipe = COURSE_2024
) -> dict:
    """Counts per probed split and up to ``examples`` pairs, most similar first."""
    described = ("split", "title", "price", "category")
    members = assigned.filter(F.col("split").isNotNull()).withColumn(NEAR_ID, near_id(seed))
    signed = sign(members, params, seed, carry=described, rules=rules).persist(CACHE)
    try:
        probes = signed.filter(F.col("split") != "train")
        train = signed.filter(F.col("split") == "train")
        candidates = (
            band_rows(train).withColumnRenamed("id", "train_id")
            .join(F.broadcast(band_rows(probes).withColumnRenamed("id", "probe_id")), ["band", "bucket"])
            .select("probe_id", "train_id").distinct()
        )
        leaks = (
            candidates
            .join(F.broadcast(probes.select(F.col("id").alias("probe_id"), F.col("sig").alias("sig_p"))), "probe_id")
            .join(train.select(F.col("id").alias("train_id"), F.col("sig").alias("sig_t"), "title", "price", "category"),
                  "train_id")
            .select("probe_id", agreement("sig_p", "sig_t").alias("agree"), "train_id", "title", "price", "category")
            .filter(F.col("agree") >= min_agreement(params))
        )
        # Each leaking item once, with its most similar train item (smallest id on ties).
        best = leaks.groupBy("probe_id").agg(
            F.max(F.struct("agree", F.bitwise_not("train_id").alias("not_train"), "title", "price", "category"))
            .alias("match")
        )
        found = (
            probes.select(F.col("id").alias("probe_id"), *described)
            .join(best, "probe_id", "left")
            .persist(CACHE)  # one row per test or validation item: counted, then sampled
        )
        try:
            leaking = F.col("match").isNotNull()
            counts = found.agg(*[
                metric
                for name in PROBED
                for metric in (F.count_if(F.col("split") == name).alias(f"checked_{name}"),
                               F.count_if((F.col("split") == name) & leaking).alias(f"leaking_{name}"))
            ]).first()
            top = found.filter(leaking).orderBy(F.col("match.agree").desc(), "split", "probe_id").limit(examples).collect()
        finally:
            found.unpersist()
    finally:
        signed.unpersist()
    leaking = {name: counts[f"leaking_{name}"] for name in PROBED}
    return {
        "threshold": params.threshold,
        "implied_by_dedup": False,
        "checked": {name: counts[f"checked_{name}"] for name in PROBED},
        "leaking": leaking,
        "count": sum(leaking.values()),
        "examples": [
            {
                "split": row["split"],
                "similarity": round(row["match"]["agree"] / params.num_perm, 3),
                "title": row["title"], "price": row["price"], "category": row["category"],
                "train_title": row["match"]["title"], "train_price": row["match"]["price"],
                "train_category": row["match"]["category"],
            }
            for row in top
        ],
    }
