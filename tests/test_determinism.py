"""Same input, config and seed give the same dataset, whatever the partitioning."""

from __future__ import annotations

import os

import pytest

from helpers import manifest, split_files, split_rows
from pricecurate.config import load_config
from pricecurate.job import run_job
from pricecurate.sample import write_sample


@pytest.fixture(scope="module")
def sample_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("determinism") / "in"
    write_sample(source, records_per_category=400, categories=["Automotive", "Electronics", "Toys_and_Games"],
                 gzip_categories=["Electronics"])
    return source


def run(spark, source, output, *overrides):
    config = load_config("conf/default.yaml", ["categories=all", "split.train=200", "split.test=30",
                                                "split.validation=10", *overrides])
    run_job(spark, config, str(source), str(output))
    return {split: split_rows(str(output), split) for split in ("items", "train", "test", "validation")}


def test_same_rows_for_one_and_four_partitions(spark, sample_input, tmp_path):
    one = run(spark, sample_input, tmp_path / "p1", "partitions=1")
    four = run(spark, sample_input, tmp_path / "p4", "partitions=4")
    assert one == four
    assert len(one["train"]) == 200 and len(one["test"]) == 30 and len(one["validation"]) == 10
    assert manifest(str(tmp_path / "p1"))["accounting"] == manifest(str(tmp_path / "p4"))["accounting"]
    for split in ("items", "train", "test", "validation"):  # one file per category, whatever the partitioning
        folders = [os.path.dirname(path) for path in split_files(str(tmp_path / "p4"), split)]
        assert folders and len(folders) == len(set(folders)), split

    reseeded = run(spark, sample_input, tmp_path / "seed7", "partitions=4", "seed=7")
    assert reseeded["items"] == one["items"]  # the recipe has no randomness
    assert reseeded["train"] != one["train"]


def test_dedup_keeps_one_item_per_title_and_text(spark, sample_input, tmp_path):
    rows = run(spark, sample_input, tmp_path / "dedup", "partitions=3")
    titles = [r[4] for r in rows["items"]]
    bodies = [r[0].rsplit("Price is $", 1)[0] for r in rows["items"]]
    assert len(titles) == len(set(titles)) and len(bodies) == len(set(bodies))
    acc = manifest(str(tmp_path / "dedup"))["accounting"]
    assert acc["dropped"].get("duplicate_title", 0) > 0  # the generator relists some titles
    train_bodies = {r[0].rsplit("Price is $", 1)[0] for r in rows["train"]}
    assert not train_bodies & {r[0][: -len("Price is $")] for r in rows["test"]}
