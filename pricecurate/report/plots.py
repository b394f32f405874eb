"""Draw the report's matplotlib figures and save them as PNG."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from pricecurate.report.data import SPLITS, Rows, finite

# Figures are drawn on Figure objects directly (never pyplot): no backend or global matplotlib state changes
# for other code in the same process.

SCATTER_POINTS = 20_000  # more points only blur into one blob and slow the plot down
SCATTER_COLOURED_CATEGORIES = 9  # tab10 has ten colours; the tenth is kept for "other categories"
DPI = 110
NO_ITEMS = "no items"

KEPT_COLOUR = "#4c72b0"
BALANCED_COLOUR = "#dd8452"
SPLIT_COLOURS = {"train": "#2a9d8f", "validation": "#e9c46a", "test": "#264653"}
# Distinct warm hues so neighbouring drop reasons in a stacked bar can be told apart.
DROP_COLOURS = ("#f4a261", "#d62728", "#8c564b", "#e377c2", "#ff7f0e", "#9467bd", "#bcbd22", "#7b2d26")

# (name, title, caption) of each figure, in page order; the name is also the PNG's file name.
PLOTS = (
    ("token_counts", "Prompt length", "Token counts of the prompts of every kept item (items/), before balancing."),
    ("prices", "Prices before and after balancing",
     "Top: every kept item (items/), at its price. Bottom: every item balancing kept, in a split or not, at its $1 "
     "price slot (the rounded price), as manifest.json's balanced_by_price_slot counts them (no file holds the "
     "balanced set). A manifest from before that count shows the rows of train + validation + test instead."),
    ("categories", "Items per category",
     "Kept items and items after balancing per category, from manifest.json; categories with no kept items are "
     "left out here but listed in the funnel table."),
    ("funnel", "Records per category: read → dropped → kept → splits",
     "Every record read ends in exactly one segment; the label after each bar is the number of records read."),
    ("price_vs_tokens", "Price against prompt length",
     f"Kept items (items/); above {SCATTER_POINTS:,} items an evenly spaced sample is drawn, coloured by the "
     f"{SCATTER_COLOURED_CATEGORIES} largest categories; integer token counts are jittered by up to ±0.3 "
     "so that points at the same length do not hide each other."),
)


def literal(text: str) -> str:
    """``text`` for a matplotlib title or label, its dollar signs escaped: matplotlib sets whatever stands between
    two "$" as math ("$1 price slot: 35 items, mean $" came out as "1priceslot:35items,mean", in italics)."""
    return text.replace("$", r"\$")


def shown_text(fig: Figure) -> str:
    """The figure's axes titles as they read on the image (escapes undone): the image's alt text."""
    titles = [ax.get_title().replace(r"\$", "$") for ax in fig.axes]
    return " / ".join(title for title in titles if title)


def _say_no_items(ax, what: str = NO_ITEMS) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", fontsize=16, color="grey", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def token_histogram(items: Rows) -> Figure:
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.add_subplot()
    tokens = finite(items.token_count)
    if not len(tokens):
        ax.set_title("Prompt token counts of the kept items")
        _say_no_items(ax)
        return fig
    low, high = int(tokens.min()), int(tokens.max())
    # One bar per token count when the range is narrow (bars centred on the integers).
    bins = np.arange(low - 0.5, high + 1.5) if high - low < 60 else 60
    ax.hist(tokens, bins=bins, color=KEPT_COLOUR, edgecolor="white", linewidth=0.4)
    ax.axvline(tokens.mean(), color="black", linestyle="--", linewidth=1, label=f"mean {tokens.mean():.1f}")
    ax.set_title(f"Prompt token counts of {len(tokens):,} kept items: average {tokens.mean():.1f}, maximum {high:,}")
    ax.set_xlabel("tokens per prompt")
    ax.set_ylabel("items")
    ax.legend(loc="upper left")
    return fig


def price_histograms(items: Rows, after: Rows) -> Figure:
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    before_prices, after_prices = finite(items.price), finite(after.price)
    both = np.concatenate([before_prices, after_prices])
    # Prices are heavy-tailed: on a linear axis the cheap majority squeezes into a few bars.
    logarithmic = len(both) and both.min() > 0 and both.max() / both.min() > 20
    if logarithmic:
        bins = np.geomspace(both.min(), both.max(), 61)
    else:
        bins = np.linspace(0, both.max(), 61) if len(both) and both.max() > 0 else 10
    panels = (
        (top, before_prices, "Before balancing: every kept item (items/)", KEPT_COLOUR),
        (bottom, after_prices, f"After balancing: {after.what}" if after.what else "After balancing", BALANCED_COLOUR),
    )
    for ax, prices, title, colour in panels:
        if not len(prices):
            ax.set_title(literal(title))
            _say_no_items(ax)
            continue
        ax.hist(prices, bins=bins, color=colour, edgecolor="white", linewidth=0.4)
        ax.set_title(literal(f"{title}: {len(prices):,} items, mean ${prices.mean():,.2f}"))
        ax.set_ylabel("items")
    if logarithmic:
        bottom.set_xscale("log")
        dollars = FuncFormatter(lambda value, _: literal(f"${value:,.0f}" if value >= 1 else f"${value:g}"))
        bottom.xaxis.set_major_formatter(dollars)
    bottom.set_xlabel(literal("price (log scale)" if logarithmic else "price ($)"))
    return fig


def category_bars(categories: dict[str, dict]) -> Figure:
    # Categories with nothing kept would only add rows of zeros; the funnel table still lists them.
    shown = sorted((c for c, v in categories.items() if v["kept"] or v["balanced"]),
                   key=lambda c: categories[c]["kept"])
    fig = Figure(figsize=(10, 1.6 + 0.55 * max(len(shown), 1)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Items per category before and after balancing")
    if not shown:
        _say_no_items(ax)
        return fig
    positions = np.arange(len(shown))
    height = 0.4
    for offset, key, label, colour in ((height / 2, "kept", "kept (before balancing)", KEPT_COLOUR),
                                       (-height / 2, "balanced", "after balancing", BALANCED_COLOUR)):
        values = [categories[c][key] for c in shown]
        bars = ax.barh(positions + offset, values, height=height, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=9)
    ax.set_yticks(positions, shown)
    ax.set_xlabel("items")
    ax.set_xlim(0, max(categories[c]["kept"] for c in shown) * 1.15 or 1)  # room for the value labels
    ax.legend(loc="lower right")
    return fig


def _funnel_segments(categories: dict[str, dict]) -> list[tuple[str, str, list[int]]]:
    """(label, colour, count per category) for each way a line can end: the pieces add up to ``lines``."""
    names = list(categories)
    reasons = sorted({reason for v in categories.values() for reason in v["dropped"]})
    segments = [(f"dropped: {reason}", DROP_COLOURS[i % len(DROP_COLOURS)],
                 [categories[c]["dropped"].get(reason, 0) for c in names])
                for i, reason in enumerate(reasons)]
    segments.append(("quarantined", "#7f7f7f", [categories[c]["quarantined"] for c in names]))
    segments.append(("kept, not chosen by balancing", "#a6bddb",
                     [categories[c]["kept"] - categories[c]["balanced"] for c in names]))
    segments.append(("balanced, in no split", "#fdd49e",
                     [categories[c]["balanced"] - sum(categories[c][s] for s in SPLITS) for c in names]))
    segments.extend((split, SPLIT_COLOURS[split], [categories[c][split] for c in names]) for split in SPLITS)
    return [segment for segment in segments if any(segment[2])]


def funnel_bars(categories: dict[str, dict]) -> Figure:
    names = sorted(categories, key=lambda c: categories[c]["lines"])  # biggest at the top
    ordered = {c: categories[c] for c in names}
    segments = _funnel_segments(ordered)
    # 10 inches at DPI fits the page's width, so the browser shows the PNG unscaled and the labels stay legible.
    fig = Figure(figsize=(10, 2.4 + 0.34 * max(len(names), 1)), layout="constrained")
    counts_ax, share_ax = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1])
    counts_ax.set_title("Where each category's records went (counts)")
    share_ax.set_title("… as a share of the records read")
    if not names or not segments:
        _say_no_items(counts_ax, "no records")
        _say_no_items(share_ax, "no records")
        return fig
    positions = np.arange(len(names))
    lines = np.array([ordered[c]["lines"] for c in names], dtype=float)
    left_counts = np.zeros(len(names))
    left_shares = np.zeros(len(names))
    for label, colour, values in segments:
        values = np.array(values, dtype=float)
        shares = np.divide(values, lines, out=np.zeros_like(values), where=lines > 0) * 100
        counts_ax.barh(positions, values, left=left_counts, color=colour, label=label, height=0.75)
        share_ax.barh(positions, shares, left=left_shares, color=colour, height=0.75)
        left_counts += values
        left_shares += shares
    # Total records read at the end of each bar: small categories are invisible on the count axis.
    for y, total in zip(positions, lines):
        counts_ax.text(total, y, f" {int(total):,}", va="center", fontsize=8)
    counts_ax.set_xlim(0, lines.max() * 1.18 or 1)
    counts_ax.set_yticks(positions, names, fontsize=9)
    counts_ax.set_ylim(-0.6, len(names) - 0.4)  # no empty band above and below the bars
    counts_ax.set_xlabel("records read")
    share_ax.set_xlim(0, 100)
    share_ax.set_xlabel("% of records read")
    fig.legend(loc="outside lower center", ncol=min(len(segments), 4), frameon=False)
    return fig


def price_vs_tokens(items: Rows) -> Figure:
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.add_subplot()
    usable = np.isfinite(items.price) & np.isfinite(items.token_count)
    if not usable.any():
        ax.set_title("Price against prompt length")
        _say_no_items(ax)
        return fig
    price, tokens, category = items.price[usable], items.token_count[usable], items.category[usable]
    if len(price) > SCATTER_POINTS:
        # Evenly spaced rows: deterministic, and keeps every category in proportion.
        pick = np.linspace(0, len(price) - 1, SCATTER_POINTS).astype(int)
        price, tokens, category = price[pick], tokens[pick], category[pick]
    if np.array_equal(tokens, np.round(tokens)):
        # Token counts are integers: a small fixed-seed jitter spreads the columns of points apart.
        tokens = tokens + np.random.default_rng(0).uniform(-0.3, 0.3, len(tokens))
    biggest = [c for c, _ in Counter(category).most_common(SCATTER_COLOURED_CATEGORIES)]
    others = ~np.isin(category, biggest)
    if others.any():
        ax.scatter(tokens[others], price[others], s=6, alpha=0.35, color="#999999", label="other categories")
    palette = colormaps["tab10"]
    for i, name in enumerate(biggest):
        mine = category == name
        ax.scatter(tokens[mine], price[mine], s=6, alpha=0.45, color=palette(i), label=name)
    if price.min() > 0 and price.max() / price.min() > 50:
        ax.set_yscale("log")  # prices span orders of magnitude; a linear axis squashes the cheap majority
    shown = f"{len(price):,} of {int(usable.sum()):,}" if len(price) < usable.sum() else f"{len(price):,}"
    ax.set_title(f"Price against prompt length ({shown} kept items)")
    ax.set_xlabel("tokens per prompt")
    ax.set_ylabel(literal("price ($)"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, markerscale=2, frameon=False)
    return fig


def save_png(fig: Figure, path: Path) -> bytes:
    fig.savefig(path, format="png", dpi=DPI)
    return path.read_bytes()
