"""Near-duplicate groups in Spark: chains, threshold, representative, bounded paths, quality vs exact Jaccard."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import load_golden, require_shared

from devtools.near_quality import planted_records, score
from pricecurate import config as near_settings
from pricecurate.pipeline.dedup import minhash as mh
from pricecurate.pipeline.dedup import near
from pricecurate.pipeline.dedup.mark import NEAR_DUPLICATE, mark_near_duplicates
from pricecurate.pipeline.dedup.near import NEAR_ID, group_prompts, near_groups, near_id, sign
from pricecurate.rules.lines import KEPT, build_items
from pricecurate.rules.recipe import make_prompt
from pricecurate.spark.components import bounded_join, component_labels, connected_components, heavy_keys

PARAMS = near_settings.NearParams()
VOCABULARY = [f"w{i}" for i in range(5000)]


def _text(rng: random.Random, words: int = 100) -> list[str]:
    return [rng.choice(VOCABULARY) for _ in range(words)]


def _replaced(words: list[str], positions: list[int]) -> list[str]:
    changed = list(words)
    for position in positions:
        changed[position] = f"new{position}"
    return changed


def _frame(spark, prompts: list[str], partitions: int = 2):
    rows = [("kept", None, f"A{i:05d}", "Toys_and_Games", i + 1, prompt) for i, prompt in enumerate(prompts)]
    frame = spark.createDataFrame(rows, "status string, reason string, parent_asin string, category string, "
                                        "line long, prompt string")
    return frame.repartition(partitions)


def _labels(spark, prompts, tmp_path, seed=42, partitions=2, **bounds) -> dict[int, int]:
    """Group label per grouped line (1-based, as the prompts' order)."""
    scratch = str(tmp_path / f"cc-{partitions}-{seed}-{len(bounds)}")
    labels = group_prompts(spark, prompts, PARAMS, seed, scratch, partitions, **bounds)
    return {index + 1: label + 1 for index, label in labels.items()}


def chain_family(rng: random.Random) -> dict[str, list[str]]:
    """a ~ b ~ c ~ d ~ e, each link 0.91; a ~ e 0.69; far (0.34 from a) and other (unrelated) stay alone.

    Each link replaces 3 of 200 words (9 of 198 shingles): a link's signature
    estimate is 4 standard deviations above 0.8, a ~ e's 2.7 below.
    """
    positions = list(range(8, 200, 16))  # 12 positions, far enough apart that each replacement is its own
    chain = [_text(rng, 200)]
    for link in range(4):
        chain.append(_replaced(chain[-1], positions[3 * link: 3 * link + 3]))
    far = _replaced(chain[0], list(range(2, 200, 5)))
    return {**dict(zip("abcde", chain)), "far": far, "other": _text(rng, 200)}


def test_chains_merge_and_the_threshold_is_honoured(spark, tmp_path):
    family = chain_family(random.Random(3))
    texts = {name: " ".join(words) for name, words in family.items()}
    sets = {name: mh.shingles(text, 3) for name, text in texts.items()}
    links = [mh.jaccard(sets[x], sets[y]) for x, y in ("ab", "bc", "cd", "de")]
    assert min(links) > 0.9 and mh.jaccard(sets["a"], sets["e"]) < 0.7
    assert mh.jaccard(sets["a"], sets["far"]) < 0.5
    names = list(texts)
    labels = _labels(spark, [make_prompt(texts[n], 10.0 + i) for i, n in enumerate(names)], tmp_path)
    grouped = {names[line - 1]: label for line, label in labels.items()}
    assert set(grouped) == set("abcde")  # e joins a through the chain; far and other stay alone
    assert len(set(grouped.values())) == 1


def test_the_item_with_the_smallest_seeded_id_is_kept_and_the_others_dropped(spark, tmp_path):
    family = chain_family(random.Random(5))
    prompts = [make_prompt(" ".join(words), 10.0 + i) for i, words in enumerate(family.values())]
    kept_by_seed = {}
    for seed, broadcast_drops in ((42, 0), (9, 10)):  # the drops joined by a shuffle, then broadcast
        frame = _frame(spark, prompts)
        marked, groups = mark_near_duplicates(frame, PARAMS, seed, str(tmp_path / f"mark-{seed}"), broadcast_drops)
        rows = marked.withColumn(NEAR_ID, near_id(seed)).collect()
        groups.release()
        chain = [r for r in rows if r["line"] <= 5]
        smallest = min(chain, key=lambda r: r[NEAR_ID])
        assert smallest["status"] == KEPT and smallest["reason"] is None
        assert [r["reason"] for r in chain if r is not smallest] == [NEAR_DUPLICATE] * 4
        assert all(r["status"] == KEPT for r in rows if r["line"] > 5)
        kept_by_seed[seed] = smallest["line"]
    assert len(set(kept_by_seed.values())) > 1  # the representative is a seeded draw, not the first line


def _planted_prompts(tokenizer_spec, bases: int) -> list[str]:
    return [prompt for prompt, _ in _planted(tokenizer_spec, bases)]


def _planted(tokenizer_spec, bases: int) -> list[tuple[str, str]]:
    """(prompt, family) of every kept planted record; the family is part of the ASIN (see ``planted_records``)."""
    from pricecurate.tokenizer.engine import codec_for

    codec = codec_for(tokenizer_spec.json, tokenizer_spec.sha256)
    records = planted_records(bases=bases)
    outcomes = build_items([json.dumps(r) for r in records], codec)
    assert len(outcomes) == len(records)
    return [(o.prompt, r["parent_asin"][3:7]) for r, o in zip(records, outcomes) if o.status == KEPT]


@pytest.fixture(scope="module")
def planted_prompts(tokenizer_spec):
    return _planted_prompts(tokenizer_spec, bases=30)


def _assert_quality(prompts: list[str], labels: dict[int, int]) -> dict:
    quality = score([mh.item_text(p) for p in prompts], {line - 1: label for line, label in labels.items()}, 3, 0.8)
    top = quality["bands"][0]
    assert top["pairs"] > 0 and top["grouped"] / top["pairs"] >= 0.95, quality
    assert quality["lowest_grouped"] is None or quality["lowest_grouped"] >= 0.5, quality
    return quality


def test_groups_find_the_pairs_above_0_9_and_never_a_pair_below_0_5_planted(spark, planted_prompts, tmp_path):
    quality = _assert_quality(planted_prompts, _labels(spark, planted_prompts, tmp_path))
    around = [band for band in quality["bands"] if band["low"] in (0.7, 0.8)]
    assert all(band["pairs"] > 20 for band in around)  # the corpus really has pairs around the threshold


def test_groups_find_the_pairs_above_0_9_and_never_a_pair_below_0_5_shared(spark, tmp_path):
    require_shared()
    prompts = [g["prompt"] for name in ("real", "converted") for g in load_golden(name) if g["include"]]
    _assert_quality(prompts, _labels(spark, prompts, tmp_path))


def test_groups_do_not_depend_on_partitioning_or_on_the_crowded_path(spark, tokenizer_spec, tmp_path):
    """1 vs 7 input partitions give the same groups; star pairs and broadcast keys group no pair all pairs would not."""
    prompts, family = zip(*_planted(tokenizer_spec, bases=8))
    prompts = list(prompts)
    baseline = _labels(spark, prompts, tmp_path, partitions=1)
    families_of: dict[int, set] = {}
    for line, label in baseline.items():
        families_of.setdefault(label, set()).add(family[line - 1])
    # Each planted family is found, and no group mixes two (a family may split where its links are near 0.8).
    assert all(len(found) == 1 for found in families_of.values())
    assert len(set().union(*families_of.values())) == 8
    assert _labels(spark, prompts, tmp_path, partitions=7) == baseline
    # Every bucket of 3+ items compares star pairs only (a subset of its pairs), every key of 3+ rows is
    # broadcast (exact: see the bounded join test): groups can only split, and quality holds.
    crowded = _labels(spark, prompts, tmp_path, partitions=7, heavy=2, all_pairs_up_to=2, driver_signed_bytes=0)
    assert all(baseline[a] == baseline[b] for a in crowded for b in crowded if crowded[a] == crowded[b])
    _assert_quality(prompts, crowded)
    assert _labels(spark, prompts, tmp_path, partitions=2, all_pairs_up_to=2) == crowded  # the same on the driver
    # Bucket members found by a shuffle join rather than a broadcast one: the same groups.
    assert _labels(spark, prompts, tmp_path, partitions=3, broadcast_members=0, driver_signed_bytes=0) == baseline
    # Groups found in Spark's rounds rather than on the driver: the same groups.
    assert _labels(spark, prompts, tmp_path, partitions=3, driver_edges=0, driver_signed_bytes=0) == baseline


@pytest.mark.parametrize("all_pairs_up_to", [200, 3])
def test_items_grouped_on_the_driver_give_spark_s_pairs_groups_and_rounds(spark, tokenizer_spec, tmp_path,
                                                                           all_pairs_up_to):
    """The planted families plus exact copies (buckets past ``all_pairs_up_to`` compare star pairs only): the
    driver's numpy finds the same candidate and similar pairs, star buckets, groups, labels and rounds as Spark."""
    prompts = [prompt for prompt, _ in _planted(tokenizer_spec, bases=6)]
    prompts += [prompts[0]] * 4 + [prompts[5]] * 2
    items = _frame(spark, prompts, partitions=3).withColumn(NEAR_ID, near_id(42))
    signed = sign(items, PARAMS, 42).cache()
    found = {}
    for where, bound in (("spark", 0), ("driver", near.DRIVER_SIGNED_BYTES)):
        groups = near_groups(signed, PARAMS, str(tmp_path / where), len(prompts), all_pairs_up_to=all_pairs_up_to,
                             driver_signed_bytes=bound)
        found[where] = ({r["id"]: r["label"] for r in groups.labels.collect()},
                        [getattr(groups, name) for name in ("candidate_pairs", "similar_pairs", "star_buckets",
                                                            "groups", "largest", "grouped", "rounds")])
        groups.release()
    signed.unpersist()
    assert found["driver"] == found["spark"]
    labels, (candidates, similar, star_buckets, groups, largest, *_) = found["driver"]
    assert candidates > similar > 0 and groups >= 6 and largest >= 5
    assert (star_buckets > 0) == (all_pairs_up_to == 3)


def test_components_on_the_driver_take_spark_s_rounds_and_labels(spark, tmp_path):
    """A chain (several rounds), a star, a cycle and isolated pairs with scattered 64-bit ids: the same labels and
    the same round count in memory as in Spark."""
    rng = random.Random(3)
    ids = list(dict.fromkeys(rng.getrandbits(63) - (1 << 62) for _ in range(400)))
    edges = [(ids[i], ids[i + 1]) for i in range(0, 6)]  # a chain
    edges += [(ids[100], ids[j]) for j in range(101, 106)]  # a star
    edges += [(ids[j], ids[j + 1]) for j in range(200, 204)] + [(ids[204], ids[200])]  # a cycle
    edges += [(ids[j], ids[j + 1]) for j in range(300, 306, 2)]  # pairs
    edges += [(rng.choice(ids[350:]), rng.choice(ids[350:])) for _ in range(8)]  # random, with self-loops
    edges = [(min(a, b), max(a, b)) for a, b in edges]
    nodes, labels, rounds = component_labels(*(np.array(side, np.int64) for side in zip(*edges)))
    found = connected_components(spark.createDataFrame(edges, "a long, b long"), str(tmp_path / "cc"))
    assert dict(zip(nodes.tolist(), labels.tolist())) == {r["node"]: r["label"] for r in found.labels.collect()}
    assert rounds == found.rounds > 2
    assert labels[nodes == ids[6]][0] == min(ids[:7])  # the chain's far end has its smallest node


def test_bounded_join_gives_the_plain_join_with_crowded_keys_broadcast(spark):
    big = spark.createDataFrame([(k % 3, i) for i, k in enumerate(range(60))] + [(7, 99)], "k int, v int")
    small = spark.createDataFrame([(0, "zero"), (1, "one"), (2, "two"), (5, "five")], "k int, name string")
    crowded = heavy_keys(big, ["k"], limit=15)
    assert sorted(crowded) == [(0,), (1,), (2,)]
    assert heavy_keys(big, ["k"], limit=15, rows=15) == []  # 15 rows cannot crowd a key past 15
    for how in ("inner", "left"):
        plain = sorted(map(tuple, big.join(small, ["k"], how).collect()), key=str)
        bounded = sorted(map(tuple, bounded_join(big, small, ["k"], crowded, how).collect()), key=str)
        assert bounded == plain
    plan = bounded_join(big, small, ["k"], crowded)._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" in plan


def test_signatures_in_spark_equal_the_pure_function(spark):
    prompts = [make_prompt(f"Item {i} with some words about item {i}", 5.0) for i in range(20)]
    items = _frame(spark, prompts).withColumn(NEAR_ID, near_id(42))
    got = {r["id"]: r["sig"] for r in sign(items, PARAMS, 42).collect()}
    ids = [r[NEAR_ID] for r in items.orderBy("line").select(NEAR_ID).collect()]
    expected = mh.signatures([mh.item_text(p) for p in prompts], 3, PARAMS.num_perm, 42).view("int32")
    assert [got[i] for i in ids] == expected.tolist()


def test_buckets_too_crowded_to_compare_every_pair_are_counted(spark, tmp_path):
    """Five identical items share every band's bucket: past ``all_pairs_up_to`` members those are star buckets."""
    rng = random.Random(5)
    prompts = [make_prompt(" ".join(_text(rng)), 5.0)] * 5 + [make_prompt(" ".join(_text(rng)), 5.0) for _ in range(3)]
    signed = sign(_frame(spark, prompts).withColumn(NEAR_ID, near_id(42)), PARAMS, 42).cache()
    bands, _ = PARAMS.lsh
    for items in (None, len(prompts)):  # in Spark, then on the driver
        compared = near_groups(signed, PARAMS, str(tmp_path / f"a{items}"), items)
        starred = near_groups(signed, PARAMS, str(tmp_path / f"b{items}"), items, all_pairs_up_to=4)
        assert (compared.star_buckets, starred.star_buckets) == (0, bands)
        assert compared.grouped == starred.grouped == 5  # a star still reaches every member of one bucket
        for groups in (compared, starred):
            groups.release()
    signed.unpersist()


def test_packed_signatures_equal_the_pure_function_and_group_as_arrays_do(spark, tokenizer_spec, tmp_path):
    """Signatures and band keys packed as binaries (for the driver) hold the pure functions' values, and the driver
    groups them exactly as it groups the arrays."""
    prompts = [prompt for prompt, _ in _planted(tokenizer_spec, bases=5)]
    prompts += [prompts[0]] * 3
    items = _frame(spark, prompts, partitions=3).withColumn(NEAR_ID, near_id(42))
    ids = [r[NEAR_ID] for r in items.orderBy("line").select(NEAR_ID).collect()]
    sigs = mh.signatures([mh.item_text(p) for p in prompts], 3, PARAMS.num_perm, 42)
    keys = mh.band_keys(sigs, *PARAMS.lsh)
    packed = {r["id"]: (bytes(r["sig"]), bytes(r["keys"])) for r in sign(items, PARAMS, 42, packed=True).collect()}
    assert [packed[i] for i in ids] == [(s.astype("<i4").tobytes(), k.astype("<i8").tobytes())
                                        for s, k in zip(sigs.view(np.int32), keys)]
    found = []
    for signed in (sign(items, PARAMS, 42), sign(items, PARAMS, 42, packed=True)):
        groups = near.near_groups_on_driver(signed, PARAMS)
        found.append(({r["id"]: r["label"] for r in groups.labels.collect()},
                      [getattr(groups, name) for name in ("candidate_pairs", "similar_pairs", "groups", "rounds")]))
    assert found[0] == found[1] and found[0][1][2] >= 5


def test_marks_are_the_same_signed_to_the_driver_or_grouped_in_spark(spark, tokenizer_spec, tmp_path):
    """A bound on the kept items that fits the driver signs them straight to it, packed, in one job; the marks are
    those of the path that caches the signatures and counts them in a Spark job first. Two items with one id fail
    either way."""
    prompts = [prompt for prompt, _ in _planted(tokenizer_spec, bases=6)]
    frame = _frame(spark, prompts, partitions=3)
    marks = {}
    for path, bound in (("cached", None), ("driver", len(prompts) + 10)):
        marked, groups = mark_near_duplicates(frame, PARAMS, 42, str(tmp_path / path), most_items=bound)
        marks[path] = sorted((r["line"], r["status"], r["reason"]) for r in marked.collect())
        groups.release()
    assert marks["driver"] == marks["cached"]
    assert sum(reason == NEAR_DUPLICATE for _, _, reason in marks["driver"]) > 5
    twice = frame.unionByName(frame.limit(1))  # the same parent_asin, category and line: the same id
    for bound in (None, len(prompts) + 1):
        with pytest.raises(RuntimeError, match="near-duplicate ids collide"):
            mark_near_duplicates(twice, PARAMS, 42, str(tmp_path / f"twice-{bound}"), most_items=bound)
