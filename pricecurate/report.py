"""A self-contained HTML report of a finished run: plots and tables from manifest.json and the written parquet.

Plots are drawn on ``matplotlib.figure.Figure`` objects directly (never pyplot), so no backend or global
matplotlib state is changed for other code in the same process.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

REPORT_DIR = "report"
SPLITS = ("train", "validation", "test")
SAMPLE_PROMPTS = 3
SCATTER_POINTS = 20_000  # more points only blur into one blob and slow the plot down
SCATTER_COLOURED_CATEGORIES = 9  # tab10 has ten colours; the tenth is kept for "other categories"
DPI = 110
NO_ITEMS = "no items"

KEPT_COLOUR = "#4c72b0"
BALANCED_COLOUR = "#dd8452"
SPLIT_COLOURS = {"train": "#2a9d8f", "validation": "#e9c46a", "test": "#264653"}
# Distinct warm hues so neighbouring drop reasons in a stacked bar can be told apart.
DROP_COLOURS = ("#f4a261", "#d62728", "#8c564b", "#e377c2", "#ff7f0e", "#9467bd", "#bcbd22", "#7b2d26")


@dataclass
class Rows:
    """Price and token count of the rows of one or more splits, with each row's category."""

    price: np.ndarray
    token_count: np.ndarray
    category: np.ndarray

    def __len__(self) -> int:
        return len(self.price)

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        if not parts:
            return Rows(np.empty(0), np.empty(0), np.empty(0, dtype=object))
        columns = ("price", "token_count", "category")
        return Rows(*(np.concatenate([getattr(part, name) for part in parts]) for name in columns))


# ---------------------------------------------------------------------------------------------------- reading


def _local_dir(output_dir: str | Path) -> Path:
    # The job prints outputs as "file:/path"; accept that spelling too.
    text = str(output_dir)
    return Path(text[len("file:"):] if text.startswith("file:") else text)


def _split_files(root: Path, split: str) -> list[tuple[str, Path]]:
    """(category, file) for every parquet file of a split; a missing split gives no files."""
    files = []
    for directory in sorted((root / split).glob("*")):
        if directory.is_dir() and "=" in directory.name:
            # Spark escapes special characters in partition values (e.g. "/" as %2F).
            category = unquote(directory.name.split("=", 1)[1])
            files.extend((category, path) for path in sorted(directory.glob("*.parquet")))
    return files


def _read_rows(root: Path, split: str) -> Rows:
    parts = []
    for category, path in _split_files(root, split):
        # ParquetFile reads just this file: no hive partition inference, no duplicated category column.
        table = pq.ParquetFile(path).read(columns=["price", "token_count"])
        price = table.column("price").to_numpy().astype(float)
        tokens = table.column("token_count").to_numpy().astype(float)
        parts.append(Rows(price, tokens, np.full(len(price), category, dtype=object)))
    return Rows.concat(parts)


def _first_prompts(root: Path, split: str, count: int) -> list[str]:
    """The first ``count`` prompts of a split in text order: deterministic, whatever the file layout."""
    candidates = []
    for _, path in _split_files(root, split):
        texts = pq.ParquetFile(path).read(columns=["text"]).column("text")
        texts = texts.filter(pc.is_valid(texts))
        # Only each file's first few can be among the overall first few: never hold a whole split in memory.
        candidates.extend(texts.take(pc.sort_indices(texts)[:count]).to_pylist())
    return sorted(candidates)[:count]


# ---------------------------------------------------------------------------------------------------- numbers


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _category_table(manifest: dict) -> dict[str, dict]:
    """Per category: the manifest's funnel counts plus its drop and quarantine reasons."""
    accounting = manifest.get("accounting", {}).get("categories", {})
    table = {}
    for category in sorted(set(manifest.get("categories", {})) | set(accounting)):
        counts = manifest.get("categories", {}).get(category, {})
        reasons = accounting.get(category, {})
        table[category] = {
            "lines": counts.get("lines", reasons.get("lines", 0)),
            "dropped": dict(reasons.get("dropped", {})),
            "quarantined": sum(reasons.get("quarantined", {}).values()),
            "kept": counts.get("kept", reasons.get("kept", 0)),
            "balanced": counts.get("balanced", 0),
            **{split: counts.get(split, 0) for split in SPLITS},
        }
    return table


def _summary(manifest: dict, items: Rows, after: Rows, split_rows: dict[str, Rows], samples: dict) -> dict:
    accounting = manifest.get("accounting", {})
    tokens = _finite(items.token_count)
    return {
        "items": len(items),
        "token_count_mean": float(tokens.mean()) if len(tokens) else None,
        "token_count_max": int(tokens.max()) if len(tokens) else None,
        "price_mean_before": float(_finite(items.price).mean()) if len(_finite(items.price)) else None,
        "price_mean_after": float(_finite(after.price).mean()) if len(_finite(after.price)) else None,
        "after_balancing_rows": len(after),
        **{split: len(rows) for split, rows in split_rows.items()},
        "lines": accounting.get("lines", 0),
        "kept": accounting.get("kept", 0),
        "dropped": dict(accounting.get("dropped", {})),
        "quarantined": dict(accounting.get("quarantined", {})),
        "balanced": manifest.get("balanced", 0),
        "splits": dict(manifest.get("splits", {}).get("sizes", {})),
        "tokenizer": manifest.get("tokenizer", {}).get("name"),
        "per_category": _category_table(manifest),
        "rows_by_category": _rows_by_category(items, split_rows),
        "samples": samples,
    }


