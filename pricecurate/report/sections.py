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


def terms_words(terms: dict, page: str | None = None) -> str:
    """The source's terms in words, as the manifest's ``source`` section has them from the source's own card (see
    ``output.source``); given the source's ``page``, with links (the card), else without (the report, read offline)."""
    licence = terms.get("license") or []
    names = [", ".join(f'"{name}"' for name in ([licence] if isinstance(licence, str) else licence))]
    names = [part for part in (*names, terms.get("license_name") and f"({terms['license_name']})") if part]
    link = terms.get("license_link")
    derived = "this dataset is derived from the source, so the source's terms apply to it"
    if names:
        at = f", terms at {link}" if link and page else ""
        return f"the source's dataset card states its licence as {' '.join(names)}{at}; {derived}"
    if link:
        shown = link if page else "the data card, README.md, shows the link"
        return f"the source's dataset card links its terms ({shown}); {derived}"
    where = f"the source's dataset page, {page}" if page else "the source's dataset page on the Hugging Face Hub"
    return f"no licence was recorded with this run, so none is named here; {derived}: read them on {where}"
