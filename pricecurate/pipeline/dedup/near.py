"""Near-duplicate detection in Spark: signatures, LSH candidates, verification, groups.

Every step is a DataFrame transformation whose tasks stay bounded: band
buckets are counted with a two-step aggregate, crowded buckets are joined by
broadcasting their one summary row (``components.bounded_join``), buckets of
up to ``ALL_PAIRS_UP_TO`` items compare every pair, larger ones compare each
member with the bucket's smallest id. Ids are seeded hashes of the item, so the
groups, and the item kept from each, do not depend on partitioning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from pricecurate.config import NearParams
from pricecurate.pipeline.dedup import lsh
from pricecurate.pipeline.dedup.minhash import band_keys, item_text, signatures
from pricecurate.rules.recipe import COURSE_2024, Recipe
from pricecurate.spark.components import HEAVY_ROWS, bounded_join, component_labels, connected_components
from pricecurate.spark.session import CACHE

ALL_PAIRS_UP_TO = 200  # bucket members beyond which only star pairs (member, smallest id) are compared
# Members of buckets of three or more whose keys are broadcast to the band rows rather than joined by a shuffle.
BROADCAST_MEMBERS = 2_000_000
# Similar pairs (16 bytes each) whose groups are found on the driver: Spark's rounds cost a few jobs each.
DRIVER_EDGES = 2_000_000
# Ids, signatures and band keys (664 bytes an item at the default settings: about 400,000 items) brought to the
# driver in one job and grouped there (``lsh``), instead of by Spark's joins: a score of jobs with their shuffles.
DRIVER_SIGNED_BYTES = 256 * 1024 * 1024
NEAR_ID = "near_id"


def near_id(seed: int) -> Column:
    """A seeded 64-bit id per item: the order in which a group's representative is chosen."""
    return F.xxhash64(F.lit(int(seed)), F.lit("near"), F.col("parent_asin"), F.col("category"), F.col("line"))


def min_agreement(params: NearParams) -> int:
    """Equal signature values a pair needs to count as similar at the threshold."""
    return math.ceil(params.threshold * params.num_perm - 1e-9)


def agreement(left: str, right: str) -> Column:
    """How many signature positions two arrays agree on."""
    return F.aggregate(F.zip_with(left, right, lambda x, y: (x == y).cast("int")), F.lit(0), lambda acc, x: acc + x)


def _list_array(matrix: np.ndarray) -> pa.ListArray:
    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(matrix).ravel()))


def _packed_array(matrix: np.ndarray) -> pa.BinaryArray:
    """Each row of ``matrix`` as one binary value of its bytes (little-endian), with no copy per row."""
    rows = len(matrix)
    width = matrix.shape[1] * matrix.itemsize
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    little = np.ascontiguousarray(matrix, matrix.dtype.newbyteorder("<"))
    return pa.Array.from_buffers(pa.binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(little)])


def sign(
    items: DataFrame, params: NearParams, seed: int, carry: tuple[str, ...] = (), rules: Recipe = COURSE_2024,
    packed: bool = False,
) -> DataFrame:
    """(id, sig, keys, *carry) per item of ``items`` (which has ``NEAR_ID`` and ``prompt`` in ``rules``' wording).

    ``sig`` and ``keys`` are arrays (int and bigint), which Spark's joins and ``agreement`` read, or, ``packed``,
    each row's values as one binary, for the driver (``near_groups_on_driver``): Spark converts a binary with one
    copy where it converts an array value by value, to rows and back to Arrow (the bench's 245k items: ~10 s of
    task time in a fresh JVM).
    """
    bands, rows = params.lsh
    source = items.select(F.col(NEAR_ID).alias("id"), "prompt", *carry)
    carried = [field for field in source.schema.fields if field.name in carry]
    kinds = (pa.binary(), pa.binary()) if packed else (pa.list_(pa.int32()), pa.list_(pa.int64()))
    arrow_schema = pa.schema([pa.field("id", pa.int64(), False), pa.field("sig", kinds[0]), pa.field("keys", kinds[1])])
    column = _packed_array if packed else _list_array

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            texts = [item_text(prompt, rules) for prompt in batch.column("prompt").to_pylist()]
            sigs = signatures(texts, params.ngram, params.num_perm, seed)
            keys = band_keys(sigs, bands, rows)
            columns = [batch.column("id"), column(sigs.view(np.int32)), column(keys)]
            columns += [batch.column(name) for name in carry]
            yield pa.RecordBatch.from_arrays(columns, names=["id", "sig", "keys", *carry])

    schema = from_arrow_schema(arrow_schema)
    for field in carried:
        schema = schema.add(field)
    return source.mapInArrow(run, schema)


