"""The items at given ranks in seeded-hash order, found without gathering the items in one task.

A ``orderBy(...).limit(k)`` ends in one task holding up to every item's key.
Seeded hashes are uniform over 64 bits, so their top bits cut the items into
buckets of nearly equal size: one pass counts the buckets, a second brings the
few buckets that hold the wanted ranks to the driver, where they are sorted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ROWS_PER_BUCKET = 4096  # about this many items are brought to the driver for each wanted rank
MAX_BUCKET_BITS = 16  # at most 65,536 bucket counts reach the driver


def bucket_bits(total: int) -> int:
    """How many top bits of the hash make buckets of about ``ROWS_PER_BUCKET`` items."""
    if total <= ROWS_PER_BUCKET:
        return 0
    return min(MAX_BUCKET_BITS, math.ceil(math.log2(total / ROWS_PER_BUCKET)))


def _bucket(key: str, bits: int) -> Column:
    # An arithmetic shift keeps the signed order: bucket b holds keys below those of b + 1.
    return F.shiftright(F.col(key), 64 - bits) if bits else F.lit(0).cast("long")


def locate(counts: Sequence[tuple[int, int]], ranks: Sequence[int]) -> dict[int, tuple[int, int]]:
    """For each 1-based rank: the bucket that holds it and its 1-based rank inside that bucket."""
    found, before = {}, 0
    pending = sorted(set(ranks))
    for bucket, count in sorted(counts):
        while pending and pending[0] <= before + count:
            rank = pending.pop(0)
            found[rank] = (bucket, rank - before)
        before += count
    if pending:
        raise ValueError(f"rank {pending[0]:,} is past the {before:,} items")
    return found


def rows_at_ranks(frame: DataFrame, key: str, tie_break: Sequence[str], ranks: Sequence[int], total: int) -> dict[int, tuple]:
    """The ``(key, *tie_break)`` values of the items at the given 1-based ranks, ordered by key then tie-break.

    ``key`` must be a uniform 64-bit hash column of ``frame``; ``total`` the
    number of rows (it sets the bucket size only: any value gives exact ranks).
    """
    if not ranks:
        return {}
    bits = bucket_bits(total)
    bucketed = frame.select(_bucket(key, bits).alias("_bucket"), key, *tie_break)
    counts = [(r["_bucket"], r["count"]) for r in bucketed.groupBy("_bucket").count().collect()]
    where = locate(counts, ranks)
    wanted = sorted({bucket for bucket, _ in where.values()})
    rows: dict[int, list[tuple]] = {bucket: [] for bucket in wanted}
    for r in bucketed.filter(F.col("_bucket").isin(wanted)).collect():
        rows[r["_bucket"]].append(tuple(r[name] for name in (key, *tie_break)))
    for bucket_rows in rows.values():
        bucket_rows.sort()  # Python orders str by code point, as Spark orders UTF-8 bytes
    return {rank: rows[bucket][inside - 1] for rank, (bucket, inside) in where.items()}
