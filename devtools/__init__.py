"""Tooling for developing pricecurate, used by ``scripts/`` and the tests, not shipped in the package:
``corpus`` (scaled corpora from real records), ``eventlog`` (Spark event logs replayed on P cores),
``near_quality`` (planted near-duplicates and how well they are found)."""
