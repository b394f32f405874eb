"""Render the report as one self-contained HTML page: summary and funnel tables, inline PNGs, sample prompts."""

from __future__ import annotations

import base64
import html

import numpy as np

from pricecurate.evaluate.baseline import COLUMNS as BASELINE_COLUMNS
from pricecurate.evaluate.baseline import cells as baseline_cells
from pricecurate.output import source
from pricecurate.report.data import SAMPLE_PROMPTS, SPLITS
from pricecurate.report.plots import NO_ITEMS, PLOTS
from pricecurate.report.sections import EXAMPLE_COLUMNS, checked_items, example_cells, how_known, terms_words
from pricecurate.rules.recipe import from_manifest, in_words

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


def _leakage(summary: dict) -> str:
    leakage = summary.get("leakage")
    if not leakage:
        return "<p class='muted'>No leakage check in this manifest (made before it existed).</p>"
    text = (f"<p id='leakage-count'>{leakage['count']:,} of {checked_items(leakage)} items have a near-duplicate "
            f"in train (word n-gram Jaccard &ge; {leakage['threshold']:g}; {html.escape(how_known(leakage))}).</p>")
    near = summary.get("near_duplicates")
    if near:
        text += (f"<p>Near-duplicate removal: {near['groups']:,} groups of {near['items_in_groups']:,} items "
                 f"(largest {near['largest_group']:,}), {near['dropped']:,} items dropped.</p>")
    if not leakage["examples"]:
        return text
    numeric = {0, 3, 5}  # similarity and the two prices
    number_cell = " class='n'"
    rows = "".join(
        "<tr>" + "".join(f"<td{number_cell if i in numeric else ''}>{html.escape(cell)}</td>"
                         for i, cell in enumerate(example_cells(pair))) + "</tr>"
        for pair in leakage["examples"]
    )
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in EXAMPLE_COLUMNS) + "</tr>"
    return f"{text}<div class='wide'><table id='leakage-table'><thead>{head}</thead><tbody>{rows}</tbody></table></div>"


def _baselines(manifest: dict) -> str:
    section = manifest.get("baselines")
    if not section:
        return "<p class='muted'>No baselines in this manifest (run <code>pricecurate baseline</code>).</p>"
    if section.get("skipped"):
        return f"<p class='muted'>Not fitted: {html.escape(section['skipped'])}.</p>"
    text = (f"<p>Trained with Spark MLlib on the {section['train_items']:,} train items, scored on the "
            f"{section['test_items']:,} test items: the numbers a fine-tuned model has to beat.</p>")
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in BASELINE_COLUMNS) + "</tr>"
    rows = "".join("<tr>" + "".join(f"<td{'' if i in (0, 4) else ' class=n'}>{html.escape(cell)}</td>"
                                    for i, cell in enumerate(row)) + "</tr>" for row in baseline_cells(section))
    return f"{text}<table id='baselines-table'><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _source(manifest: dict) -> str:
    """Where the data came from, its terms and how to cite it, in words without links (the card has them)."""
    terms = terms_words(manifest.get(source.MANIFEST_KEY) or {})
    return (f"<p id='source-data'>The product metadata of {html.escape(source.REPO)} on the Hugging Face Hub (its "
            f"<code>{source.RAW_FOLDER}</code> files). Terms: {html.escape(terms)}.</p>"
            f"<p>Cite the source's paper ({html.escape(source.PAPER)}):</p>"
            f"<pre id='citation'>{html.escape(source.CITATION)}</pre>")


def _figure(name: str, title: str, caption: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<h2 id='{name}'>{html.escape(title)}</h2><figure><img src='data:image/png;base64,{data}' "
            f"alt='{html.escape(alt or title)}'><figcaption>{html.escape(caption)}</figcaption></figure>")


def render_page(manifest: dict, summary: dict, pngs: dict[str, bytes], alts: dict[str, str] | None = None) -> str:
    """The page; ``alts`` gives each figure's alt text (the titles drawn in it), else its heading stands in."""
    nav = " ".join(f"<a href='#{name}'>{html.escape(title)}</a>" for name, title, _ in PLOTS)
    nav += (" <a href='#funnel-table-section'>Funnel table</a> <a href='#leakage'>Leakage</a>"
            " <a href='#baselines'>Baselines</a> <a href='#samples'>Sample prompts</a> <a href='#source'>Source</a>")
    figures = "".join(_figure(name, title, caption, pngs[name], (alts or {}).get(name, ""))
                      for name, title, caption in PLOTS)
    rules = from_manifest(manifest)
    recipe = html.escape(rules.label)
    parameters = "".join(f"<li>{html.escape(sentence)}</li>" for sentence in in_words(rules))
    created = html.escape(str(manifest.get("created", "?")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pricecurate report: {recipe}</title><style>{CSS}</style></head>
<body>
<h1>pricecurate report</h1>
<p class="muted">Recipe {recipe}, created {created}.</p>
<ul class="muted">{parameters}</ul>
<nav>{nav}</nav>
<h2 id="summary">Summary</h2>
{_summary_table(summary)}
{figures}
<h2 id="funnel-table-section">Records per category (manifest.json)</h2>
{_funnel_table(summary["per_category"])}
<h2 id="leakage">Test items with a near-duplicate in train</h2>
{_leakage(summary)}
<h2 id="baselines">Baselines on test</h2>
{_baselines(manifest)}
<h2 id="samples">Sample prompts</h2>
<p class="muted">The first {SAMPLE_PROMPTS} prompts of each split in text order.</p>
{_samples(summary["samples"])}
<h2 id="source">Source data and citation</h2>
{_source(manifest)}
</body></html>
"""