def band_rows(signed: DataFrame) -> DataFrame:
    return signed.select("id", F.posexplode("keys").alias("band", "bucket"))


@dataclass
class Candidates:
    pairs: DataFrame  # (a, b), a < b, each pair once
    crowded_anchors: list[tuple]  # smallest ids of buckets with more than HEAVY_ROWS members
    cached: list[DataFrame]  # what to unpersist once the pairs are used
    star_buckets: int = 0  # buckets of more than ``all_pairs_up_to`` members: not every pair in them was compared


def candidate_pairs(
    signed: DataFrame, items: int | None = None, all_pairs_up_to: int = ALL_PAIRS_UP_TO, heavy: int = HEAVY_ROWS,
    broadcast_members: int = BROADCAST_MEMBERS,
) -> Candidates:
    """Pairs of items that share a band bucket: every pair in small buckets, star pairs in large ones.

    A bucket of two is its pair (its smallest and largest id): most shared
    buckets are, so only the members of larger ones are looked up again.
    ``items``, when known, spares looking for crowded buckets where none can be.
    """
    rows = band_rows(signed)
    buckets = (
        rows.groupBy("band", "bucket")
        .agg(F.count(F.lit(1)).alias("size"), F.min("id").alias("anchor"), F.max("id").alias("last"))
        .filter(F.col("size") > 1)
        .persist(CACHE)  # counted, then read for pairs and members: aggregated once
    )
    twos = buckets.filter(F.col("size") == 2).select(F.col("anchor").alias("a"), F.col("last").alias("b"))
    larger = buckets.filter(F.col("size") > 2).select("band", "bucket", "size", "anchor")
    # Members is None when there is no such bucket.
    members_of_larger, star_buckets = larger.agg(F.sum("size"), F.count_if(F.col("size") > all_pairs_up_to)).first()
    crowded = []
    if items is None or items > heavy:  # their anchors are crowded keys of the pairs, whichever join finds them
        crowded = larger.filter(F.col("size") > heavy).select("band", "bucket", "anchor").collect()
    if members_of_larger is not None and members_of_larger <= broadcast_members:
        # Few members to find: the bucket keys go to the band rows' tasks, which are not shuffled.
        members = rows.join(F.broadcast(larger), ["band", "bucket"])
    else:
        members = bounded_join(rows, larger, ["band", "bucket"], [(r["band"], r["bucket"]) for r in crowded])
    members = members.persist(CACHE)
    small = members.filter(F.col("size") <= all_pairs_up_to).select("band", "bucket", "id")
    every_pair = (
        small.alias("x").join(small.alias("y"), ["band", "bucket"])
        .filter(F.col("x.id") < F.col("y.id"))
        .select(F.col("x.id").alias("a"), F.col("y.id").alias("b"))
    )
    stars = (
        members.filter((F.col("size") > all_pairs_up_to) & (F.col("id") != F.col("anchor")))
        .select(F.col("anchor").alias("a"), F.col("id").alias("b"))
    )
    anchors = sorted({(r["anchor"],) for r in crowded})
    return Candidates(twos.unionByName(every_pair).unionByName(stars).distinct(), anchors, [members, buckets],
                      star_buckets)


def score_pairs(pairs: DataFrame, signed: DataFrame, crowded_anchors: list[tuple]) -> DataFrame:
    """(a, b, agree): the signature positions each candidate pair agrees on."""
    left = signed.select(F.col("id").alias("a"), F.col("sig").alias("sig_a"))
    right = signed.select(F.col("id").alias("b"), F.col("sig").alias("sig_b"))
    joined = bounded_join(pairs, left, ["a"], crowded_anchors).join(right, "b")
    return joined.select("a", "b", agreement("sig_a", "sig_b").alias("agree"))