def _rows_by_category(items: Rows, split_rows: dict[str, Rows]) -> dict[str, dict[str, int]]:
    """Row counts per category as found in the parquet files (a cross-check of the manifest)."""
    counted = {"items": Counter(items.category)}
    counted.update({split: Counter(rows.category) for split, rows in split_rows.items()})
    categories = sorted(set().union(*counted.values()))
    return {c: {name: counts.get(c, 0) for name, counts in counted.items()} for c in categories}


# ---------------------------------------------------------------------------------------------------- plots


def _say_no_items(ax, what: str = NO_ITEMS) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", fontsize=16, color="grey", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _token_histogram(items: Rows) -> Figure:
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.add_subplot()
    tokens = _finite(items.token_count)
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


def _price_histograms(items: Rows, after: Rows) -> Figure:
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    before_prices, after_prices = _finite(items.price), _finite(after.price)
    both = np.concatenate([before_prices, after_prices])
    # Prices are heavy-tailed: on a linear axis the cheap majority squeezes into a few bars.
    logarithmic = len(both) and both.min() > 0 and both.max() / both.min() > 20
    if logarithmic:
        bins = np.geomspace(both.min(), both.max(), 61)
    else:
        bins = np.linspace(0, both.max(), 61) if len(both) and both.max() > 0 else 10
    panels = (
        (top, before_prices, "Before balancing: every kept item (items/)", KEPT_COLOUR),
        (bottom, after_prices, "After balancing: train + validation + test rows", BALANCED_COLOUR),
    )
    for ax, prices, title, colour in panels:
        if not len(prices):
            ax.set_title(title)
            _say_no_items(ax)
            continue
        ax.hist(prices, bins=bins, color=colour, edgecolor="white", linewidth=0.4)
        ax.set_title(f"{title}: {len(prices):,} items, mean ${prices.mean():,.2f}")
        ax.set_ylabel("items")
    if logarithmic:
        bottom.set_xscale("log")
        dollars = FuncFormatter(lambda value, _: f"${value:,.0f}" if value >= 1 else f"${value:g}")
        bottom.xaxis.set_major_formatter(dollars)
    bottom.set_xlabel("price (log scale)" if logarithmic else "price ($)")
    return fig


def _category_bars(categories: dict[str, dict]) -> Figure:
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


def _funnel_bars(categories: dict[str, dict]) -> Figure:
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


