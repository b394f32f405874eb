"""The corpus recombined from the shared real records (devtools.real_corpus): files, shares, duplicates (no Spark)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import SHARED, require_shared

from devtools.corpus import FULL_DATASET_MILLIONS, scaled_counts
from devtools.real_corpus import ensure_real_corpus, marker_path, write_real_corpus
from pricecurate.rules.categories import CATEGORIES

RECORDS = 6_000
KEYS_IN_ORDER = ["main_category", "title", "average_rating", "rating_number", "features", "description", "price",
                 "images", "videos", "store", "categories", "details", "parent_asin", "bought_together"]


def read_corpus(folder) -> dict[str, list[dict]]:
    return {path.stem.removeprefix("meta_"): [json.loads(line) for line in path.read_text("utf-8").splitlines()]
            for path in sorted(folder.glob("meta_*.jsonl"))}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    require_shared()
    folder = tmp_path_factory.mktemp("real") / "corpus"
    write_real_corpus(folder, RECORDS, seed=3, jobs=1, shared=SHARED)
    return folder


@pytest.fixture(scope="module")
def records(corpus) -> list[dict]:
    return [record for lines in read_corpus(corpus).values() for record in lines]


def test_same_seed_same_bytes_other_seed_other_bytes(corpus, tmp_path):
    write_real_corpus(tmp_path / "again", RECORDS, seed=3, jobs=1, shared=SHARED)
    write_real_corpus(tmp_path / "other", RECORDS, seed=4, jobs=1, shared=SHARED)
    first = {path.name: path.read_bytes() for path in corpus.glob("*.jsonl")}
    assert first == {path.name: path.read_bytes() for path in (tmp_path / "again").glob("*.jsonl")}
    assert first != {path.name: path.read_bytes() for path in (tmp_path / "other").glob("*.jsonl")}


def test_one_file_per_category_in_the_full_datasets_proportions(corpus):
    counts = {category: len(lines) for category, lines in read_corpus(corpus).items()}
    assert counts == scaled_counts(RECORDS)
    assert sorted(counts) == sorted(CATEGORIES)
    total = sum(FULL_DATASET_MILLIONS.values())
    for category in ("Unknown", "Clothing_Shoes_and_Jewelry", "Books"):
        assert counts[category] / RECORDS == pytest.approx(FULL_DATASET_MILLIONS[category] / total, abs=0.002)


def test_lines_have_the_2023_keys_unique_asins_and_a_real_lines_weight(corpus, records):
    assert all(list(record) == KEYS_IN_ORDER for record in records)
    assert len({record["parent_asin"] for record in records}) == RECORDS
    size = sum(path.stat().st_size for path in corpus.glob("*.jsonl"))
    assert 700 < size / RECORDS < 2_500


def test_half_the_prices_are_missing_the_rest_are_numbers(records):
    prices = [record["price"] for record in records]
    assert sum(price is None for price in prices) / RECORDS == pytest.approx(0.5, abs=0.03)
    assert all(isinstance(price, float | int) for price in prices if price is not None)


def test_titles_are_recombined_so_they_rarely_repeat(records):
    repeated = sum(count - 1 for count in Counter(record["title"] for record in records).values())
    assert repeated / RECORDS < 0.01


def test_about_three_percent_are_near_twins_a_word_swap_apart(records):
    """A near-twin has its original's words in another order: same multiset of title and text words."""

    def words(record: dict) -> tuple:
        texts = [record["title"], *record["description"], *record["features"]]
        return tuple(sorted(" ".join(texts).split()))

    by_words = Counter(words(record) for record in records if record["title"])
    twins = sum(count - 1 for count in by_words.values())
    assert 0.015 < twins / RECORDS < 0.045


def test_a_complete_corpus_is_reused_and_a_half_written_one_is_not(tmp_path):
    require_shared()
    folder = ensure_real_corpus(tmp_path / "corpus", 100, jobs=1, shared=SHARED)
    planted = folder / "meta_Unknown.jsonl"
    planted.write_text("kept\n")
    ensure_real_corpus(folder, 100, jobs=1, shared=SHARED)
    assert planted.read_text() == "kept\n"
    marker_path(folder).unlink()
    ensure_real_corpus(folder, 100, jobs=1, shared=SHARED)
    assert planted.read_text() != "kept\n"
    assert json.loads(marker_path(folder).read_text())["records"] == 100
