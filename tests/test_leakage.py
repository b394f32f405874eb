"""The job end to end on planted near-duplicates: leakage found without `near`, gone with it, accounted for."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import manifest, split_rows

from devtools.near_quality import planted_records
from pricecurate import config as near_settings
from pricecurate.cli.commands import summary as _summary
from pricecurate.config import load_config
from pricecurate.pipeline.dedup import minhash as mh
from pricecurate.pipeline.job import run_job
from pricecurate.pipeline.leakage import find_leaks
from pricecurate.report.build import write_report
from pricecurate.report.card import render

SPLIT = ["categories=all", "split.train=330", "split.test=110", "split.validation=40", "balance.slot_cap=1000"]


@pytest.fixture(scope="module")
def planted_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("planted") / "in"
    source.mkdir()
    with open(source / "meta_Toys_and_Games.jsonl", "w", encoding="utf-8") as handle:
        for record in planted_records(bases=40, seed=3):
            handle.write(json.dumps(record) + "\n")
    return source


def _run(spark, source, output, dedup: str) -> dict:
    config = load_config("conf/course.yaml", [*SPLIT, f"dedup={dedup}"])
    run_job(spark, config, str(source), str(output))
    return manifest(str(output))


@pytest.fixture(scope="module")
def without_near(spark, planted_input, tmp_path_factory):
    output = tmp_path_factory.mktemp("leaky") / "out"
    return output, _run(spark, planted_input, output, "title,text")


@pytest.fixture(scope="module")
def with_near(spark, planted_input, tmp_path_factory):
    output = tmp_path_factory.mktemp("clean") / "out"
    return output, _run(spark, planted_input, output, "title,text,near")


def _texts(output, split: str) -> list[tuple[str, str]]:
    """(item text, title) per row of a split, from the written Parquet."""
    return [(mh.item_text(row[0]), row[4]) for row in split_rows(str(output), split)]


def _best_train_similarity(output, split: str) -> list[float]:
    """Exact word-3-gram Jaccard of each item of ``split`` with its most similar train item."""
    train = [mh.shingles(text, 3) for text, _ in _texts(output, "train")]
    return [max(mh.jaccard(mh.shingles(text, 3), other) for other in train) for text, _ in _texts(output, split)]


def test_leaking_test_items_are_counted_and_shown(without_near):
    output, info = without_near
    leakage = info["leakage"]
    assert info["near_duplicates"] is None
    assert leakage["checked"] == {"test": 110, "validation": 40}
    assert leakage["count"] == leakage["leaking"]["test"] + leakage["leaking"]["validation"] > 0
    # Bounds made without the job's code: every item with an exact twin at 0.9 is counted, none below 0.6.
    for split in ("test", "validation"):
        best = _best_train_similarity(output, split)
        assert sum(s >= 0.9 for s in best) <= leakage["leaking"][split] <= sum(s >= 0.6 for s in best), split
    examples = leakage["examples"]
    assert len(examples) == min(20, leakage["count"])
    assert [e["similarity"] for e in examples] == sorted((e["similarity"] for e in examples), reverse=True)
    assert all(e["similarity"] >= 0.8 for e in examples)
    train_titles = {title for _, title in _texts(output, "train")}
    for example in examples:
        assert example["train_title"] in train_titles
        assert example["title"] in {title for _, title in _texts(output, example["split"])}
        assert example["price"] > 0 and example["train_price"] > 0
    first = examples[0]
    summary = _summary(SimpleNamespace(manifest=info, output=str(output)))
    assert f"leakage: {leakage['count']:,} of 110 test, 40 validation items" in summary
    assert first["title"][:30] in summary
    card = render(info)
    assert "## Leakage check" in card and first["train_title"][:30] in card
    page = write_report(output).read_text(encoding="utf-8")
    assert "id='leakage-table'" in page and f"{leakage['count']:,} of 110 test, 40 validation" in page


def test_the_check_finds_exactly_the_pairs_that_share_a_bucket_and_agree_enough(without_near):
    """Every test or validation item against every train item, here in plain numpy: an item leaks when a train
    item shares one of its LSH buckets and agrees on enough signature values; the job's counts and examples'
    similarities are exactly those."""
    output, info = without_near
    params = near_settings.NearParams()
    bands, rows = params.lsh
    needed = math.ceil(params.threshold * params.num_perm - 1e-9)

    def signed(split):
        sigs = mh.signatures([text for text, _ in _texts(output, split)], params.ngram, params.num_perm, 42)
        return sigs, mh.band_keys(sigs, bands, rows)

    train_sigs, train_keys = signed("train")
    best = {}
    for split in ("test", "validation"):
        sigs, keys = signed(split)
        shares = (keys[:, None, :] == train_keys[None, :, :]).any(axis=2)
        agree = np.where(shares, (sigs[:, None, :] == train_sigs[None, :, :]).sum(axis=2), 0).max(axis=1)
        best[split] = [int(a) for a in agree if a >= needed]
    leakage = info["leakage"]
    assert leakage["leaking"] == {split: len(found) for split, found in best.items()} and leakage["count"] > 0
    found = sorted((round(a / params.num_perm, 3) for split in best for a in best[split]), reverse=True)
    assert [example["similarity"] for example in leakage["examples"]] == found[:20]


def test_near_dedup_removes_every_leak_and_accounts_for_each_drop(with_near, planted_input):
    output, info = with_near
    assert info["leakage"]["count"] == 0 and info["leakage"]["examples"] == []
    near = info["near_duplicates"]
    accounting = info["accounting"]
    assert accounting["dropped"]["near_duplicate"] == near["dropped"] == near["items_in_groups"] - near["groups"] > 0
    assert near["groups"] >= 30 and near["largest_group"] >= 5
    assert (near["threshold"], near["ngram"], near["num_perm"], near["bands"], near["rows_per_band"]) == (0.8, 3, 128, 18, 7)
    assert accounting["files"]["meta_Toys_and_Games.jsonl"]["dropped"]["near_duplicate"] == near["dropped"]
    lines = (planted_input / "meta_Toys_and_Games.jsonl").read_bytes().count(b"\n")
    assert accounting["lines"] == lines == 40 * 13
    assert max(_best_train_similarity(output, "test")) < 0.9
    assert "near-duplicates (MinHash" in render(info) and "0 have a near-duplicate in train" in render(info)
    # No bucket was too crowded to compare every pair in it, so the check is implied rather than run.
    assert near["star_buckets"] == 0 and info["leakage"]["implied_by_dedup"]
    assert "not compared: near-duplicate removal" in render(info)


def test_the_implied_check_is_what_running_it_finds(spark, with_near):
    """The check run anyway on the near-deduplicated splits finds what the run said without running it."""
    output, info = with_near
    rows = [(split, line, *row) for split in ("train", "test", "validation")
            for line, row in enumerate(split_rows(str(output), split))]
    assigned = spark.createDataFrame(
        [(split, line, text, price, category, asin, title) for split, line, text, price, category, asin, title, _ in rows],
        "split string, line long, prompt string, price double, category string, parent_asin string, title string")
    ran = find_leaks(assigned, near_settings.NearParams(), 42)
    assert not ran["implied_by_dedup"] and info["leakage"]["implied_by_dedup"]
    assert {k: v for k, v in ran.items() if k != "implied_by_dedup"} == {
        k: v for k, v in info["leakage"].items() if k != "implied_by_dedup"}


def test_near_dedup_keeps_one_item_per_planted_family(with_near, without_near):
    """Every family has near-twins above 0.9; with near on, no two kept items are that close."""
    items = [mh.shingles(text, 3) for text, _ in _texts(with_near[0], "items")]
    close = [(i, j) for i in range(len(items)) for j in range(i + 1, len(items)) if mh.jaccard(items[i], items[j]) >= 0.9]
    assert close == []
    assert len(items) < len(_texts(without_near[0], "items"))