@dataclass
class NearGroups:
    labels: DataFrame  # (id, label) for every item in a group of two or more; label = the group's smallest id
    groups: int
    largest: int
    grouped: int  # items in groups
    candidate_pairs: int
    similar_pairs: int
    rounds: int
    cached: list  # what to unpersist once ``labels`` is used
    star_buckets: int = 0  # see ``Candidates``: with none, every pair of items sharing a bucket was compared

    @property
    def dropped(self) -> int:
        """Items in groups that are not their group's representative."""
        return self.grouped - self.groups

    def release(self) -> None:
        for frame in self.cached:
            frame.unpersist()


def near_groups(signed: DataFrame, params: NearParams, scratch: str, items: int | None = None,
                heavy: int = HEAVY_ROWS, all_pairs_up_to: int = ALL_PAIRS_UP_TO,
                broadcast_members: int = BROADCAST_MEMBERS, driver_edges: int = DRIVER_EDGES,
                driver_signed_bytes: int = DRIVER_SIGNED_BYTES) -> NearGroups:
    """Groups of near-duplicate items among ``signed`` (the output of ``sign``; ``items`` rows, if known).

    ``scratch``: a folder for the components' rounds, to delete once the labels are used. Up to
    ``driver_edges`` similar pairs are grouped on the driver instead (the same rounds, in memory); items whose ids,
    signatures and band keys take up to ``driver_signed_bytes`` are all grouped there (the same pairs and groups).
    """
    if items is not None and fits_on_driver(items, params, driver_signed_bytes):
        return near_groups_on_driver(signed, params, all_pairs_up_to)
    candidates = candidate_pairs(signed, items, all_pairs_up_to, heavy, broadcast_members)
    scored = score_pairs(candidates.pairs, signed, candidates.crowded_anchors).persist(CACHE)
    needed = min_agreement(params)
    counts = scored.agg(
        F.count(F.lit(1)).alias("candidates"), F.count(F.when(F.col("agree") >= needed, 1)).alias("similar")
    ).first()
    for frame in candidates.cached:
        frame.unpersist()
    cached = [scored]
    found = {"candidate_pairs": counts["candidates"], "similar_pairs": counts["similar"],
             "cached": cached, "star_buckets": candidates.star_buckets}
    spark = signed.sparkSession
    if counts["similar"] == 0:
        labels = spark.createDataFrame([], "id long, label long")
        return NearGroups(labels, 0, 0, 0, rounds=0, **found)
    similar = scored.filter(F.col("agree") >= needed).select("a", "b")
    if counts["similar"] <= driver_edges:
        edges = similar.toArrow()
        nodes, labels, rounds = component_labels(edges.column("a").to_numpy(), edges.column("b").to_numpy())
        sizes = np.unique(labels, return_counts=True)[1]
        frame = spark.createDataFrame(pa.table({"id": nodes, "label": labels}), "id long, label long")
        return NearGroups(frame, len(sizes), int(sizes.max()), len(nodes), rounds=rounds, **found)
    components = connected_components(
        similar, scratch, candidates.crowded_anchors, heavy, nodes=2 * counts["similar"]
    )
    labels = components.labels.select(F.col("node").alias("id"), "label")
    sizes = labels.groupBy("label").count().agg(
        F.count(F.lit(1)).alias("groups"), F.max("count").alias("largest"), F.sum("count").alias("grouped")
    ).first()
    return NearGroups(labels, sizes["groups"], sizes["largest"], sizes["grouped"], rounds=components.rounds, **found)


def fits_on_driver(items: int, params: NearParams, driver_signed_bytes: int = DRIVER_SIGNED_BYTES) -> bool:
    """Whether ``items`` items' ids, signatures and band keys take at most ``driver_signed_bytes`` on the driver."""
    return items * (8 + 4 * params.num_perm + 8 * params.lsh[0]) <= driver_signed_bytes


