"""Deterministic train/test(/validation) split in seeded hash order."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pricecurate.config import Split
from pricecurate.pipeline.driver_order import python_value, ranks_in_order
from pricecurate.spark.columns import TIE_BREAK, item_hash
from pricecurate.spark.order_stats import Ranked, ranked

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
GROUPS = ("category", "file")  # what the split's members are counted by: the manifest's categories, the write's tasks


@dataclass(frozen=True)
class Assigned:
    frame: DataFrame  # the items with a ``split`` column, null past the planned sizes
    counts: dict[str | None, Counter]  # per split (None: past the planned sizes), its items per (category, file)
    head: list[tuple]  # the first items in split order: (split, *carried values)


def _position(values: Sequence | None = None) -> Column:
    """An item's place in split order as one struct; with ``values``, that place as a literal."""
    if values is None:
        return F.struct(*[F.col(name) for name in _ORDER])
    return F.struct(*[F.lit(value).alias(name) for name, value in zip(_ORDER, values)])


def _bounds(plan: SplitPlan) -> list[tuple[str, int | None]]:
    """Each split that takes items, with the rank of its last item (None: it takes all the rest)."""
    bounds: list[tuple[str, int | None]] = []
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
    return bounds


def with_split_key(items: DataFrame, seed: int) -> DataFrame:
    """The items with the seeded key that orders them for the split (what to cache when they are read again)."""
    return items.withColumn(_KEY, item_hash(seed, "split"))


def driver_columns(seed: int) -> dict[str, Column]:
    """Besides the tie-break, what ranking the items on the driver needs of each: its key and its groups."""
    return {_KEY: item_hash(seed, "split"), **{name: F.col(name) for name in GROUPS if name not in TIE_BREAK}}


def split_keyed(keyed: DataFrame, plan: SplitPlan, head: int = 0, carry: Sequence[Column] = (),
                on_driver: dict[str, np.ndarray] | None = None) -> Assigned:
    """``with_split_key``'s items with their split: test takes the first keys, then validation, then train.

    The last item of each split is found by its rank (``order_stats``), so no
    split is ever gathered into one task; a split that takes all remaining
    items needs no cut at all. The same two passes count each split's items
    per (category, file) and bring the ``carry`` values of the first ``head``
    items (the small splits' members, say) to the driver. With ``on_driver`` (the items' ``driver_columns`` and
    tie-break, there already), they are ranked on the driver, and one job brings the first items.
    """
    bounds = _bounds(plan)
    ranks = [rank for _, rank in bounds if rank is not None]
    if on_driver is None:
        found = ranked(keyed, _KEY, TIE_BREAK, ranks, plan.available, GROUPS, head, carry)
    else:
        found = _ranked_on_driver(keyed, on_driver, ranks, head, carry)
    # The order's stretches between the ranks, in order: one per split, then the items in none (when there are).
    names = [name for name, _ in bounds] + ([] if bounds and bounds[-1][1] is None else [None])
    counts: dict[str | None, Counter] = {}
    for name, stretch in zip(names, found.stretches, strict=True):
        counts.setdefault(name, Counter()).update(stretch)
    first = [(names[bisect.bisect_left(ranks, place)], *values) for place, values in enumerate(found.head, start=1)]
    label = None
    for name, rank in bounds:
        member = F.lit(True) if rank is None else _position() <= _position(found.cuts[rank])
        label = F.when(member, F.lit(name)) if label is None else label.when(member, F.lit(name))
    frame = keyed.withColumn("split", label if label is not None else F.lit(None).cast("string")).drop(_KEY)
    return Assigned(frame, counts, first)


def _ranked_on_driver(keyed: DataFrame, columns: dict[str, np.ndarray], ranks: list[int], head: int,
                      carry: Sequence[Column]) -> Ranked:
    """``order_stats.ranked``'s result from the items' columns on the driver; the first ``head`` items' ``carry``
    values in one job, which brings the items up to the head's last."""
    ties = [columns[name] for name in TIE_BREAK]
    cuts, stretches, order = ranks_in_order(columns[_KEY], ties, [columns[name] for name in GROUPS], ranks)
    first = []
    if head:
        last = [python_value(column[order[head - 1]]) for column in (columns[_KEY], *ties)]
        carried = [column.alias(f"_carry{index}") for index, column in enumerate(carry)]
        rows = [tuple(row) for row in keyed.filter(_position() <= _position(last)).select(*_ORDER, *carried).collect()]
        first = [row[len(_ORDER):] for row in sorted(rows, key=lambda row: row[:len(_ORDER)])]
        if len(first) != head:  # the driver's order and Spark's disagree: a bug, never a result
            raise RuntimeError(f"the split's first {head:,} items came back as {len(first):,}")
    return Ranked(cuts, stretches, first)


def assign_splits(items: DataFrame, plan: SplitPlan, seed: int) -> DataFrame:
    """``items`` with a ``split`` column (``split_keyed``): items past the requested sizes get a null split."""
    return split_keyed(with_split_key(items, seed), plan).frame
