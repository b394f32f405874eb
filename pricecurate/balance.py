"""The course's balancing step, distributed: cap over-full price slots by weighted sampling.

Each item gets an Efraimidis-Spirakis key log(u)/w from its seeded hash u and
its category weight w; keeping the ``slot_cap`` largest keys of a slot is a
weighted draw without replacement, like the course's ``numpy.random.choice``
with ``p=weights``, but computed per item with no collect of items.

Only the ranking touches a shuffle, and it moves the key columns alone: it
finds each over-full slot's cut (its ``slot_cap``-th item), at most one row per
slot. The items themselves are then filtered against those cuts where they lie.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pricecurate.config import Balance
from pricecurate.keys import item_uniform

MIN_SLOT = 1
MAX_SLOT = 999
_KEY = "_balance_key"
_CUT = {"key": "_cut_key", "file": "_cut_file", "line": "_cut_line"}


def category_weight(balance: Balance) -> Column:
    weight = F.lit(float(balance.default_weight))
    for category, value in sorted(balance.weights.items()):
        weight = F.when(F.col("category") == category, F.lit(float(value))).otherwise(weight)
    return weight


def _sampling_key(balance: Balance, seed: int) -> Column:
    return F.log(item_uniform(seed, "balance")) / category_weight(balance)


@dataclass(frozen=True)
class BalancePlan:
    cuts: list[tuple[int, float, str, int]]  # (slot, key, file, line) of the last item kept in an over-full slot
    available: int  # items left after balancing


def _keyed(items: DataFrame, balance: Balance, seed: int) -> DataFrame:
    in_range = items.filter(F.col("price_slot").between(MIN_SLOT, MAX_SLOT))
    return in_range.withColumn(_KEY, _sampling_key(balance, seed))


def plan_balance(items: DataFrame, balance: Balance, seed: int) -> BalancePlan:
    """One pass over the key columns: each slot's size, and the cut of each over-full slot.

    Items rank by key, largest first, then by file and line, so ties cannot
    make the choice depend on partitioning. Only one row per slot, its last
    kept item, reaches the driver.
    """
    slot = Window.partitionBy("price_slot")
    ranked = (
        _keyed(items, balance, seed)
        .select("price_slot", _KEY, "file", "line")
        .withColumn("_size", F.count(F.lit(1)).over(slot))
        .withColumn("_rank", F.row_number().over(slot.orderBy(F.col(_KEY).desc(), "file", "line")))
    )
    last_kept = ranked.filter(F.col("_rank") == F.least(F.col("_size"), F.lit(balance.slot_cap)))
    cuts, available = [], 0
    for row in last_kept.collect():
        if row["price_slot"] >= balance.keep_all_from or row["_size"] <= balance.slot_cap:
            available += row["_size"]
        else:
            available += balance.slot_cap
            cuts.append((row["price_slot"], row[_KEY], row["file"], row["line"]))
    return BalancePlan(sorted(cuts), available)


def _rank_position(key: str, file: str, line: str) -> Column:
    """The ranking order (key descending, then file and line) as one ascending struct."""
    return F.struct((-F.col(key)).alias("k"), F.col(file).alias("f"), F.col(line).alias("l"))


def _within_cut() -> Column:
    """True for an item ranked at or before its slot's cut (or in a slot without one)."""
    item = _rank_position(_KEY, "file", "line")
    cut = _rank_position(_CUT["key"], _CUT["file"], _CUT["line"])
    return F.col(_CUT["key"]).isNull() | (item <= cut)


def apply_balance(items: DataFrame, plan: BalancePlan, balance: Balance, seed: int) -> DataFrame:
    """The items the plan keeps: a filter where they lie, against at most one cut per slot (broadcast)."""
    keyed = _keyed(items, balance, seed)
    if not plan.cuts:
        return keyed.select(*items.columns)
    cut_frame = items.sparkSession.createDataFrame(
        plan.cuts, f"price_slot int, {_CUT['key']} double, {_CUT['file']} string, {_CUT['line']} long"
    )
    return keyed.join(F.broadcast(cut_frame), "price_slot", "left").filter(_within_cut()).select(*items.columns)


def balance_items(items: DataFrame, balance: Balance, seed: int) -> DataFrame:
    """Items of slots 1-999: all of slots >= keep_all_from or <= slot_cap items, else a weighted draw."""
    return apply_balance(items, plan_balance(items, balance, seed), balance, seed)
