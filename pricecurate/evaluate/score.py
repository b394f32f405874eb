"""``pricecurate evaluate``: score a predictions file against a split of the dataset, as the course did.

Reads the split's ids, prices and categories (see ``readback``), matches every
row to exactly one prediction by ``parent_asin`` (a product listed twice in the
split gets the same prediction for both rows), computes ``metrics`` and writes
``evaluation.json``, ``scatter.png`` and ``evaluation.html`` into the out folder:
into a hidden staging folder first, then each file into place, the JSON last.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from pricecurate.evaluate import metrics
from pricecurate.evaluate.page import render_page, scatter
from pricecurate.evaluate.predictions import EvaluationError, load_predictions, match_problems
from pricecurate.output.readback import open_dataset
from pricecurate.paths import local_path
from pricecurate.report.plots import DPI
from pricecurate.rules.recipe import from_manifest
from pricecurate.spark.fs import redact

DEFAULT_FOLDER = "evaluation"
FILES = ("scatter.png", "evaluation.html", "evaluation.json")  # written in this order: the JSON says it is done


@dataclass
class Evaluation:
    result: dict  # what evaluation.json holds
    out: Path


def _out_folder(output: str, out: str | None) -> Path:
    if out:
        folder = local_path(out)
        if folder is None:
            raise EvaluationError(f"--out {redact(out)} is not a local folder; choose a local path")
        return Path(folder)
    root = local_path(output)
    if root is None:
        raise EvaluationError(f"{redact(output)} is not local; pass --out DIR for the evaluation files")
    return Path(root) / DEFAULT_FOLDER


def _write_files(folder: Path, contents: dict[str, bytes]) -> None:
    staging = folder / f".evaluation-{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    try:
        for name in FILES:
            (staging / name).write_bytes(contents[name])
        for name in FILES:  # each file replaces its namesake in one step
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def evaluate(output: str, predictions_path: str, split: str = "test", out: str | None = None,
             master: str | None = None) -> Evaluation:
    """Score ``predictions_path`` against ``split`` of the dataset at ``output``; write the files; return the result."""
    from pricecurate.errors import InputError

    folder = _out_folder(output, out)
    if folder.exists() and not folder.is_dir():
        raise EvaluationError(f"--out {folder} is a file; choose a folder")
    with open_dataset(output, master) as dataset:
        try:
            dataset.check_split(split)
        except InputError as exc:
            raise EvaluationError(str(exc)) from None
        rules = from_manifest(dataset.manifest)
        predictions = load_predictions(predictions_path, rules.price_prefix)
        ids, truths, categories = [], [], []
        for row in dataset.rows(split, ("parent_asin", "price", "category")):
            ids.append(row["parent_asin"])
            truths.append(row["price"])
            categories.append(row["category"])
        source = {"output": redact(dataset.uri), "data": dataset.data_folder, "recipe": rules.label}

    problems = match_problems(predictions, split, set(ids))
    if problems:
        raise EvaluationError(f"{predictions_path}: " + "; ".join(problems))
    predicted = [predictions.by_id[asin] for asin in ids]
    result = {
        "dataset": source,
        "split": split,
        "predictions": {"file": Path(predictions_path).name, "column": predictions.column,
                        "rows": predictions.rows, "unparsable": len(predictions.unparsable),
                        "unparsable_examples": sorted(predictions.unparsable)[:10]},
        "metrics": metrics.score(truths, predicted),
        "band_rules": metrics.BAND_RULES,
        "per_category": metrics.score_by_category(truths, predicted, categories),
    }
    figure = scatter(truths, predicted, metrics.band_labels(truths, predicted),
                     f"{split}: {len(ids):,} rows, average error ${result['metrics']['average_error']:,.2f}, "
                     f"hit rate {result['metrics']['hit_rate']:.1%}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    _write_files(folder, {
        "scatter.png": png,
        "evaluation.html": render_page(result, png).encode("utf-8"),
        "evaluation.json": (json.dumps(result, indent=2) + "\n").encode("utf-8"),
    })
    return Evaluation(result, folder)


def summary(evaluation: Evaluation) -> str:
    """The metrics as the command prints them."""
    result = evaluation.result
    scored = result["metrics"]
    bands = scored["bands"]
    lines = [
        f"evaluated {result['predictions']['file']} ({result['predictions']['column']}) on the {result['split']} split "
        f"of {result['dataset']['output']}",
        f"  rows                    {scored['count']:>10,}",
        f"  average absolute error  {scored['average_error']:>10,.2f} $",
        f"  RMSLE                   {scored['rmsle']:>10.4f}",
        f"  hit rate                {scored['hit_rate']:>10.1%}   (error < $40 or < 20%)",
        f"  bands                   green {bands['green']:,} / orange {bands['orange']:,} / red {bands['red']:,}",
        f"  unparsable (scored $0)  {result['predictions']['unparsable']:>10,}",
    ]
    width = max((len(name) for name in result["per_category"]), default=0)
    for name, figures in result["per_category"].items():
        lines.append(f"    {name:<{width}}  {figures['count']:>7,} rows"
                     f"  average error ${figures['average_error']:>8,.2f}  hit rate {figures['hit_rate']:>6.1%}")
    lines.append(f"  written: {evaluation.out}/{{evaluation.json, evaluation.html, scatter.png}}")
    return "\n".join(lines)
