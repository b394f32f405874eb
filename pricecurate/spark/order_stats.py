"""The items at given ranks in seeded-hash order, found without gathering the items in one task.

A ``orderBy(...).limit(k)`` ends in one task holding up to every item's key.
Seeded hashes are uniform over 64 bits, so their top bits cut the items into
buckets of nearly equal size: one pass counts the buckets, a second brings the
few buckets that hold the wanted ranks to the driver, where they are sorted.
The same two passes count the items between the ranks by group and bring the
first items in order (the few of a small split) to the driver.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ROWS_PER_BUCKET = 4096  # about this many items are brought to the driver for each wanted rank
MAX_BUCKET_BITS = 16  # at most 65,536 bucket counts (per group counted) reach the driver


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


def rows_at_ranks(frame: DataFrame, key: str, tie_break: Sequence[str], ranks: Sequence[int],
                  total: int) -> dict[int, tuple]:
    """The ``(key, *tie_break)`` values of the items at the given 1-based ranks, ordered by key then tie-break.

    ``key`` must be a uniform 64-bit hash column of ``frame``; ``total`` the
    number of rows (it sets the bucket size only: any value gives exact ranks).
    """
    if not ranks:
        return {}
    return ranked(frame, key, tie_break, ranks, total).cuts


@dataclass(frozen=True)
class Ranked:
    cuts: dict[int, tuple]  # the ``(key, *tie_break)`` values at each wanted rank
    stretches: list[Counter]  # per stretch of the order the ranks cut: its rows per group
    head: list[tuple]  # the carried values of the first rows, in order


def ranked(frame: DataFrame, key: str, tie_break: Sequence[str], ranks: Sequence[int], total: int,
           groups: Sequence[str] = (), head: int = 0, carry: Sequence[Column] = ()) -> Ranked:
    """``rows_at_ranks``; how many rows of each group (values of the ``groups`` columns) fall in each stretch of
    the order the ranks cut (the k-th holds the rows past the k ranks before it, up to the next); and the
    values of ``carry`` for the first ``head`` rows.

    Two jobs (one when no rank and no head are wanted): the bucket counts, per group, and the rows of the
    buckets that hold a wanted rank or the head, which also place those buckets' rows exactly.
    """
    bits = bucket_bits(total)
    carried = [column.alias(f"_carry{index}") for index, column in enumerate(carry)]  # never shadows a group
    bucketed = frame.select(_bucket(key, bits).alias("_bucket"), key, *tie_break, *groups, *carried)
    by_group = [(r["_bucket"], tuple(r[name] for name in groups), r["count"])
                for r in bucketed.groupBy("_bucket", *groups).count().collect()]
    sizes: Counter = Counter()
    for bucket, _, count in by_group:
        sizes[bucket] += count
    wanted = sorted(set(ranks))
    where = locate(list(sizes.items()), [*wanted, *([head] if head else [])])
    order = 1 + len(tie_break)  # a row's (key, *tie_break), then its groups, then what it carries
    rows = _bucket_rows(bucketed, sorted({bucket for bucket, _ in where.values()}),
                        where[head][0] if head else None, order)
    cuts = {rank: rows[bucket][inside - 1][:order] for rank, (bucket, inside) in where.items() if rank in wanted}
    first = [row[order + len(groups):] for bucket in sorted(rows) for row in rows[bucket]][:head]
    return Ranked(cuts, _stretches(by_group, rows, _rows_before(sizes), wanted, order, len(groups)), first)


def _stretches(by_group: list[tuple], rows: dict[int, list[tuple]], before: dict[int, int], ranks: list[int],
               order: int, groups: int) -> list[Counter]:
    """Rows per group in each stretch the (sorted) ``ranks`` cut: a bucket whose rows were not brought to the
    driver holds no rank, so it lies in one stretch whole; the rows of the others are placed one by one."""
    stretches = [Counter() for _ in range(len(ranks) + 1)]
    for bucket, group, count in by_group:
        if bucket not in rows:
            stretches[bisect.bisect_left(ranks, before[bucket] + 1)][group] += count
    for bucket, bucket_rows in rows.items():
        for inside, row in enumerate(bucket_rows, start=1):
            stretches[bisect.bisect_left(ranks, before[bucket] + inside)][row[order: order + groups]] += 1
    return stretches


def _bucket_rows(bucketed: DataFrame, wanted: list[int], through: int | None, order: int) -> dict[int, list[tuple]]:
    """The rows of the ``wanted`` buckets and of every bucket up to ``through``, each bucket's in order (by their
    first ``order`` values)."""
    if not wanted:
        return {}
    chosen = F.col("_bucket").isin(wanted)
    if through is not None:
        chosen |= F.col("_bucket") <= through
    rows: dict[int, list[tuple]] = {}
    for r in bucketed.filter(chosen).collect():
        rows.setdefault(r["_bucket"], []).append(tuple(r)[1:])
    for bucket_rows in rows.values():
        bucket_rows.sort(key=lambda row: row[:order])  # Python orders str by code point, as Spark orders UTF-8 bytes
    return rows


def _rows_before(sizes: Counter) -> dict[int, int]:
    """For each bucket, the rows in the buckets before it."""
    before, seen = {}, 0
    for bucket in sorted(sizes):
        before[bucket], seen = seen, seen + sizes[bucket]
    return before