def _price_vs_tokens(items: Rows) -> Figure:
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
    ax.set_ylabel("price ($)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, markerscale=2, frameon=False)
    return fig


# ---------------------------------------------------------------------------------------------------- html

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1150px;
       color: #222; padding: 0 1rem; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
nav a { margin-right: 1rem; } .muted { color: #666; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; } td.n, th.n { text-align: right; }
th { background: #f3f3f3; text-align: left; } thead th { text-align: center; vertical-align: bottom; }
#funnel-table { font-size: 0.8rem; } #funnel-table tbody tr:nth-child(even) { background: #fafafa; }
tr.total td { font-weight: bold; background: #fafafa; }
.wide { overflow-x: auto; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 0.7rem; white-space: pre-wrap; font-size: 0.85rem; }
"""

PLOTS = (
    ("token_counts", "Prompt length", "Token counts of the prompts of every kept item (items/), before balancing."),
    ("prices", "Prices before and after balancing",
     "Top: every kept item (items/). Bottom: the rows of train + validation + test, a subset of the balanced set "
     "(the balanced set itself is not written)."),
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


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _summary_table(summary: dict) -> str:
    rows = [("Records read", summary["lines"]), ("Kept", summary["kept"])]
    rows += [(f"Dropped: {reason}", count) for reason, count in summary["dropped"].items()]
    rows += [(f"Quarantined: {reason}", count) for reason, count in summary["quarantined"].items()]
    rows += [] if summary["quarantined"] else [("Quarantined", 0)]
    rows += [("After balancing", summary["balanced"])]
    rows += [(split.capitalize(), summary["splits"].get(split, 0)) for split in SPLITS
             if split != "validation" or summary["splits"].get(split)]
    rows += [("Tokenizer", summary["tokenizer"] or "unknown")]
    body = "".join(f"<tr><th>{html.escape(label)}</th><td class='n'>{_n(value)}</td></tr>" for label, value in rows)
    return f"<table id='summary-table'>{body}</table>"


def _funnel_header(reasons: list[str], splits: list[str]) -> str:
    """Drop reasons grouped under one "dropped" heading and breakable at "_", so the table fits the page."""
    rows = 2 if reasons else 1
    whole = "".join(f"<th rowspan='{rows}'>{name}</th>" for name in ("quarantined", "kept", "balanced", *splits))
    grouped = f"<th colspan='{len(reasons)}'>dropped</th>" if reasons else ""
    first = f"<tr><th rowspan='{rows}'>category</th><th rowspan='{rows}'>lines</th>{grouped}{whole}</tr>"
    second = "<tr>" + "".join(f"<th>{html.escape(r).replace('_', '_<wbr>')}</th>" for r in reasons) + "</tr>"
    return f"<thead>{first}{second if reasons else ''}</thead>"


def _funnel_table(categories: dict[str, dict]) -> str:
    reasons = sorted({reason for v in categories.values() for reason in v["dropped"]})
    splits = [s for s in SPLITS if s != "validation" or any(v["validation"] for v in categories.values())]

    def cells(counts: dict) -> list[int]:
        return [counts["lines"], *(counts["dropped"].get(r, 0) for r in reasons), counts["quarantined"],
                counts["kept"], counts["balanced"], *(counts[s] for s in splits)]

    def row(name: str, values: list[int], css: str = "") -> str:
        numbers = "".join(f"<td class='n'>{int(v):,}</td>" for v in values)
        return f"<tr{css}><td>{html.escape(name)}</td>{numbers}</tr>"

    body = "".join(row(name, cells(counts)) for name, counts in categories.items())
    if categories:
        body += row("total", np.sum([cells(counts) for counts in categories.values()], axis=0), " class='total'")
    return (f"<div class='wide'><table id='funnel-table'>{_funnel_header(reasons, splits)}"
            f"<tbody>{body}</tbody></table></div>")


def _samples(samples: dict[str, list[str]]) -> str:
    parts = []
    for split, prompts in samples.items():
        parts.append(f"<h3>{html.escape(split)}</h3>")
        if not prompts:
            parts.append(f"<p class='muted'>{NO_ITEMS}</p>")
        parts.extend(f"<pre>{html.escape(prompt)}</pre>" for prompt in prompts)
    return "".join(parts)


def _figure(name: str, title: str, caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<h2 id='{name}'>{html.escape(title)}</h2><figure><img src='data:image/png;base64,{data}' "
            f"alt='{html.escape(title)}'><figcaption>{html.escape(caption)}</figcaption></figure>")


def _page(manifest: dict, summary: dict, pngs: dict[str, bytes]) -> str:
    nav = " ".join(f"<a href='#{name}'>{html.escape(title)}</a>" for name, title, _ in PLOTS)
    nav += " <a href='#funnel-table-section'>Funnel table</a> <a href='#samples'>Sample prompts</a>"
    figures = "".join(_figure(name, title, caption, pngs[name]) for name, title, caption in PLOTS)
    recipe = html.escape(str(manifest.get("recipe", "?")))
    created = html.escape(str(manifest.get("created", "?")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pricecurate report: {recipe}</title><style>{CSS}</style></head>
<body>
<h1>pricecurate report</h1>
<p class="muted">Recipe {recipe}, created {created}.</p>
<nav>{nav}</nav>
<h2 id="summary">Summary</h2>
{_summary_table(summary)}
{figures}
<h2 id="funnel-table-section">Records per category (manifest.json)</h2>
{_funnel_table(summary["per_category"])}
<h2 id="samples">Sample prompts</h2>
<p class="muted">The first {SAMPLE_PROMPTS} prompts of each split in text order.</p>
{_samples(summary["samples"])}
</body></html>
"""


# ---------------------------------------------------------------------------------------------------- entry point


def _save_png(fig: Figure, path: Path) -> bytes:
    fig.savefig(path, format="png", dpi=DPI)
    return path.read_bytes()


def write_report(output_dir: str | Path) -> Path:
    """Write OUTPUT_DIR/report/ (PNG plots, report.json, a self-contained report.html); return the html path."""
    root = _local_dir(output_dir)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    items = _read_rows(root, "items")
    split_rows = {split: _read_rows(root, split) for split in SPLITS}  # a missing split reads as no rows
    after = Rows.concat(list(split_rows.values()))
    samples = {split: _first_prompts(root, split, SAMPLE_PROMPTS) for split in ("train", "test")}
    summary = _summary(manifest, items, after, split_rows, samples)

    figures = {
        "token_counts": _token_histogram(items),
        "prices": _price_histograms(items, after),
        "categories": _category_bars(summary["per_category"]),
        "funnel": _funnel_bars(summary["per_category"]),
        "price_vs_tokens": _price_vs_tokens(items),
    }
    report = root / REPORT_DIR
    report.mkdir(parents=True, exist_ok=True)
    pngs = {name: _save_png(fig, report / f"{name}.png") for name, fig in figures.items()}
    (report / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    page = report / "report.html"
    page.write_text(_page(manifest, summary, pngs), encoding="utf-8")
    return page
