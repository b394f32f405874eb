"""Columns derived per item: seeded hashes and the test prompt.

Seeded hashes are the only source of randomness, so results do not depend on partitioning.

Every draw hashes the product's identity, ``parent_asin``, not where its line
sits: the same products get the same draws whether the input is compressed,
renamed or re-ordered. ``(category, line)`` only breaks ties between records
that share a ``parent_asin`` (the same product listed twice).
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from pricecurate.rules.recipe import Recipe

_MANTISSA = (1 << 53) - 1
TIE_BREAK = ("parent_asin", "category", "line")  # after the hash, in this order


def item_hash(seed: int, purpose: str) -> Column:
    """A 64-bit hash of (seed, purpose, parent_asin): stable across runs, cores, partitions and file names."""
    return F.xxhash64(F.lit(int(seed)), F.lit(purpose), F.col("parent_asin"))


def item_uniform(seed: int, purpose: str) -> Column:
    """A uniform number in the open interval (0, 1) derived from ``item_hash``."""
    return (item_hash(seed, purpose).bitwiseAND(F.lit(_MANTISSA)).cast("double") + 0.5) / float(1 << 53)


def tie_break() -> list[Column]:
    return [F.col(name) for name in TIE_BREAK]


def cut_test_prompt(rules: Recipe, column: str = "prompt") -> Column:
    """``recipe.make_test_prompt`` as a column: the prompt up to its first price prefix, inclusive."""
    return F.concat(F.substring_index(column, rules.price_prefix, 1), F.lit(rules.price_prefix))
