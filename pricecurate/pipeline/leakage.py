"""The leakage check: test and validation items with a near-duplicate in train.

It uses the signatures and band keys of near-duplicate detection (same seed,
same settings), so with ``dedup: near`` on it can only find pairs that share
nothing but buckets too crowded for near-duplicate detection to compare every
pair in them (``star_buckets``): any other pair sharing a bucket was compared,
and, if similar, grouped, so one of the two was dropped. With no such bucket
the check is implied, and not run. The probe side (test and validation) is
small and broadcast; train stays where it is.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pricecurate.config import NearParams
from pricecurate.pipeline.dedup.minhash import band_keys, item_text, signatures
from pricecurate.pipeline.dedup.near import NEAR_ID, min_agreement, near_id
from pricecurate.rules.recipe import COURSE_2024, Recipe

EXAMPLES = 20
PROBED = ("test", "validation")
def implied_by_dedup(near: dict | None) -> bool:
    """True when this run's near-duplicate removal (same settings and seed as the check) compared every pair
    of items sharing a bucket: then no test or validation item can have a near-duplicate in train."""
    return near is not None and near.get("star_buckets") == 0


def no_leaks(checked: dict[str, int], params: NearParams) -> dict:
    """The check's result when ``implied_by_dedup``: nothing leaks, and nothing was compared to say so."""
    return {"threshold": params.threshold, "checked": checked, "leaking": dict.fromkeys(PROBED, 0), "count": 0,
            "examples": [], "implied_by_dedup": True}


def probe_columns(seed: int) -> list[Column]:
    """What the check needs of each probe besides its split: ``find_leaks``' ``probes`` are (split, *these)."""
    return [near_id(seed).alias("id"), F.col("prompt"), *(F.col(name) for name in _DESCRIBED[1:])]


def find_leaks(
    assigned: DataFrame, params: NearParams, seed: int, examples: int = EXAMPLES, rules: Recipe = COURSE_2024,
    probes: list[tuple] | None = None,
) -> dict:
    """Counts per probed split and up to ``examples`` pairs, most similar first.

    The probes (test and validation, as many as their configured sizes) are signed on the driver: given as
    ``probes`` (split, *``probe_columns``), or brought there in a job of their own. Then one pass over train
    signs each train item, compares it with the probes that share one of its buckets, and keeps each probe's
    best match per task; the best of those is each probe's match.
    """
    members = assigned.filter(F.col("split").isNotNull()).withColumn(NEAR_ID, near_id(seed))
    if probes is None:
        probes = [tuple(row) for row in members.filter(F.col("split") != "train")
                  .select("split", *probe_columns(seed)).collect()]
    probes = [dict(zip(("split", "id", "prompt", *_DESCRIBED[1:]), probe, strict=True)) for probe in probes]
    best: dict[int, tuple] = {}
    if probes:
        table = members.sparkSession.sparkContext.broadcast(_ProbeTable(probes, params, seed, rules))
        try:
            train = (members.filter(F.col("split") == "train")
                     .select(F.col(NEAR_ID).alias("id"), "prompt", *_DESCRIBED[1:]))
            for row in train.mapInArrow(_matcher(table, params, seed, rules), _MATCH_SCHEMA).collect():
                match = (row["agree"], -row["train_id"], row["title"], row["price"], row["category"])
                if row["probe_id"] not in best or match > best[row["probe_id"]]:
                    best[row["probe_id"]] = match
        finally:
            table.unpersist()
    checked = {name: sum(1 for probe in probes if probe["split"] == name) for name in PROBED}
    leaking = {name: sum(1 for probe in probes if probe["split"] == name and probe["id"] in best) for name in PROBED}
    top = sorted((probe for probe in probes if probe["id"] in best),
                 key=lambda probe: (-best[probe["id"]][0], probe["split"], probe["id"]))[:examples]
    return {
        "threshold": params.threshold,
        "implied_by_dedup": False,
        "checked": checked,
        "leaking": leaking,
        "count": sum(leaking.values()),
        "examples": [
            {
                "split": probe["split"],
                "similarity": round(best[probe["id"]][0] / params.num_perm, 3),
                "title": probe["title"], "price": probe["price"], "category": probe["category"],
                "train_title": best[probe["id"]][2], "train_price": best[probe["id"]][3],
                "train_category": best[probe["id"]][4],
            }
            for probe in top
        ],
    }


_DESCRIBED = ("split", "title", "price", "category")
_MATCH_SCHEMA = "probe_id long, agree int, train_id long, title string, price double, category string"


class _ProbeTable:
    """The probes' ids and signatures, and for each band the probes in each of its buckets.

    Signed here, on the driver: they are few (the configured test and validation sizes), and a Spark job to sign
    them would start Python workers for a few thousand items.
    """

    def __init__(self, probes: list[dict], params: NearParams, seed: int, rules: Recipe):
        bands, rows = params.lsh
        texts = [item_text(probe["prompt"], rules) for probe in probes]
        sigs = signatures(texts, params.ngram, params.num_perm, seed)
        self.ids = np.array([probe["id"] for probe in probes], np.int64)
        self.sigs = sigs.view(np.int32)
        keys = band_keys(sigs, bands, rows)
        self.keys = [np.unique(keys[:, band]) for band in range(bands)]
        self.buckets: list[dict[int, list[int]]] = [{} for _ in range(bands)]
        for index, row in enumerate(keys):
            for band, key in enumerate(row.tolist()):
                self.buckets[band].setdefault(key, []).append(index)


def _matcher(table, params: NearParams, seed: int, rules: Recipe):
    """The train pass: (probe, agreement, train item) for each probe's most similar train item in the task, one row
    per probe matched (at most as many rows as probes, however much train the task reads)."""
    bands, rows = params.lsh
    needed = min_agreement(params)

    def run(batches):
        probes: _ProbeTable = table.value
        best: dict[int, tuple] = {}  # probe index -> (agreement, -train id, title, price, category)
        for batch in batches:
            texts = [item_text(prompt, rules) for prompt in batch.column("prompt").to_pylist()]
            sigs = signatures(texts, params.ngram, params.num_perm, seed).view(np.int32)
            keys = band_keys(sigs.view(np.uint32), bands, rows)
            shares = np.zeros(len(texts), bool)
            for band in range(bands):
                shares |= np.isin(keys[:, band], probes.keys[band])
            ids = batch.column("id").to_numpy()
            for item in np.flatnonzero(shares).tolist():
                candidates = sorted({index for band in range(bands)
                                     for index in probes.buckets[band].get(int(keys[item, band]), ())})
                agree = (probes.sigs[candidates] == sigs[item]).sum(axis=1)
                for index, count in zip(candidates, agree.tolist()):
                    if count >= needed and (index not in best or (count, -int(ids[item])) > best[index][:2]):
                        best[index] = (count, -int(ids[item]), *(batch.column(name)[item].as_py()
                                                                  for name in ("title", "price", "category")))
        chosen = sorted(best.items())
        yield pa.RecordBatch.from_pydict({
            "probe_id": pa.array([int(probes.ids[index]) for index, _ in chosen], pa.int64()),
            "agree": pa.array([match[0] for _, match in chosen], pa.int32()),
            "train_id": pa.array([-match[1] for _, match in chosen], pa.int64()),
            "title": pa.array([match[2] for _, match in chosen], pa.string()),
            "price": pa.array([match[3] for _, match in chosen], pa.float64()),
            "category": pa.array([match[4] for _, match in chosen], pa.string()),
        })

    return run
