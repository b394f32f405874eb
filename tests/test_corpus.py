"""The proportional corpus of the scale-out projection: counts and files (no Spark)."""

from __future__ import annotations

import hashlib

import pytest

from devtools.corpus import (
    FULL_DATASET_MILLIONS,
    FULL_DATASET_RECORDS,
    ensure_scaled_corpus,
    scaled_counts,
    write_scaled_corpus,
)
from pricecurate.rules.categories import CATEGORIES
from pricecurate.sample import generate_records


def test_table_names_every_category_once():
    assert sorted(FULL_DATASET_MILLIONS) == sorted(CATEGORIES)
    assert sum(FULL_DATASET_MILLIONS.values()) == pytest.approx(48.105)
    assert FULL_DATASET_RECORDS == 48_200_000


@pytest.mark.parametrize("records", [34, 35, 100, 999, 400_000, 1_000_003])
def test_counts_sum_exactly_and_never_leave_a_category_empty(records):
    counts = scaled_counts(records)
    assert sum(counts.values()) == records
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 1


def test_counts_follow_the_table():
    counts = scaled_counts(400_000)
    # 400,000 * 13.2 / 48.105 = 109,759.9 and 400,000 * 0.001 / 48.105 = 8.3
    assert counts["Unknown"] == 109_760
    assert counts["Clothing_Shoes_and_Jewelry"] == 59_869  # 59,869.04
    assert counts["Gift_Cards"] == 8
    assert counts["Magazine_Subscriptions"] == 25  # 24.95
    for name, millions in FULL_DATASET_MILLIONS.items():
        assert abs(counts[name] - 400_000 * millions / 48.105) < 1


def test_smallest_input_is_one_record_each():
    assert set(scaled_counts(34).values()) == {1}


def test_tiny_categories_are_lifted_to_one_at_the_cost_of_the_biggest_overshoot():
    counts = scaled_counts(100)
    # Quotas: Unknown 27.44, Clothing 14.97, Books 9.15, ... the three smallest round to 0 and get 1.
    assert counts["Gift_Cards"] == counts["Subscription_Boxes"] == counts["Magazine_Subscriptions"] == 1
    assert sum(counts.values()) == 100


def test_too_few_records_is_an_error():
    with pytest.raises(ValueError, match="at least 34"):
        scaled_counts(33)


def _digests(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_written_corpus_has_the_counts_and_the_generator_records(tmp_path):
    paths = write_scaled_corpus(tmp_path / "corpus", 500, seed=3, jobs=1)
    assert [p.name for p in paths] == sorted(f"meta_{c}.jsonl" for c in CATEGORIES)
    counts = scaled_counts(500)
    for path in paths:
        category = path.name.removeprefix("meta_").removesuffix(".jsonl")
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == counts[category]
    first = next(generate_records("Unknown", 1, seed=3))
    assert first["parent_asin"] in (tmp_path / "corpus" / "meta_Unknown.jsonl").read_text(encoding="utf-8")


def test_bytes_are_the_same_with_or_without_a_process_pool(tmp_path):
    write_scaled_corpus(tmp_path / "serial", 600, seed=1, jobs=1)
    write_scaled_corpus(tmp_path / "pooled", 600, seed=1, jobs=2)
    assert _digests(tmp_path / "serial") == _digests(tmp_path / "pooled")


def test_an_existing_corpus_is_reused_and_a_different_or_unfinished_one_rewritten(tmp_path):
    dest = tmp_path / "corpus"
    ensure_scaled_corpus(dest, 300, jobs=1)
    unknown = dest / "meta_Unknown.jsonl"
    unknown.write_text("kept as it is\n")  # a reused corpus is not read again
    ensure_scaled_corpus(dest, 300, jobs=1)
    assert unknown.read_text() == "kept as it is\n"

    ensure_scaled_corpus(dest, 400, jobs=1)  # other counts: written anew
    assert sum(1 for _ in unknown.open()) == scaled_counts(400)["Unknown"]

    dest.with_name("corpus.done.json").unlink()  # as a run killed while writing leaves it
    unknown.write_text("half\n")
    ensure_scaled_corpus(dest, 400, jobs=1)
    assert sum(1 for _ in unknown.open()) == scaled_counts(400)["Unknown"]
