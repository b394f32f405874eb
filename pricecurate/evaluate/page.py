"""The evaluation's scatter plot (truth against prediction, coloured by band) and its HTML page.

The page uses the report's style sheet, so an evaluation looks like the dataset's
report; it is one self-contained file with the plot inlined.
"""

from __future__ import annotations

import base64
import html

import numpy as np
from matplotlib.figure import Figure

from pricecurate.evaluate.metrics import BAND_RULES, BANDS
from pricecurate.report.html import CSS

SCATTER_POINTS = 20_000  # as in the report: more points only blur into one blob
BAND_COLOURS = {"green": "#2a9d4f", "orange": "#f4a261", "red": "#d62728"}


def scatter(truths: list[float], predictions: list[float], bands: list[str], title: str) -> Figure:
    """Truth on x, prediction on y, one colour per band, and the line where they are equal."""
    fig = Figure(figsize=(8, 7), layout="constrained")
    ax = fig.add_subplot()
    truth, predicted, band = np.asarray(truths, float), np.asarray(predictions, float), np.asarray(bands, object)
    if len(truth) > SCATTER_POINTS:
        pick = np.linspace(0, len(truth) - 1, SCATTER_POINTS).astype(int)  # evenly spaced: deterministic
        truth, predicted, band = truth[pick], predicted[pick], band[pick]
    top = max(float(truth.max(initial=0)), float(predicted.max(initial=0)), 1.0) * 1.05
    ax.plot([0, top], [0, top], color="#555555", linewidth=1, linestyle="--", label="prediction = truth")
    for name in BANDS:
        mine = band == name
        if mine.any():
            ax.scatter(truth[mine], predicted[mine], s=10, alpha=0.6, color=BAND_COLOURS[name],
                       label=f"{name}: {BAND_RULES[name]} ({int(mine.sum()):,})")
    margin = top * 0.02  # points at $0 (unparsable replies) stay visible
    ax.set_xlim(-margin, top)
    ax.set_ylim(min(0.0, float(predicted.min(initial=0))) * 1.05 - margin, top)
    ax.set_xlabel("true price ($)")
    ax.set_ylabel("predicted price ($)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _metrics_table(metrics: dict, unparsable: int) -> str:
    rows = [("Rows scored", metrics["count"]), ("Average absolute error ($)", metrics["average_error"]),
            ("RMSLE", metrics["rmsle"]), ("Hit rate (green share)", f"{metrics['hit_rate']:.1%}")]
    rows += [(f"{name.capitalize()}: {BAND_RULES[name]}", metrics["bands"][name]) for name in BANDS]
    rows.append(("Unparsable predictions (scored as $0)", unparsable))
    body = "".join(f"<tr><th>{html.escape(label)}</th><td class='n'>{_number(value)}</td></tr>"
                   for label, value in rows)
    return f"<table id='metrics-table'>{body}</table>"


def _category_table(per_category: dict) -> str:
    head = ("<tr><th>category</th><th class='n'>rows</th><th class='n'>average error ($)</th>"
            "<th class='n'>RMSLE</th><th class='n'>hit rate</th>"
            + "".join(f"<th class='n'>{name}</th>" for name in BANDS) + "</tr>")
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='n'>{m['count']:,}</td><td class='n'>{m['average_error']:,.2f}</td>"
        f"<td class='n'>{m['rmsle']:.4f}</td><td class='n'>{m['hit_rate']:.1%}</td>"
        + "".join(f"<td class='n'>{m['bands'][band]:,}</td>" for band in BANDS) + "</tr>"
        for name, m in per_category.items()
    )
    return f"<div class='wide'><table id='category-table'><thead>{head}</thead><tbody>{body}</tbody></table></div>"


def render_page(evaluation: dict, png: bytes) -> str:
    """The evaluation as one HTML page: metrics, the scatter plot, per-category figures."""
    source = evaluation["dataset"]
    predictions = evaluation["predictions"]
    title = f"pricecurate evaluation: {source['data'] or source['output']} ({evaluation['split']})"
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>pricecurate evaluation</h1>
<p class="muted">Predictions {html.escape(predictions['file'])} (column {html.escape(predictions['column'])})
against the {html.escape(evaluation['split'])} split of {html.escape(source['output'])}
({html.escape(source['data'])}, recipe {html.escape(source['recipe'])}).</p>
<h2 id="metrics">Metrics</h2>
{_metrics_table(evaluation['metrics'], predictions['unparsable'])}
<h2 id="scatter">Truth against prediction</h2>
<figure><img src="data:image/png;base64,{image}" alt="truth against prediction">
<figcaption>Every scored row (an evenly spaced sample above {SCATTER_POINTS:,}), coloured by band; points on the
dashed line are exact.</figcaption></figure>
<h2 id="categories">Per category</h2>
{_category_table(evaluation['per_category'])}
</body></html>
"""
