"""Joins that never send one key's rows to one task, and connected components built on them.

A shuffle join sends every row of a key to one task: for a key shared by a
whole near-duplicate group (its smallest id, a crowded LSH bucket) that task
grows with the group. ``bounded_join`` counts rows per key first (a two-step
aggregate, itself bounded), and joins the keys with more than ``HEAVY_ROWS``
rows by broadcasting their few small-side rows to the big side's tasks, which
stay where they are; the other keys join as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.spark.session import CACHE, driver_table

HEAVY_ROWS = 100_000  # rows of one key in one task beyond which the key is broadcast instead
MAX_ROUNDS = 100  # each round at least halves most paths; this is a safety stop, never reached in practice


def heavy_keys(frame: DataFrame, on: list[str], limit: int = HEAVY_ROWS, rows: int | None = None) -> list[tuple]:
    """The values of ``on`` that more than ``limit`` rows share (at most rows / limit of them).

    ``rows``, when known, spares the count where no key can be crowded.
    """
    if rows is not None and rows <= limit:
        return []
    return [tuple(r) for r in frame.groupBy(*on).count().filter(F.col("count") > limit).select(*on).collect()]


def bounded_join(big: DataFrame, small: DataFrame, on: list[str], heavy: list[tuple], how: str = "inner") -> DataFrame:
    """``big.join(small, on, how)`` where ``small`` has one row per key and ``heavy`` lists big's crowded keys."""
    if not heavy:
        return big.join(small, on, how)
    schema = ", ".join(f"{name} {big.schema[name].dataType.simpleString()}" for name in on)
    crowded = F.broadcast(driver_table(big.sparkSession, heavy, schema))
    crowded_small = small.join(crowded, on, "left_semi")
    joined_crowded = big.join(crowded, on, "left_semi").join(F.broadcast(crowded_small), on, how)
    joined_rest = big.join(crowded, on, "left_anti").join(small.join(crowded, on, "left_anti"), on, how)
    return joined_crowded.unionByName(joined_rest)


@dataclass
class Components:
    labels: DataFrame  # (node, label): every node of an edge, labelled with its component's smallest node
    rounds: int


def _saved(frame: DataFrame, path: str) -> DataFrame:
    """``frame`` written to Parquet and read back: each round starts from a short plan.

    Without it every round's plan holds all the rounds before it, twice over,
    and planning alone grows exponentially (the driver ran out of memory by
    round three). Files, unlike a local checkpoint, survive a lost executor.
    """
    frame.write.mode("overwrite").parquet(path)
    return frame.sparkSession.read.parquet(path)


def connected_components(
    edges: DataFrame, scratch: str, heavy_nodes: list[tuple] = (), limit: int = HEAVY_ROWS, nodes: int | None = None
) -> Components:
    """Connected components of an undirected graph given as (a, b) edges of long node ids.

    Each round every node takes the smallest label among its neighbours
    (propagation), then the label of its label (pointer jumping, which halves
    long paths). Labels only fall and stop at each component's smallest node.
    ``heavy_nodes``: nodes known to have more than ``limit`` edges (e.g. the
    anchors of crowded buckets); labels shared by more than ``limit`` nodes are
    found each round (``nodes``, an upper bound of the node count, spares that
    count when no label can be crowded). Each round's labels are saved under ``scratch``.
    """
    # Saved first, so no round's plan carries the plans that made the edges (the item rules, dedup, signing).
    edges = _saved(edges.select("a", "b"), f"{scratch}/edges")
    neighbours = edges.select(F.col("a").alias("node"), F.col("b").alias("other")).unionByName(
        edges.select(F.col("b").alias("node"), F.col("a").alias("other"))
    )
    labels = neighbours.groupBy("node").agg(F.least(F.col("node"), F.min("other")).alias("label"))
    heavy_others = list(heavy_nodes)
    for rounds in range(1, MAX_ROUNDS + 1):
        offered = bounded_join(
            neighbours, labels.withColumnRenamed("node", "other"), ["other"], heavy_others
        ).select("node", "label")
        lowered = offered.unionByName(labels).groupBy("node").agg(F.min("label").alias("label"))
        lowered = lowered.persist(CACHE)
        jumped = bounded_join(
            lowered.withColumnRenamed("label", "hop"),
            lowered.select(F.col("node").alias("hop"), F.col("label").alias("next")),
            ["hop"], heavy_keys(lowered, ["label"], limit, rows=nodes),
        ).select("node", F.col("next").alias("label"))
        # Labels only fall (next <= hop <= before): a round that lowered none is the last.
        saved = _saved(
            jumped.join(labels.withColumnRenamed("label", "before"), "node")
            .select("node", "label", (F.col("label") != F.col("before")).alias("lowered")),
            f"{scratch}/labels-{rounds}",
        )
        lowered.unpersist()
        labels = saved.select("node", "label")
        if saved.filter("lowered").isEmpty():
            return Components(labels, rounds)
    raise RuntimeError(f"connected components did not settle in {MAX_ROUNDS} rounds")


def component_labels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``connected_components`` on edges held in memory: (nodes, each node's label, rounds).

    The same rounds as the Spark version (propagation, then pointer jumping,
    until a round lowers no label), so labels and the round count agree; for a
    graph small enough to bring to the driver, where each Spark round costs a
    few jobs of fixed overhead. Node ids are ranked first: the order, and so
    each component's smallest node, is kept.
    """
    nodes, index = np.unique(np.concatenate([a, b]), return_inverse=True)
    x, y = index[: len(a)], index[len(a):]
    labels = np.arange(len(nodes))
    np.minimum.at(labels, x, y)
    np.minimum.at(labels, y, x)
    for rounds in range(1, MAX_ROUNDS + 1):
        lowered = labels.copy()
        np.minimum.at(lowered, x, labels[y])
        np.minimum.at(lowered, y, labels[x])
        jumped = lowered[lowered]
        if np.array_equal(jumped, labels):
            return nodes, nodes[labels], rounds
        labels = jumped
    raise RuntimeError(f"connected components did not settle in {MAX_ROUNDS} rounds")
