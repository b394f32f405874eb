"""The course's balancing step, distributed: cap over-full price slots by weighted sampling.

Each item gets an Efraimidis-Spirakis key log(u)/w from its seeded hash u and
its category weight w; keeping the ``slot_cap`` largest keys of a slot is a
weighted draw without replacement, like the course's ``numpy.random.choice``
with ``p=weights``, but computed per item with no collect of items.

Finding each over-full slot's cut (its ``slot_cap``-th item) never gathers a
slot in one task, however many items it holds: a histogram of the keys per
slot, on a log scale, says which narrow key range holds the cut, and only the
few items in that range (about 4% of ``slot_cap`` a slot) reach the driver,
where they are ranked. The items themselves are then filtered against the cuts
where they lie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pricecurate.config import Balance
from pricecurate.pipeline.driver_order import slot_cuts
from pricecurate.rules.recipe import COURSE_2024
from pricecurate.spark.columns import TIE_BREAK, item_uniform
from pricecurate.spark.session import driver_table

_KEY = "_balance_key"
_ORDER = (_KEY, *TIE_BREAK)  # key descending, then the tie-break ascending
_CUT = {name: f"_cut_{name}" for name in _ORDER}
_BUCKET = "_key_bucket"
BUCKETS_PER_OCTAVE = 16


def category_weight(balance: Balance) -> Column:
    weight = F.lit(float(balance.default_weight))
    for category, value in sorted(balance.weights.items()):
        weight = F.when(F.col("category") == category, F.lit(float(value))).otherwise(weight)
    return weight


def _sampling_key(balance: Balance, seed: int) -> Column:
    return F.log(item_uniform(seed, "balance")) / category_weight(balance)


@dataclass(frozen=True)
class BalancePlan:
    cuts: list[tuple]  # (slot, key, parent_asin, category, line) of the last item kept in an over-full slot
    available: int  # items left after balancing
    by_slot: dict[int, int]  # items left after balancing per $1 price slot: the balanced set's price histogram
    slots: tuple[int, int] = COURSE_2024.slots  # the first and last slot balanced (the recipe's price range)


def _keyed(items: DataFrame, balance: Balance, seed: int, slots: tuple[int, int]) -> DataFrame:
    in_range = items.filter(F.col("price_slot").between(*slots))
    return in_range.withColumn(_KEY, _sampling_key(balance, seed))


def _key_bucket() -> Column:
    """A narrow range of keys (1/16 of an octave of -key): the largest keys fall in the lowest buckets.

    Whatever a slot's size, the bucket that holds its ``slot_cap``-th key holds
    about 4% of ``slot_cap`` items, since the buckets are as wide, relatively,
    as the keys are dense there.
    """
    return F.floor(F.log2(-F.col(_KEY)) * BUCKETS_PER_OCTAVE).cast("int")


def plan_balance(
    items: DataFrame, balance: Balance, seed: int, slots: tuple[int, int] = COURSE_2024.slots
) -> BalancePlan:
    """Each slot's size and the cut of each over-full slot, in two passes over the key columns.

    Items rank by key, largest first, then by the tie-break columns, so ties
    cannot make the choice depend on partitioning.
    """
    keyed = _keyed(items, balance, seed, slots).select("price_slot", *_ORDER, _key_bucket().alias(_BUCKET))
    # Pass 1: per slot, the bucket that holds its last kept item (rank min(size, cap)).
    slot = Window.partitionBy("price_slot")
    histogram = (
        keyed.groupBy("price_slot", _BUCKET).count()
        .withColumn("_through", F.sum("count").over(slot.orderBy(_BUCKET)))  # items up to this bucket
        .withColumn("_size", F.sum("count").over(slot))
    )
    last = F.least(F.col("_size"), F.lit(balance.slot_cap))
    holding = histogram.filter((F.col("_through") >= last) & (F.col("_through") - F.col("count") < last))
    cut_in_bucket, by_slot = [], {}
    for row in holding.collect():
        if row["price_slot"] >= balance.keep_all_from or row["_size"] <= balance.slot_cap:
            by_slot[row["price_slot"]] = row["_size"]
        else:
            by_slot[row["price_slot"]] = balance.slot_cap
            before = row["_through"] - row["count"]
            cut_in_bucket.append((row["price_slot"], row[_BUCKET], balance.slot_cap - before))
    by_slot, available = dict(sorted(by_slot.items())), sum(by_slot.values())
    if not cut_in_bucket:
        return BalancePlan([], available, by_slot, slots)
    # Pass 2: rank only the items of each cut's bucket.
    return BalancePlan(_cuts(keyed, cut_in_bucket), available, by_slot, slots)


def plan_balance_on_driver(
    items: DataFrame, balance: Balance, seed: int, slots: tuple[int, int] = COURSE_2024.slots,
    carry: dict[str, Column] | None = None,
) -> tuple[BalancePlan, dict[str, np.ndarray]]:
    """``plan_balance``'s plan from one job that brings every in-range item's keys to the driver (for items that fit
    there: ``driver_order.DRIVER_ITEMS``), and the items it keeps as columns: the tie-break and ``carry``'s."""
    carry = carry or {}
    table = _keyed(items, balance, seed, slots).select(
        "price_slot", _KEY, *TIE_BREAK, *(column.alias(name) for name, column in carry.items())).toArrow()
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    cuts, by_slot, kept = slot_cuts(columns["price_slot"], columns[_KEY], [columns[name] for name in TIE_BREAK],
                                    balance.slot_cap, balance.keep_all_from)
    by_slot = dict(sorted(by_slot.items()))
    return (BalancePlan(cuts, sum(by_slot.values()), by_slot, slots),
            {name: columns[name][kept] for name in (*TIE_BREAK, *carry)})


