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