def near_groups_on_driver(signed: DataFrame, params: NearParams,
                          all_pairs_up_to: int = ALL_PAIRS_UP_TO) -> NearGroups:
    """``near_groups`` in numpy on the driver, from one job over ``signed`` (arrays or ``packed``): the same candidate
    pairs, agreements, groups and rounds. Two items with one id fail the run, as ``require_unique_ids`` does."""
    table = signed.select("id", "sig", "keys").toArrow()
    ids = table.column("id").to_numpy()
    distinct = len(np.unique(ids))
    if distinct != len(ids):
        raise id_collision(len(ids), distinct)
    sigs = _matrix(table.column("sig"), params.num_perm, np.int32)
    left, right, star_buckets = lsh.candidate_pairs(ids, _matrix(table.column("keys"), params.lsh[0], np.int64),
                                                    all_pairs_up_to)
    similar = lsh.agreement(sigs, left, right) >= min_agreement(params)
    found = {"candidate_pairs": len(left), "similar_pairs": int(similar.sum()), "cached": [],
             "star_buckets": star_buckets}
    spark = signed.sparkSession
    if not similar.any():
        return NearGroups(spark.createDataFrame([], "id long, label long"), 0, 0, 0, rounds=0, **found)
    nodes, labels, rounds = component_labels(ids[left[similar]], ids[right[similar]])
    sizes = np.unique(labels, return_counts=True)[1]
    frame = spark.createDataFrame(pa.table({"id": nodes, "label": labels}), "id long, label long")
    return NearGroups(frame, len(sizes), int(sizes.max()), len(nodes), rounds=rounds, **found)


def _matrix(column: pa.ChunkedArray, width: int, dtype) -> np.ndarray:
    """A column of equal-length lists, or of ``sign``'s packed rows, as a (rows, width) array."""
    values = column.combine_chunks()
    if not pa.types.is_binary(values.type):
        return values.flatten().to_numpy().reshape(-1, width)
    little = np.dtype(dtype).newbyteorder("<")
    _, offsets, data = values.buffers()
    bounds = np.frombuffer(offsets, np.int32, len(values) + 1, values.offset * 4)
    if not (np.diff(bounds) == width * little.itemsize).all():
        raise ValueError(f"packed rows of {width} values expected, found rows of {sorted(set(np.diff(bounds)))} bytes")
    return np.frombuffer(data, little, len(values) * width, int(bounds[0])).reshape(-1, width).astype(dtype, copy=False)


def require_unique_ids(signed: DataFrame) -> int:
    """The items of ``signed``, in a Spark job that also checks their ids are distinct."""
    row = signed.agg(F.count(F.lit(1)).alias("items"), F.countDistinct("id").alias("ids")).first()
    if row["items"] != row["ids"]:
        raise id_collision(row["items"], row["ids"])
    return row["items"]


def id_collision(items: int, ids: int) -> RuntimeError:
    """Two items with one 64-bit id would be taken for one; with 50M items the odds are about 1 in 15,000."""
    return RuntimeError(f"near-duplicate ids collide ({items - ids} of {items:,} items share an id); "
                        "run again with another seed")


def group_prompts(spark, prompts: list[str], params: NearParams, seed: int, scratch: str, partitions: int = 2,
                  **bounds) -> dict[int, int]:
    """Near-duplicate groups of a list of prompts: group label (smallest member index) per grouped index.

    For measuring and testing: the prompts go through the same signing and grouping as the job's items.
    """
    rows = [(f"P{i:08d}", "Unknown", i, prompt) for i, prompt in enumerate(prompts)]
    items = (
        spark.createDataFrame(rows, "parent_asin string, category string, line long, prompt string")
        .repartition(partitions)
        .withColumn(NEAR_ID, near_id(seed))
    )
    signed = sign(items, params, seed).persist(CACHE)
    try:
        groups = near_groups(signed, params, scratch, len(prompts), **bounds)
        index_of = {row[NEAR_ID]: row["line"] for row in items.select(NEAR_ID, "line").collect()}
        members: dict[int, list[int]] = {}
        for row in groups.labels.collect():
            members.setdefault(row["label"], []).append(index_of[row["id"]])
        groups.release()
    finally:
        signed.unpersist()
    return {index: min(group) for group in members.values() for index in group}