def _cuts(keyed: DataFrame, cut_in_bucket: list[tuple[int, int, int]]) -> list[tuple]:
    """The (slot, key, *tie-break) of the item at each (slot, bucket, rank in the bucket) of ``cut_in_bucket``.

    The buckets' items (about 4% of ``slot_cap`` a slot) reach the driver and
    are ranked there: a window would shuffle them first, in two more jobs.
    """
    # Sent as one table (a literal per bucket would cost a Py4J call each, seconds for a few hundred slots).
    buckets = driver_table(keyed.sparkSession, [(slot, bucket) for slot, bucket, _ in cut_in_bucket],
                           f"price_slot int, {_BUCKET} int")
    members: dict[int, list[tuple]] = {}
    for row in keyed.join(F.broadcast(buckets), ["price_slot", _BUCKET]).collect():
        # Key descending, then the tie-break ascending (Python orders str by code point, as Spark orders UTF-8).
        members.setdefault(row["price_slot"], []).append((-row[_KEY], *(row[name] for name in TIE_BREAK)))
    cuts = []
    for slot, _, rank in cut_in_bucket:
        ranked = sorted(members.get(slot, []))
        if len(ranked) < rank:  # the histogram and the ranking disagree: a bug, never a result
            raise RuntimeError(f"balancing found {len(ranked)} items in slot {slot}'s cut bucket, not {rank}")
        key, *tie = ranked[rank - 1]
        cuts.append((slot, -key, *tie))
    return sorted(cuts)


def _rank_position(names: dict[str, str]) -> Column:
    """The ranking order (key descending, then the tie-break) as one ascending struct."""
    key, *rest = _ORDER
    return F.struct((-F.col(names[key])).alias("k"), *(F.col(names[n]).alias(n) for n in rest))


def _within_cut() -> Column:
    """True for an item ranked at or before its slot's cut (or in a slot without one)."""
    item = _rank_position({name: name for name in _ORDER})
    return F.col(_CUT[_KEY]).isNull() | (item <= _rank_position(_CUT))


def apply_balance(items: DataFrame, plan: BalancePlan, balance: Balance, seed: int) -> DataFrame:
    """The items the plan keeps: a filter where they lie, against at most one cut per slot (broadcast)."""
    keyed = _keyed(items, balance, seed, plan.slots)
    if not plan.cuts:
        return keyed.select(*items.columns)
    cut_frame = driver_table(
        items.sparkSession,
        plan.cuts,
        f"price_slot int, {_CUT[_KEY]} double, {_CUT['parent_asin']} string, {_CUT['category']} string, "
        f"{_CUT['line']} long",
    )
    return keyed.join(F.broadcast(cut_frame), "price_slot", "left").filter(_within_cut()).select(*items.columns)


def balance_items(
    items: DataFrame, balance: Balance, seed: int, slots: tuple[int, int] = COURSE_2024.slots
) -> DataFrame:
    """Items of the slots (1-999 in the course): all of slots >= keep_all_from or <= slot_cap items, else a
    weighted draw."""
    return apply_balance(items, plan_balance(items, balance, seed, slots), balance, seed)
