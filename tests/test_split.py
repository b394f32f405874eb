"""Train/test/validation: exact sizes, proportional scaling, one label per item, no dependence on partitioning."""

from __future__ import annotations

from collections import Counter

import pytest

from pricecurate.config import Split
from pricecurate.pipeline.split import assign_splits, plan_split


def test_plan_keeps_requested_sizes_when_items_suffice():
    plan = plan_split(1_000, Split(train=800, test=100, validation=50))
    assert plan.sizes == {"train": 800, "test": 100, "validation": 50} and not plan.scaled


def test_plan_scales_every_split_down_in_proportion():
    plan = plan_split(101, Split(train=400, test=100, validation=0))
    assert plan.scaled and sum(plan.sizes.values()) == 101
    assert plan.sizes == {"train": 80, "test": 21, "validation": 0}  # the rounding leftover goes to test first


def items(spark, partitions: int, count: int = 500):
    rows = [("Toys_and_Games" if line % 3 else "Automotive", f"meta_{line % 2}.jsonl", line, f"B{line:09d}")
            for line in range(count)]
    return spark.createDataFrame(rows, "category string, file string, line long, parent_asin string").repartition(partitions)


def labels(spark, partitions: int, split: Split, seed: int = 42, count: int = 500) -> dict[tuple, str | None]:
    plan = plan_split(count, split)
    frame = assign_splits(items(spark, partitions, count), plan, seed)
    return {(r["file"], r["line"]): r["split"] for r in frame.collect()}


@pytest.mark.parametrize("split", [Split(train=300, test=40, validation=20), Split(train=1_000, test=40, validation=0)])
def test_every_item_gets_at_most_one_split_of_the_planned_size(spark, split):
    got = labels(spark, 3, split)
    assert len(got) == 500
    sizes = Counter(got.values())
    plan = plan_split(500, split)
    for name, size in plan.sizes.items():
        assert sizes.get(name, 0) == size
    assert sizes.get(None, 0) == 500 - sum(plan.sizes.values())


def test_labels_ignore_partitioning_and_follow_the_seed(spark):
    split = Split(train=300, test=40, validation=20)
    assert labels(spark, 1, split) == labels(spark, 7, split)
    assert labels(spark, 1, split) != labels(spark, 1, split, seed=7)
