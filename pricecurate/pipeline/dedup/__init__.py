"""Duplicate removal: exact titles and texts, and near-duplicates by MinHash/LSH and connected components.

``mark`` marks every duplicate with its reason and keeps one deterministic representative; ``minhash`` computes
signatures and LSH bands (pure numpy); ``near`` groups near-duplicates on Spark, or with ``lsh`` (numpy) on the
driver when the items' signatures fit there.
"""
