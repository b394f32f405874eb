"""Deterministic train/test(/validation) split in seeded hash order."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.config import Split
from pricecurate.keys import item_hash

SPLIT_ORDER = ("test", "validation", "train")  # the small splits take the first keys


@dataclass(frozen=True)
class SplitPlan:
    sizes: dict[str, int]
    requested: dict[str, int]
    available: int

    @property
    def scaled(self) -> bool:
        return self.sizes != self.requested


def plan_split(available: int, split: Split) -> SplitPlan:
    """Requested sizes, or all of them scaled down in proportion when items are short."""
    requested = {"train": split.train, "test": split.test, "validation": split.validation}
    total = sum(requested.values())
    if available >= total:
        return SplitPlan(dict(requested), requested, available)
    sizes = {name: (available * size) // total for name, size in requested.items()}
    # Hand the items lost to rounding down out in order, never to a split that was not asked for.
    leftover = available - sum(sizes.values())
    for name in ("test", "validation", "train"):
        if leftover and requested[name]:
            sizes[name] += 1
            leftover -= 1
    return SplitPlan(sizes, requested, available)


def _order_columns():
    return [F.col("_split_key"), F.col("file"), F.col("line")]


def _position_literal(row) -> "F.Column":
    names = ("_split_key", "file", "line")
    return F.struct(*[F.lit(value).alias(name) for name, value in zip(names, row)])


def assign_splits(items: DataFrame, plan: SplitPlan, seed: int) -> dict[str, DataFrame]:
    """Items ordered by a seeded hash; test takes the first keys, then validation, then train.

    The cut points are found with a top-k on the key columns only, so no split
    is ever gathered into one partition.
    """
    keyed = items.withColumn("_split_key", item_hash(seed, "split"))
    position = F.struct(*_order_columns())
    splits: dict[str, DataFrame] = {}
    lower = None
    for name in SPLIT_ORDER:
        size = plan.sizes[name]
        if size == 0:
            continue
        remaining = keyed if lower is None else keyed.filter(position > _position_literal(lower))
        upper = (
            remaining.select(*_order_columns())
            .orderBy(*_order_columns())
            .limit(size)
            .agg(F.max(F.struct(*_order_columns())).alias("upper"))
            .first()["upper"]
        )
        chosen = remaining.filter(position <= _position_literal(upper)) if upper is not None else remaining.limit(0)
        splits[name] = chosen
        lower = upper
    return splits
