"""Wording that the data card, the report and the run's summary share, so they never say one thing two ways."""

from __future__ import annotations

EXAMPLE_COLUMNS = ("similarity", "split", "title", "price", "train title", "train price")


def checked_items(leakage: dict) -> str:
    """The probed splits' sizes in words, e.g. "110 test, 40 validation"."""
    return ", ".join(f"{count:,} {name}" for name, count in leakage["checked"].items() if count)


def example_cells(pair: dict) -> tuple[str, ...]:
    """One example pair as the text of ``EXAMPLE_COLUMNS`` (the card and the report escape it their way)."""
    return (f"{pair['similarity']:.2f}", pair["split"], pair["title"], f"{pair['price']:,.2f}",
            pair["train_title"], f"{pair['train_price']:,.2f}")


def how_known(leakage: dict) -> str:
    """How the count was found, in words, for the summary, card and report."""
    if leakage.get("implied_by_dedup"):
        return ("not compared: near-duplicate removal, with the same settings and seed, compared every pair of "
                "items sharing a bucket, so none can be left")
    return "estimated from MinHash signatures"
