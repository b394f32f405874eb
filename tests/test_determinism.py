"""Same input, config and seed give the same dataset, whatever the partitioning, split size or file form."""

from __future__ import annotations

import gzip
import os
import random
import shutil
from contextlib import contextmanager

import pytest

from helpers import manifest, split_files, split_rows
from pricecurate.config import load_config
from pricecurate.job import run_job
from pricecurate.near_quality import write_planted
from pricecurate.sample import write_sample

CATEGORIES = ["Automotive", "Electronics", "Toys_and_Games"]
SPLITS = ("items", "train", "test", "validation")


@pytest.fixture(scope="module")
def sample_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("determinism") / "in"
    write_sample(source, records_per_category=400, categories=CATEGORIES, gzip_categories=["Electronics"])
    write_planted(source / "meta_Gift_Cards.jsonl", bases=6)  # near-duplicate groups (default.yaml removes them)
    return source


@contextmanager
def spark_settings(spark, settings: dict[str, str]):
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in settings:
            spark.conf.unset(key)


def run(spark, source, output, *overrides, settings: dict[str, str] | None = None):
    # Baselines off: their own repeatability is test_baseline.py's; here they would only add fits to every run.
    config = load_config("conf/default.yaml", ["categories=all", "split.train=200", "split.test=30",
                                                "split.validation=10", "baseline=false", *overrides])
    with spark_settings(spark, settings or {}):
        result = run_job(spark, config, str(source), str(output))
    info = result.manifest
    assert info["spark"]["rule_records"] == info["accounting"]["lines"]  # dedup on: still once per line
    return {split: split_rows(str(output), split) for split in SPLITS}


CUT = "balance.slot_cap=6"  # over-full price slots are cut: the balancing draw is compared, not a keep-all


@pytest.fixture(scope="module")
def one_partition(spark, sample_input, tmp_path_factory):
    output = tmp_path_factory.mktemp("p1") / "out"
    return output, run(spark, sample_input, output, "partitions=1", CUT)


def test_same_rows_for_one_and_four_partitions(spark, sample_input, one_partition, tmp_path):
    p1, one = one_partition
    four = run(spark, sample_input, tmp_path / "p4", "partitions=4", CUT)
    assert one == four
    assert manifest(str(p1))["accounting"]["kept"] > manifest(str(p1))["balanced"]
    assert len(one["train"]) == 200 and len(one["test"]) == 30 and len(one["validation"]) == 10
    assert manifest(str(p1))["accounting"] == manifest(str(tmp_path / "p4"))["accounting"]
    near = manifest(str(p1))["near_duplicates"]
    assert near["groups"] >= 6 and near == manifest(str(tmp_path / "p4"))["near_duplicates"]
    for split in SPLITS:  # a small dataset: one file per category, whatever the partitioning
        folders = [os.path.dirname(path) for path in split_files(str(tmp_path / "p4"), split)]
        assert folders and len(folders) == len(set(folders)), split


def test_same_rows_for_one_and_many_read_splits(spark, sample_input, one_partition, tmp_path):
    p1, one = one_partition
    split = run(spark, sample_input, tmp_path / "split", CUT,
                settings={"spark.sql.files.maxPartitionBytes": "40000", "spark.sql.files.openCostInBytes": "1"})
    assert manifest(str(tmp_path / "split"))["spark"]["read_tasks"] >= 10 > manifest(str(p1))["spark"]["read_tasks"]
    assert split == one


def test_dedup_keeps_one_item_per_title_and_text(one_partition):
    p1, rows = one_partition
    titles = [r[4] for r in rows["items"]]
    bodies = [r[0].rsplit("Price is $", 1)[0] for r in rows["items"]]
    assert len(titles) == len(set(titles)) and len(bodies) == len(set(bodies))
    acc = manifest(str(p1))["accounting"]
    assert acc["dropped"].get("duplicate_title", 0) > 0  # the generator relists some titles
    train_bodies = {r[0].rsplit("Price is $", 1)[0] for r in rows["train"]}
    assert not train_bodies & {r[0][: -len("Price is $")] for r in rows["test"]}


# Draws hash the product, not where its line sits: the same products get the same
# draws and splits whether the input is compressed, renamed or re-ordered.


# Input form, not dedup, is what these compare; a cut in the balancing makes them draw.
PLAIN = ("balance.slot_cap=3", "dedup=title,text")


@pytest.fixture(scope="module")
def plain_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("plain") / "in"
    write_sample(source, records_per_category=400, categories=CATEGORIES)
    return source


@pytest.fixture(scope="module")
def plain_rows(spark, plain_input, tmp_path_factory):
    return run(spark, plain_input, tmp_path_factory.mktemp("plain-out") / "out", *PLAIN)


def test_compressed_input_gives_the_same_splits(spark, plain_input, plain_rows, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for path in plain_input.iterdir():
        with open(path, "rb") as raw, gzip.open(source / (path.name + ".gz"), "wb") as packed:
            shutil.copyfileobj(raw, packed)
    assert run(spark, source, tmp_path / "out", *PLAIN) == plain_rows


def test_reordered_input_gives_the_same_splits(spark, plain_input, plain_rows, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for index, path in enumerate(sorted(plain_input.iterdir())):
        lines = path.read_bytes().splitlines(keepends=True)
        random.Random(index).shuffle(lines)
        (source / path.name).write_bytes(b"".join(lines))
    assert run(spark, source, tmp_path / "out", *PLAIN) == plain_rows


def test_renamed_input_gives_the_same_products_in_each_split(spark, plain_input, plain_rows, tmp_path):
    """Toys_and_Games' file renamed to another category of the same weight: same products, same splits."""
    source = tmp_path / "in"
    shutil.copytree(plain_input, source)
    os.rename(source / "meta_Toys_and_Games.jsonl", source / "meta_Video_Games.jsonl")
    renamed = run(spark, source, tmp_path / "out", *PLAIN)
    products = {split: sorted(r[3] for r in rows) for split, rows in renamed.items()}
    assert products == {split: sorted(r[3] for r in rows) for split, rows in plain_rows.items()}
    assert {r[2] for r in renamed["train"]} == {"Automotive", "Electronics", "Video_Games"}
