"""Exact dedup: one item per title and per text (whatever its price); the one kept is the seeded draw."""

from __future__ import annotations

from collections import defaultdict

from pyspark.sql import functions as F

from pricecurate.pipeline.dedup.mark import mark_duplicates
from pricecurate.rules.lines import DROPPED, KEPT
from pricecurate.rules.recipe import make_prompt
from pricecurate.spark.columns import item_hash

# (group, how its members repeat each other, members): same text under different titles and prices,
# or the same title over different texts.
GROUPS = [
    ("hammer", "text", 4), ("towel", "text", 3), ("kettle", "title", 3), ("lamp", "title", 2),
]
SEEDS = (42, 9, 1, 7, 3)


def _rows():
    rows, line = [], 0
    for group, kind, members in GROUPS:
        for member in range(members):
            line += 1
            title = f"{group} listing {member}" if kind == "text" else f"{group} listing"
            body = f"{group} forged head fibreglass handle" if kind == "text" else f"{group} model {member} in blue"
            price = 10.0 + 7 * member  # a duplicate text stays one whatever its price
            # The title column as the record had it; the prompt as the rules cleaned it (for a text group,
            # titles that differ only in what the rules strip, such as a product code).
            prompt_title = f"{group} listing" if kind == "text" else title
            rows.append((KEPT, None, f"A{line:04d}", "Tools", "meta_Tools.jsonl", line, title,
                         make_prompt(f"{prompt_title}\n{body}", price), price, group))
    rows.append((DROPPED, "no_price", None, "Tools", "meta_Tools.jsonl", 0, None, None, None, None))
    return rows


def _frame(spark, partitions=3):
    schema = ("status string, reason string, parent_asin string, category string, file string, line long, "
              "title string, prompt string, price double, grp string")
    return spark.createDataFrame(_rows(), schema).repartition(partitions)


def test_duplicate_texts_and_titles_keep_the_smallest_seeded_hash_and_drop_the_rest(spark):
    kept_by_seed = defaultdict(dict)
    for seed in SEEDS:
        frame = _frame(spark).withColumn("_hash", item_hash(seed, "dedup"))
        marked = mark_duplicates(frame, ["title", "text"], seed).collect()
        assert len(marked) == len(_rows())
        assert [r["reason"] for r in marked if r["grp"] is None] == ["no_price"]  # other rows pass through
        for group, kind, members in GROUPS:
            rows = [r for r in marked if r["grp"] == group]
            smallest = min(rows, key=lambda r: (r["_hash"], r["parent_asin"], r["category"], r["line"]))
            assert [r["parent_asin"] for r in rows if r["status"] == KEPT] == [smallest["parent_asin"]], (seed, group)
            reason = "duplicate_text" if kind == "text" else "duplicate_title"
            assert sorted((r["status"], r["reason"]) for r in rows if r is not smallest) == [(DROPPED, reason)] * (members - 1)
            kept_by_seed[group][seed] = smallest["parent_asin"]
    # The representative is a draw that follows the seed, not the first line or the lowest price.
    for group, kept in kept_by_seed.items():
        assert len(set(kept.values())) > 1, (group, kept)


def test_the_representative_does_not_depend_on_partitioning(spark):
    def kept(partitions):
        marked = mark_duplicates(_frame(spark, partitions), ["title", "text"], 42)
        return sorted(r["parent_asin"] for r in marked.filter(F.col("status") == KEPT).collect())

    assert kept(1) == kept(5)


def _expected_marks(rows: list[tuple], hashes: dict[str, int]) -> dict[str, tuple]:
    """(status, reason) per parent_asin, by the rule in words: among the kept items of one title keep the smallest
    seeded hash, then among the items still kept of one text (the prompt up to its price) the same."""
    marks = {row[2]: (row[0], row[1]) for row in rows}
    for field, reason in (("title", "duplicate_title"), ("text", "duplicate_text")):
        groups = defaultdict(list)
        for row in rows:
            if marks[row[2]][0] == KEPT:
                groups[row[6] if field == "title" else row[7].split("$")[0]].append(row[2])
        for members in groups.values():
            for asin in sorted(members, key=lambda a: (hashes[a], a))[1:]:
                marks[asin] = (DROPPED, reason)
    return marks


def test_chains_of_title_and_text_duplicates_follow_the_rule_with_one_shuffle_per_field(spark):
    """Items tied by a title to some and by a text to others: the text groups hold only what the title left kept.
    The kept rows are shuffled once per field (branches of one window once shuffled them once per branch)."""
    rows = []
    for line in range(1, 121):  # titles repeat every 7 items, texts every 5, out of step: long chains of both
        title, body = f"drill {line % 7}", f"cordless drill kit number {line % 5}"
        rows.append((KEPT, None, f"B{line:04d}", "Tools", "meta_Tools.jsonl", line, title,
                     make_prompt(f"Drill\n{body}", 20.0 + line), 20.0 + line, None))
    rows.append((DROPPED, "no_price", None, "Tools", "meta_Tools.jsonl", 0, None, None, None, None))
    schema = ("status string, reason string, parent_asin string, category string, file string, line long, "
              "title string, prompt string, price double, grp string")
    frame = spark.createDataFrame(rows, schema).repartition(4)
    for seed in SEEDS:
        hashes = {r["parent_asin"]: r["h"] for r in frame.select("parent_asin", item_hash(seed, "dedup").alias("h"))
                  .collect() if r["parent_asin"]}
        marked = mark_duplicates(frame, ["title", "text"], seed)
        got = {r["parent_asin"]: (r["status"], r["reason"]) for r in marked.collect() if r["parent_asin"]}
        want = {asin: mark for asin, mark in _expected_marks(rows, hashes).items() if asin}
        assert got == want, seed
        assert {reason for _, reason in got.values()} == {None, "duplicate_title", "duplicate_text"}
    plan = marked._jdf.queryExecution().executedPlan().toString()
    final = plan.split("== Initial Plan ==")[0]  # the plan as it ran (the adaptive plan prints both)
    assert final.count("Exchange hashpartitioning") == 2, final
