"""Write the report of a finished run: PNG plots, report.json and a self-contained report.html.

Reading the dataset into numbers, drawing the figures and rendering the page are each a module of their own
(``data``, ``plots``, ``html`` in this package); this one ties them together, draws the figures side by side in
forked processes, and writes the files.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from matplotlib.figure import Figure

from pricecurate.errors import OutputError
from pricecurate.output.layout import MANIFEST, data_prefix, read_manifest
from pricecurate.report.data import (
    SAMPLE_PROMPTS,
    SPLITS,
    balanced_rows,
    first_prompts,
    local_dir,
    read_rows,
    summarise,
)
from pricecurate.report.html import render_page
from pricecurate.report.plots import (
    category_bars,
    funnel_bars,
    price_histograms,
    price_vs_tokens,
    save_png,
    shown_text,
    token_histogram,
)
from pricecurate.spark.fs import LocalFiles

REPORT_DIR = "report"
# The figures in the order they are handed to drawing workers: the slowest first (sample run: the funnel 0.7 s,
# the categories 0.5 s, the others 0.1-0.35 s), so the two workers finish together.
DRAW_ORDER = ("funnel", "categories", "prices", "price_vs_tokens", "token_counts")

# What the forked drawing workers draw, per call of ``draw_figures``: set just before they fork, so each starts
# with the data already in memory.
_TO_DRAW: dict[str, dict[str, Callable[[], Figure]]] = {}


def _draw(call: str, name: str, folder: Path) -> tuple[str, bytes, str]:
    fig = _TO_DRAW[call][name]()
    return name, save_png(fig, folder / f"{name}.png"), shown_text(fig)


def _drawing_workers(figures: int) -> int:
    """How many processes draw side by side: one per core this process may use, on Linux only (forking a process
    that runs threads, as the Spark driver does, is safe there; macOS's system libraries are not fork-safe)."""
    if sys.platform != "linux":
        return 1
    return max(1, min(figures, len(os.sched_getaffinity(0))))


def draw_figures(makers: dict[str, Callable[[], Figure]], folder: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """Draw each figure into FOLDER/<name>.png; return the PNGs' bytes and alt texts by name, in ``makers``' order.

    Matplotlib draws in one thread, a second or two for the five figures, while the Spark driver this runs beside
    is idle by now (or stopping): forked workers draw them side by side."""
    order = sorted(makers, key=lambda name: DRAW_ORDER.index(name) if name in DRAW_ORDER else len(DRAW_ORDER))
    workers = _drawing_workers(len(order))
    call = uuid.uuid4().hex
    _TO_DRAW[call] = makers
    try:
        if workers == 1:
            drawn = [_draw(call, name, folder) for name in order]
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                drawn = list(pool.map(_draw, [call] * len(order), order, [folder] * len(order)))
    finally:
        del _TO_DRAW[call]
    by_name = {name: (png, alt) for name, png, alt in drawn}
    return ({name: by_name[name][0] for name in makers}, {name: by_name[name][1] for name in makers})


def write_report(output_dir: str | Path) -> Path:
    """Write OUTPUT_DIR/report/ (PNG plots, report.json, a self-contained report.html); return the html path."""
    root = local_dir(output_dir)
    manifest = read_manifest(LocalFiles(), str(root / MANIFEST))
    if manifest is None:
        raise OutputError(f"{root}/{MANIFEST} is missing, cut short or not pricecurate's; "
                          "pass an output folder written by `pricecurate run`, or run it again")
    data = root / data_prefix(manifest)
    items = read_rows(data, "items")
    split_rows = {split: read_rows(data, split) for split in SPLITS}  # a missing split reads as no rows
    after = balanced_rows(manifest, split_rows)
    samples = {split: first_prompts(data, split, SAMPLE_PROMPTS) for split in ("train", "test")}
    summary = summarise(manifest, items, after, split_rows, samples)

    report = root / REPORT_DIR
    report.mkdir(parents=True, exist_ok=True)
    pngs, alts = draw_figures({
        "token_counts": lambda: token_histogram(items),
        "prices": lambda: price_histograms(items, after),
        "categories": lambda: category_bars(summary["per_category"]),
        "funnel": lambda: funnel_bars(summary["per_category"]),
        "price_vs_tokens": lambda: price_vs_tokens(items),
    }, report)
    (report / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    page = report / "report.html"
    page.write_text(render_page(manifest, summary, pngs, alts), encoding="utf-8")
    return page
