"""Configuration: the shipped presets, overrides, and one clear error per mistake."""

from __future__ import annotations

import re

import pytest

from pricecurate.config import ConfigError, load_config, lsh_bands
from pricecurate.rules.categories import CATEGORIES


def test_course_preset_is_the_course():
    config = load_config("conf/course.yaml")
    assert config.categories == ["Automotive", "Electronics", "Office_Products", "Tools_and_Home_Improvement",
                                 "Cell_Phones_and_Accessories", "Toys_and_Games", "Appliances", "Musical_Instruments"]
    assert (config.seed, config.dedup) == (42, [])
    assert (config.balance.slot_cap, config.balance.keep_all_from) == (1200, 240)
    assert config.balance.weight_of("Automotive") == 1 and config.balance.weight_of("Electronics") == 5
    assert (config.split.train, config.split.test, config.split.validation) == (400_000, 2_000, 0)


def test_default_preset_covers_everything_with_dedup():
    config = load_config("conf/default.yaml")
    assert config.categories == "all" and config.dedup == ["title", "text", "near"]
    assert (config.near.threshold, config.near.ngram, config.near.num_perm, config.near.lsh) == (0.8, 3, 128, (18, 7))
    assert set(config.balance.weights) <= set(CATEGORIES)
    assert config.baseline and not load_config("conf/course.yaml").baseline
    assert not load_config("conf/default.yaml", ["baseline=false"]).baseline


def test_near_settings_override_and_reach_the_manifest_view():
    config = load_config("conf/course.yaml", ["dedup=near", "near.threshold=0.9", "near.ngram=5",
                                              "near.num_perm=64", "near.bands=8"])
    assert config.dedup == ["near"] and config.near.lsh == (8, 8)
    assert config.to_dict()["near"] == {"threshold": 0.9, "ngram": 5, "num_perm": 64, "bands": 8}
    assert load_config("conf/course.yaml", ["near.threshold=0.6"]).near.lsh == lsh_bands(0.6, 128)


def test_overrides_keep_their_types():
    config = load_config("conf/course.yaml", [
        "seed=7", "dedup=title,text", "balance.slot_cap=600", "balance.keep_all_from=100",
        "balance.default_weight=3", "balance.weights.Toys_and_Games=2.5", "split.train=10",
        "split.test=3", "split.validation=2", "tokenizer=some/model", "categories=Automotive,Books",
    ])
    assert config.seed == 7 and config.dedup == ["title", "text"]
    assert (config.balance.slot_cap, config.balance.keep_all_from, config.balance.default_weight) == (600, 100, 3.0)
    assert config.balance.weights == {"Automotive": 1.0, "Toys_and_Games": 2.5}
    assert (config.split.train, config.split.test, config.split.validation) == (10, 3, 2)
    assert config.tokenizer == "some/model" and config.categories == ["Automotive", "Books"]
    assert load_config("conf/default.yaml", ["dedup=none"]).dedup == []


@pytest.mark.parametrize("override, message", [
    ("colour=red", "unknown key(s) colour"),
    ("balance.cap=3", "balance: unknown key(s) cap"),
    ("seed=-1", "seed must be a whole number >= 0"),
    ("balance.slot_cap=0", "balance.slot_cap must be a whole number >= 1"),
    ("balance.weights.Automotive=0", "balance.weights.Automotive must be a number > 0"),
    ("balance.weights.Cars=1", "unknown category 'Cars'"),
    ("dedup=asin", "dedup: unknown field(s) asin"),
    ("near.threshold=1.5", "near.threshold must be a Jaccard similarity in (0, 1]"),
    ("near.threshold=0", "near.threshold must be a Jaccard similarity in (0, 1]"),
    ("near.ngram=0", "near.ngram must be a whole number >= 1"),
    ("near.num_perm=8", "near.num_perm must be a whole number >= 16"),
    ("near.bands=200", "near.bands must be at most near.num_perm (128)"),
    ("near.shingles=3", "near: unknown key(s) shingles"),
    ("categories=Automotive,Cars", "categories: unknown name(s) Cars"),
    ("recipe=other", "recipe: unknown recipe 'other'; known: course-2024"),
    ("split.train=ten", "split.train must be a whole number"),
    ("seed", "expected key=value"),
    ("baseline=1", "baseline must be true or false, got 1"),
])
def test_mistakes_are_named(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("conf/course.yaml", [override])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_manifest_view_masks_credentials():
    config = load_config("conf/course.yaml", ["spark.hadoop.fs.s3a.secret.key=abc123",
                                              "spark.executor.memory=2g"])
    assert config.spark["spark.hadoop.fs.s3a.secret.key"] == "abc123"  # still used for the run
    shown = config.to_dict()["spark"]
    assert shown == {"spark.hadoop.fs.s3a.secret.key": "***", "spark.executor.memory": "2g"}
