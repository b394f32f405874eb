"""Deterministic train/test(/validation) split in seeded hash order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pricecurate.config import Split
from pricecurate.spark.columns import TIE_BREAK, item_hash
from pricecurate.spark.order_stats import rows_at_ranks

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


_KEY = "_split_key"
_ORDER = (_KEY, *TIE_BREAK)


def _position(values: Sequence | None = None) -> Column:
    """An item's place in split order as one struct; with ``values``, that place as a literal."""
    if values is None:
        return F.struct(*[F.col(name) for name in _ORDER])
    return F.struct(*[F.lit(value).alias(name) for name, value in zip(_ORDER, values)])


def assign_splits(items: DataFrame, plan: SplitPlan, seed: int) -> DataFrame:
    """``items`` with a ``split`` column: test takes the first seeded-hash keys, then validation, then train.

    Items past the requested sizes get a null split. The last item of each
    split is found by its rank (``order_stats``), so no split is ever gathered
    into one task; a split that takes all remaining items needs no cut at all.
    """
    keyed = items.withColumn(_KEY, item_hash(seed, "split"))
    bounds: list[tuple[str, int | None]] = []  # (split, rank of its last item; None: all the rest)
    taken = 0
    for name in SPLIT_ORDER:
        size = plan.sizes[name]
        if size == 0:
            continue
        if taken + size >= plan.available:
            bounds.append((name, None))
            break
        taken += size
        bounds.append((name, taken))
    cuts = rows_at_ranks(keyed, _KEY, TIE_BREAK, [rank for _, rank in bounds if rank is not None], plan.available)
    label = None
    for name, rank in bounds:
        member = F.lit(True) if rank is None else _position() <= _position(cuts[rank])
        label = F.when(member, F.lit(name)) if label is None else label.when(member, F.lit(name))
    return keyed.withColumn("split", label if label is not None else F.lit(None).cast("string")).drop(_KEY)
