"""Write the report of a finished run: PNG plots, report.json and a self-contained report.html.

Reading the dataset into numbers, drawing the figures and rendering the page are each a module of their own
(``report_data``, ``report_plots``, ``report_html``); this one ties them together and writes the files.
"""

from __future__ import annotations

import json
from pathlib import Path

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

    figures = {
        "token_counts": token_histogram(items),
        "prices": price_histograms(items, after),
        "categories": category_bars(summary["per_category"]),
        "funnel": funnel_bars(summary["per_category"]),
        "price_vs_tokens": price_vs_tokens(items),
    }
    report = root / REPORT_DIR
    report.mkdir(parents=True, exist_ok=True)
    pngs = {name: save_png(fig, report / f"{name}.png") for name, fig in figures.items()}
    (report / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    page = report / "report.html"
    alts = {name: shown_text(fig) for name, fig in figures.items()}
    page.write_text(render_page(manifest, summary, pngs, alts), encoding="utf-8")
    return page
