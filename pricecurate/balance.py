"""The course's balancing step, distributed: cap over-full price slots by weighted sampling.

Each item gets an Efraimidis-Spirakis key log(u)/w from its seeded hash u and
its category weight w; keeping the ``slot_cap`` largest keys of a slot is a
weighted draw without replacement, like the course's ``numpy.random.choice``
with ``p=weights``, but computed per item with no collect to the driver.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pricecurate.config import Balance
from pricecurate.keys import item_uniform

MIN_SLOT = 1
MAX_SLOT = 999


def category_weight(balance: Balance) -> Column:
    weight = F.lit(float(balance.default_weight))
    for category, value in sorted(balance.weights.items()):
        weight = F.when(F.col("category") == category, F.lit(float(value))).otherwise(weight)
    return weight


def balance_items(items: DataFrame, balance: Balance, seed: int) -> DataFrame:
    """Items of slots 1-999: all of slots >= keep_all_from or <= slot_cap items, else a weighted draw."""
    in_range = items.filter(F.col("price_slot").between(MIN_SLOT, MAX_SLOT))
    sampling_key = F.log(item_uniform(seed, "balance")) / category_weight(balance)
    slot = Window.partitionBy("price_slot")
    ranked = in_range.withColumn("_slot_size", F.count(F.lit(1)).over(slot)).withColumn(
        "_rank", F.row_number().over(slot.orderBy(sampling_key.desc(), "file", "line"))
    )
    keep = (
        (F.col("price_slot") >= balance.keep_all_from)
        | (F.col("_slot_size") <= balance.slot_cap)
        | (F.col("_rank") <= balance.slot_cap)
    )
    return ranked.filter(keep).drop("_slot_size", "_rank")
