"""Reusing curated items: what the item rules made of the input depends only on the input, recipe and tokenizer.

Every run keeps, in its data folder, the kept and quarantined lines as the rules
left them (before deduplication), in ``curated/``, and records in its manifest
the tally of dropped lines and the key the result depends on: each input file's
fingerprint (name, size, modification time, a hash of its first and last MB),
the recipe's parameter hash, the tokenizer's sha256 and the record size limit.
A later run with the same key reads them back instead of running the rules.

Deduplication depends on those items and on the dedup settings and seed
alone, so a run also keeps which lines it marked as duplicates
(``duplicates/``, one row per dropped line) with that key: a later run that
deduplicates the same way marks the same lines without comparing anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricecurate.config import ConfigError
from pricecurate.output.layout import CURATED, DATA_KEY, ITEMS_DONE, MANIFEST, is_manifest, read_manifest
from pricecurate.output.publish import finished_items, resumable
from pricecurate.output.write import without_dictionary
from pricecurate.paths import local_path
from pricecurate.spark.fs import redact, tree_difference

EDGE_BYTES = 1 << 20  # hashed at each end of a file
# Duplicate marks sent to every task of the items rather than joined by a shuffle (about 60 bytes each in the JVM).
BROADCAST_MARKS = 1_000_000
MARKS = "file string, line long, reason string"  # a row of ``DUPLICATES``, as ``keep_duplicates`` writes it


class ReuseError(ConfigError):
    """Why a previous output's items cannot stand for this run's, in one line (a mistake in the run's settings)."""


def fingerprint(fs, file) -> dict:
    """What identifies an input file's content without reading it all."""
    return {"file": file.name, "bytes": file.size, "modified": fs.modified(file.uri),
            "head_sha256": fs.sha256(file.uri, 0, EDGE_BYTES),
            "tail_sha256": fs.sha256(file.uri, max(0, file.size - EDGE_BYTES), EDGE_BYTES)}


def curation_key(fingerprints: list[dict], rules, tokenizer_sha256: str, max_record_bytes: int,
                 max_gzip_bytes: int) -> dict:
    return {"inputs": fingerprints, "recipe_hash": rules.digest, "tokenizer_sha256": tokenizer_sha256,
            "max_record_bytes": max_record_bytes, "max_gzip_bytes": max_gzip_bytes}


def difference(previous: dict, current: dict) -> str | None:
    """What differs between two curation keys, in words, or None when the curated items can be reused."""
    before = {entry["file"]: entry for entry in previous["inputs"]}
    now = {entry["file"]: entry for entry in current["inputs"]}
    for name in sorted(before.keys() - now.keys()):
        return f"input file {name} was read then and is not now"
    for name in sorted(now.keys() - before.keys()):
        return f"input file {name} is new"
    for name in sorted(now):
        for field, label in (("bytes", "size"), ("modified", "modification time"),
                             ("head_sha256", "first MB"), ("tail_sha256", "last MB")):
            if before[name][field] != now[name][field]:
                return f"input file {name} changed ({label} {before[name][field]} -> {now[name][field]})"
    if previous["recipe_hash"] != current["recipe_hash"]:
        return f"the recipe changed (parameter hash {previous['recipe_hash']} -> {current['recipe_hash']})"
    if previous["tokenizer_sha256"] != current["tokenizer_sha256"]:
        return (f"the tokenizer changed (sha256 {previous['tokenizer_sha256'][:12]} -> "
                f"{current['tokenizer_sha256'][:12]})")
    for limit in ("max_record_bytes", "max_gzip_bytes"):
        # Keys of versions before max_gzip_bytes read .gz files whole, as the default bound (above any real file) does.
        before_limit = previous.get(limit, current.get(limit))
        if before_limit != current.get(limit):
            return f"{limit} changed ({before_limit} -> {current.get(limit)})"
    return None


def check(previous_manifest: dict | None, current: dict, where: str) -> dict:
    """The previous run's curation section when its items stand for this run's; else ``ReuseError``."""
    curation = (previous_manifest or {}).get("curation")
    if previous_manifest is None:
        raise ReuseError(f"cannot reuse items: {redact(where)} has no manifest.json (not a finished pricecurate run)")
    if curation is None:
        raise ReuseError(f"cannot reuse items: {redact(where)} was written by a version that kept no curated items")
    reason = difference(curation["key"], current)
    if reason:
        raise ReuseError(f"cannot reuse the items of {redact(where)}: {reason}")
    return curation


def verify(fs, path: str, recorded: dict[str, int] | None) -> None:
    """Fail with one line unless the folder at ``path`` holds exactly the files (names and sizes) its run
    recorded when it wrote them (versions before the record kept none: their folders are taken as they are)."""
    if recorded is None:
        return
    found = fs.tree(path)
    extra = sorted(found.keys() - recorded.keys())
    problem = tree_difference(recorded, found) or (f"{extra[0]} was not written by its run" if extra else None)
    if problem:
        raise ReuseError(f"cannot reuse {redact(path)}: {problem}; it changed since its run wrote it")


def keep(outcomes: DataFrame, path: str) -> None:
    """Write the kept and quarantined rows (dropped lines are tallies, which the manifest holds)."""
    without_dictionary(outcomes.filter(F.col("status") != "dropped").drop("lines").write,
                       "prompt", "title", "raw").parquet(path)


def read_back(spark, path: str, schema: T.StructType) -> DataFrame:
    """The rows as ``keep`` wrote them, with ``schema``'s columns in its order (each row one line).

    The schema is given, so no Spark job reads the files' footers to find it.
    """
    written = T.StructType([field for field in schema.fields if field.name != "lines"])
    return spark.read.schema(written).parquet(path).withColumn("lines", F.lit(1).cast("long")).select(*schema.names)


def dedup_key(fields: list[str], near, seed: int) -> dict:
    """What deduplicating curated items depends on besides the items: the fields, the near settings, the seed."""
    return {"fields": list(fields), "seed": seed, "near": near.settings() if "near" in fields else None}


def local_manifest(where: str) -> dict | None:
    """The manifest of the output at the local folder ``where``, read without Spark (before a session exists, or
    before the run opens the output); None for a remote folder or one without a readable manifest."""
    folder = local_path(where)
    try:
        manifest = json.loads(Path(folder, MANIFEST).read_text()) if folder else None
    except (OSError, ValueError):
        return None
    return manifest if is_manifest(manifest) else None


def same_marks(curation: dict | None, fields: list[str], near, seed: int) -> bool:
    """Whether a run's curation section (its manifest's) holds duplicate marks made with these dedup settings and
    seed: a run reusing its items applies them and compares nothing anew."""
    known = (curation or {}).get("dedup") or {}
    return bool(known) and known.get("key") == dedup_key(fields, near, seed)


def marks_apply(where: str, fields: list[str], near, seed: int) -> bool:
    """``same_marks`` for the run at the local folder ``where`` (``local_manifest``)."""
    return same_marks((local_manifest(where) or {}).get("curation"), fields, near, seed)


def keep_duplicates(marked: DataFrame, reasons: tuple[str, ...], path: str) -> None:
    """Write (file, line, reason) for every line deduplication dropped."""
    marked.filter(F.col("reason").isin(*reasons)).select("file", "line", "reason").write.parquet(path)


def mark_known_duplicates(outcomes: DataFrame, path: str, marks: int, dropped: str) -> DataFrame:
    """``outcomes`` with the lines ``keep_duplicates`` wrote at ``path`` (``marks`` of them) turned into drops
    with their reasons, as the deduplication that found them left them."""
    known = outcomes.sparkSession.read.schema(MARKS).parquet(path).withColumnRenamed("reason", "_duplicate")
    joined = outcomes.join(F.broadcast(known) if marks <= BROADCAST_MARKS else known, ["file", "line"], "left")
    found = F.col("_duplicate").isNotNull()
    return joined.select(*[
        F.when(found, F.lit(dropped)).otherwise(F.col("status")).alias("status") if name == "status"
        else F.coalesce("_duplicate", "reason").alias("reason") if name == "reason"
        else F.col(name)
        for name in outcomes.columns
    ])


@dataclass(frozen=True)
class Reused:
    """A previous run whose curated items stand for this run's."""

    where: str  # its output folder
    folder: str  # its data folder
    curation: dict  # its manifest's curation section
    items_dataset: str | None = None  # its items dataset, when written with this run's rows_per_file

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"


def reused_output(fs, where: str, key: dict, rows_per_file: int) -> Reused:
    """The previous output at ``where``, if its curated items stand for this run's; else ``ReuseError``."""
    where = fs.qualify(where).rstrip("/")
    manifest = read_manifest(fs, f"{where}/{MANIFEST}")
    curation = check(manifest, key, where)
    folder = f"{where}/{manifest[DATA_KEY]}"
    same_files = manifest["config"]["write"]["rows_per_file"] == rows_per_file and fs.exists(f"{folder}/items")
    reused = Reused(where, folder, curation, f"{folder}/items" if same_files else None)
    if not fs.exists(reused.path(CURATED)):
        raise ReuseError(f"cannot reuse items: {redact(reused.path(CURATED))} is missing")
    return reused


def resumed_items(fs, output: str, key: dict, progress) -> Reused | None:
    """The items an interrupted run on this output finished, when they stand for this run's."""
    folder = resumable(fs, output)
    if folder is None:
        return None
    curation = finished_items(fs, f"{output}/{folder}")
    reason = difference(curation["key"], key) if curation else f"its {ITEMS_DONE} cannot be read"
    if reason:
        progress.say(f"not resuming from the items in {folder}: {reason}")
        return None
    progress.say(f"resuming: the items in {folder}, which an interrupted run finished, stand for this run's")
    return Reused(f"{output}/{folder}", f"{output}/{folder}", curation)


def same_items(reused: Reused | None, curated) -> str | None:
    """A reused run's items dataset when it is the one this run would write: same curated items, deduplicated
    with the same settings and seed (or neither deduplicated), in files of as many rows."""
    if reused is None or reused.items_dataset is None:
        return None
    theirs, ours = reused.curation.get("dedup", {}).get("key"), curated.curation["dedup"]["key"]
    # Without deduplication the seed picks nothing: every kept item is in the items dataset, whatever the seed.
    undeduplicated = theirs is not None and not theirs.get("fields") and not ours.get("fields")
    return reused.items_dataset if theirs == ours or undeduplicated else None
