"""Items at given ranks in seeded-hash order, found bucket by bucket."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from pricecurate.spark.order_stats import ROWS_PER_BUCKET, bucket_bits, locate, rows_at_ranks


def test_locate_finds_the_bucket_and_the_rank_inside_it():
    counts = [(5, 3), (-2, 4), (0, 0), (1, 2)]  # buckets in any order, one empty
    assert locate(counts, [1, 4, 5, 6, 9]) == {1: (-2, 1), 4: (-2, 4), 5: (1, 1), 6: (1, 2), 9: (5, 3)}
    with pytest.raises(ValueError, match="past the 9 items"):
        locate(counts, [10])


def test_bucket_bits_grow_with_the_items():
    assert bucket_bits(ROWS_PER_BUCKET) == 0
    assert bucket_bits(ROWS_PER_BUCKET * 1000) == 10
    assert bucket_bits(10**12) == 16  # capped: the counts that reach the driver stay few


@pytest.mark.parametrize("total_hint", [3000, 10**9], ids=["one-bucket", "many-buckets"])
def test_rows_at_ranks_match_a_full_sort(spark, total_hint):
    # 3,000 items, some sharing a product (hash ties broken by category and line).
    rows = [(f"B{i % 2900:05d}", "Books" if i % 2 else "Software", i) for i in range(3000)]
    frame = spark.createDataFrame(rows, "parent_asin string, category string, line long").repartition(4)
    keyed = frame.withColumn("key", F.xxhash64(F.lit(7), F.col("parent_asin")))
    ranks = [1, 2, 1500, 2999, 3000]
    found = rows_at_ranks(keyed, "key", ["parent_asin", "category", "line"], ranks, total_hint)
    expected = sorted(tuple(r) for r in keyed.select("key", "parent_asin", "category", "line").collect())
    assert found == {rank: expected[rank - 1] for rank in ranks}
