"""Balancing and the split planned on the driver: the same plans, counts and order as the distributed passes."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from pricecurate.config import Balance, Split
from pricecurate.pipeline.balance import apply_balance, plan_balance, plan_balance_on_driver
from pricecurate.pipeline.driver_order import ranks_in_order, slot_cuts, sort_order
from pricecurate.pipeline.leakage import probe_columns
from pricecurate.pipeline.split import driver_columns, plan_split, split_keyed, with_split_key
from pricecurate.spark.columns import TIE_BREAK


def _columns(rows: list[tuple]) -> list[np.ndarray]:
    columns = [np.empty(len(rows), dtype=object) for _ in rows[0]]
    for index, row in enumerate(rows):
        for column, value in zip(columns, row):
            column[index] = value
    return columns


def test_sort_order_breaks_ties_of_the_primaries_by_the_tie_columns():
    picked = random.Random(3)
    rows = [(picked.randint(0, 5), picked.randint(0, 3), picked.choice("abc"), picked.choice(["x", "é", "Z"]),
             index) for index in range(2000)]
    first, second, *ties = _columns(rows)
    order = sort_order([first.astype(np.int64), second.astype(np.int64)], ties)
    assert [rows[index] for index in order] == sorted(rows)


def test_slot_cuts_keep_each_over_full_slot_s_largest_keys():
    picked = random.Random(5)
    rows = [(slot, picked.choice([-0.5, -1.0, picked.uniform(-9, 0)]), f"B{picked.randint(0, 40)}", "Toys", line)
            for line, slot in enumerate(picked.choice([3, 7, 7, 7, 300, 300, 300, 12]) for _ in range(3000))]
    slot, key, *ties = _columns(rows)
    cuts, by_slot, kept = slot_cuts(slot.astype(np.int64), key.astype(np.float64), ties, slot_cap=200,
                                    keep_all_from=240)
    sizes = Counter(row[0] for row in rows)
    expected_kept, expected_cuts = set(), []
    for value, size in sizes.items():
        ranked = sorted((row for row in rows if row[0] == value), key=lambda row: (-row[1], *row[2:]))
        if value >= 240 or size <= 200:
            expected_kept |= {row[-1] for row in ranked}
        else:
            expected_kept |= {row[-1] for row in ranked[:200]}
            expected_cuts.append(ranked[199])
    assert cuts == sorted(expected_cuts)
    assert by_slot == {value: size if value >= 240 or size <= 200 else 200 for value, size in sizes.items()}
    assert {rows[index][-1] for index in np.flatnonzero(kept)} == expected_kept


def test_ranks_in_order_counts_each_stretch_by_group():
    rows = [(key % 7, f"B{key % 5}", "Books" if key % 2 else "Toys", key) for key in range(100)]
    key, *ties = _columns(rows)
    files = np.array([f"meta_{row[2]}.jsonl" for row in rows], dtype=object)
    cuts, stretches, order = ranks_in_order(key.astype(np.int64), ties, [ties[1], files], [10, 60])
    ranked = sorted(rows)
    assert cuts == {10: ranked[9], 60: ranked[59]}
    assert [rows[index] for index in order] == ranked
    for stretch, members in zip(stretches, (ranked[:10], ranked[10:60], ranked[60:]), strict=True):
        assert stretch == Counter((row[2], f"meta_{row[2]}.jsonl") for row in members)


def _items(spark):
    """Over-full slots with products listed in two categories of the same weight: equal keys, broken by the
    tie-break; a slot at keep_all_from; one out of range."""
    rows = []
    for slot, count in ((10, 700), (11, 650), (12, 90), (240, 500), (0, 30)):
        for line in range(count):
            for category in ("Toys_and_Games", "Video_Games") if line % 4 == 0 else ("Toys_and_Games",):
                rows.append((category, f"meta_{category}.jsonl", slot * 10_000 + line, slot, f"P{slot}-{line % 600}",
                             f"prompt {slot} {line} {category}", f"title {line}", float(slot) + 0.25))
    schema = ("category string, file string, line long, price_slot int, parent_asin string, prompt string, "
              "title string, price double")
    return spark.createDataFrame(rows, schema).repartition(3)


@pytest.mark.parametrize("split", [Split(train=900, test=60, validation=25), Split(train=5000, test=40)],
                         ids=["all-splits", "scaled"])
def test_the_driver_s_plans_are_the_distributed_plans(spark, split):
    items, balance, seed = _items(spark), Balance(slot_cap=400, weights={"Video_Games": 5.0}), 11
    plan, on_driver = plan_balance_on_driver(items, balance, seed, carry=driver_columns(seed))
    assert plan == plan_balance(items, balance, seed)
    assert plan.cuts and plan.available == len(on_driver["line"])

    keyed = with_split_key(apply_balance(items, plan, balance, seed), seed).cache()
    sizes = plan_split(plan.available, split)
    head = sizes.sizes["test"] + sizes.sizes["validation"]
    distributed = split_keyed(keyed, sizes, head, probe_columns(seed))
    driven = split_keyed(keyed, sizes, head, probe_columns(seed), on_driver)
    assert driven.counts == distributed.counts and driven.head == distributed.head and len(driven.head) == head

    def labels(assigned):
        return {(row["file"], row["line"]): row["split"] for row in assigned.frame.collect()}

    assert labels(driven) == labels(distributed)
    keyed.unpersist()


def test_the_driver_s_plan_ties_break_like_spark_s(spark):
    """Each product is in both categories (weight 1 both): every key is shared, so the tie-break decides the cut."""
    rows = [(category, f"meta_{category}.jsonl", line, 5, f"Q{line}") for line in range(300)
            for category in ("Toys_and_Games", "Video_Games")]
    items = spark.createDataFrame(rows, "category string, file string, line long, price_slot int, parent_asin string")
    balance = Balance(slot_cap=301, default_weight=1.0)
    plan, kept = plan_balance_on_driver(items, balance, 3)
    assert plan == plan_balance(items, balance, 3) and plan.cuts[0][3] == "Toys_and_Games"
    assert sorted(zip(kept["category"], kept["line"])) == sorted(
        (row["category"], row["line"]) for row in apply_balance(items, plan, balance, 3).collect())
    assert set(TIE_BREAK) <= set(kept)
