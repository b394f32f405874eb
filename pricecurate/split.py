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


def assign_splits(items: DataFrame, plan: SplitPlan, seed: int) -> DataFrame:
    """``items`` with a ``split`` column: test takes the first seeded-hash keys, then validation, then train.

    Items past the requested sizes get a null split. Each cut point is found
    with a top-k on the key columns only, so no split is ever gathered into one
    partition; a split that takes all remaining items needs no cut at all.
    """
    keyed = items.withColumn("_split_key", item_hash(seed, "split"))
    position = F.struct(*_order_columns())
    label = None
    previous_cut = None  # position of the last item of the split before
    remaining = plan.available
    for name in SPLIT_ORDER:
        size = plan.sizes[name]
        if size == 0:
            continue
        if size >= remaining:
            member = F.lit(True)  # the rest, whatever its keys
        else:
            after = keyed if previous_cut is None else keyed.filter(position > _position_literal(previous_cut))
            previous_cut = (
                after.select(*_order_columns())
                .orderBy(*_order_columns())
                .limit(size)
                .agg(F.max(F.struct(*_order_columns())).alias("cut"))
                .first()["cut"]
            )
            member = position <= _position_literal(previous_cut)  # earlier splits' items are labelled first
        label = F.when(member, F.lit(name)) if label is None else label.when(member, F.lit(name))
        remaining -= size
        if remaining <= 0:
            break
    return keyed.withColumn("split", label if label is not None else F.lit(None).cast("string")).drop("_split_key")
