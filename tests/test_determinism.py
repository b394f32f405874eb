"""Same input, config and seed give the same dataset, whatever the partitioning, split size or file form."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from collections import Counter

import pytest
from helpers import manifest, session_settings, split_files, split_rows

from devtools.near_quality import write_planted
from pricecurate.config import load_config
from pricecurate.pipeline.job import run_job
from pricecurate.rules.lines import KEPT, build_items
from pricecurate.sample import write_sample
from pricecurate.tokenizer.engine import codec_for

CATEGORIES = ["Automotive", "Electronics", "Toys_and_Games"]
SPLITS = ("items", "train", "test", "validation")
FAMILIES = 4  # kept Automotive items, each relisted in Toys_and_Games three ways


def relistings(record: dict, family: int) -> list[dict]:
    """Copies of an item that dedup (title, text, near) must remove: the same title; a title that differs only
    by a trailing space (the text is the same) at another price; a title with one word more (a near-duplicate)."""
    return [
        {**record, "parent_asin": f"RELIST{family}T"},
        {**record, "parent_asin": f"RELIST{family}X", "title": record["title"] + " ",
         "price": f"{float(record['price']) + 7:.2f}"},
        {**record, "parent_asin": f"RELIST{family}N", "title": record["title"] + " Refurbished"},
    ]


def plant_relistings(source, tokenizer_spec) -> dict[str, set[str]]:
    """Relist FAMILIES kept Automotive items (titles found nowhere else) in the Toys_and_Games file; each
    family's parent_asins."""
    titles = Counter()
    for path in source.iterdir():
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as handle:
            titles.update(json.loads(line)["title"] for line in handle)
    lines = (source / "meta_Automotive.jsonl").read_text(encoding="utf-8").splitlines()
    codec = codec_for(tokenizer_spec.json, tokenizer_spec.sha256, "tiktoken")
    originals = [json.loads(line) for line, outcome in zip(lines, build_items(lines, codec))
                 if outcome.status == KEPT and titles[outcome.title] == 1][:FAMILIES]
    families = {}
    with open(source / "meta_Toys_and_Games.jsonl", "a", encoding="utf-8") as handle:
        for family, record in enumerate(originals):
            copies = relistings(record, family)
            handle.writelines(json.dumps(copy) + "\n" for copy in copies)
            families[record["parent_asin"]] = {record["parent_asin"], *(copy["parent_asin"] for copy in copies)}
    assert len(families) == FAMILIES
    return families


@pytest.fixture(scope="module")
def sample_input(tmp_path_factory, tokenizer_spec):
    source = tmp_path_factory.mktemp("determinism") / "in"
    write_sample(source, records_per_category=400, categories=CATEGORIES, gzip_categories=["Electronics"])
    write_planted(source / "meta_Gift_Cards.jsonl", bases=6)  # near-duplicate groups (default.yaml removes them)
    return source, plant_relistings(source, tokenizer_spec)


def run(spark, source, output, *overrides, settings: dict[str, str] | None = None):
    # Baselines off: their own repeatability is test_baseline.py's; here they would only add fits to every run.
    config = load_config("conf/default.yaml", ["categories=all", "split.train=200", "split.test=30",
                                                "split.validation=10", "baseline=false", *overrides])
    with session_settings(spark, settings or {}):
        result = run_job(spark, config, str(source), str(output))
    info = result.manifest
    assert info["spark"]["rule_records"] == info["accounting"]["lines"]  # dedup on: still once per line
    return {split: split_rows(str(output), split) for split in SPLITS}


CUT = "balance.slot_cap=6"  # over-full price slots are cut: the balancing draw is compared, not a keep-all


@pytest.fixture(scope="module")
def one_partition(spark, sample_input, tmp_path_factory):
    output = tmp_path_factory.mktemp("p1") / "out"
    return output, run(spark, sample_input[0], output, "partitions=1", CUT)


@pytest.fixture(scope="module")
def four_partitions(spark, sample_input, tmp_path_factory):
    output = tmp_path_factory.mktemp("p4") / "out"
    return output, run(spark, sample_input[0], output, "partitions=4", CUT)


@pytest.fixture(scope="module")
def many_read_splits(spark, sample_input, tmp_path_factory):
    output = tmp_path_factory.mktemp("split") / "out"
    return output, run(spark, sample_input[0], output, CUT,
                       settings={"spark.sql.files.maxPartitionBytes": "40000", "spark.sql.files.openCostInBytes": "1"})


def test_same_rows_for_one_and_four_partitions(one_partition, four_partitions):
    (p1, one), (p4, four) = one_partition, four_partitions
    assert one == four
    assert manifest(str(p1))["accounting"]["kept"] > manifest(str(p1))["balanced"]
    assert len(one["train"]) == 200 and len(one["test"]) == 30 and len(one["validation"]) == 10
    assert manifest(str(p1))["accounting"] == manifest(str(p4))["accounting"]
    near = manifest(str(p1))["near_duplicates"]
    assert near["groups"] >= 6 and near == manifest(str(p4))["near_duplicates"]
    for split in SPLITS:  # a small dataset: one file per category, whatever the partitioning
        folders = [os.path.dirname(path) for path in split_files(str(p4), split)]
        assert folders and len(folders) == len(set(folders)), split


def test_same_rows_for_one_and_many_read_splits(one_partition, many_read_splits):
    (p1, one), (split_output, split) = one_partition, many_read_splits
    assert manifest(str(split_output))["spark"]["read_tasks"] >= 10 > manifest(str(p1))["spark"]["read_tasks"]
    assert split == one


def test_dedup_removes_the_same_duplicates_whatever_the_partitioning(sample_input, one_partition, four_partitions,
                                                                     many_read_splits):
    families = sample_input[1]
    survivors = []
    for output, rows in (one_partition, four_partitions, many_read_splits):
        titles = [r[4] for r in rows["items"]]
        bodies = [r[0].rsplit("Price is $", 1)[0] for r in rows["items"]]
        assert len(titles) == len(set(titles)) and len(bodies) == len(set(bodies))
        dropped = manifest(str(output))["accounting"]["dropped"]
        # Each family of a relisted item: one of each kind of copy dropped, at least (the generator relists too).
        assert min(dropped.get(reason, 0) for reason in ("duplicate_title", "duplicate_text", "near_duplicate")) \
            >= FAMILIES, dropped
        asins = {r[3] for r in rows["items"]}
        kept = {original: members & asins for original, members in families.items()}
        assert all(len(members) == 1 for members in kept.values()), kept  # one item of each family stays
        survivors.append(kept)
        train_bodies = {r[0].rsplit("Price is $", 1)[0] for r in rows["train"]}
        assert not train_bodies & {r[0][: -len("Price is $")] for r in rows["test"]}
    assert survivors[0] == survivors[1] == survivors[2]  # the same one, however the input was cut up


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
