"""Seeded per-item hashes: the only source of randomness, so results do not depend on partitioning."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

_MANTISSA = (1 << 53) - 1


def item_hash(seed: int, purpose: str) -> Column:
    """A 64-bit hash of (seed, purpose, file, line): stable across runs, cores and partitions."""
    return F.xxhash64(F.lit(int(seed)), F.lit(purpose), F.col("file"), F.col("line"))


def item_uniform(seed: int, purpose: str) -> Column:
    """A uniform number in the open interval (0, 1) derived from ``item_hash``."""
    return (item_hash(seed, purpose).bitwiseAND(F.lit(_MANTISSA)).cast("double") + 0.5) / float(1 << 53)
