"""Baselines on the shared real records' split: scored as `evaluate` scores, repeatable, recorded everywhere."""

from __future__ import annotations

import json
import os

import pytest
from conftest import SHARED, require_shared
from helpers import manifest, split_rows

from pricecurate.cli.main import main
from pricecurate.config import load_config
from pricecurate.evaluate import metrics
from pricecurate.evaluate.baseline import MIN_TRAIN, baseline_lines, run_baselines
from pricecurate.pipeline.job import run_job
from pricecurate.report.build import write_report
from pricecurate.report.card import render

# The older real records hold about 1,300 items that pass the recipe: enough for a split that says something.
SETTINGS = ["categories=all", "dedup=title,text", "split.train=1000", "split.test=250", "baseline=true"]


@pytest.fixture(scope="module")
def scored(spark, tmp_path_factory):
    require_shared()
    output = tmp_path_factory.mktemp("baseline") / "out"
    run_job(spark, load_config("conf/course.yaml", SETTINGS), str(SHARED / "data" / "converted"), str(output))
    return output, manifest(str(output))


def _prices(output, split: str) -> list[float]:
    return [row[1] for row in split_rows(str(output), split)]  # (text, price, ...) in SPLIT_COLUMNS order


def test_the_mean_baseline_is_the_train_mean_scored_as_evaluate_scores(scored):
    output, info = scored
    section = info["baselines"]
    train, test = _prices(output, "train"), _prices(output, "test")
    assert (section["train_items"], section["test_items"]) == (len(train), len(test)) and len(test) >= 200
    mean = sum(train) / len(train)
    expected = metrics.score(test, [mean] * len(test))
    got = section["models"]["mean"]
    assert got["predicts"] == pytest.approx(mean)
    assert got["bands"] == expected["bands"] and got["count"] == len(test)
    for key in ("average_error", "rmsle", "hit_rate"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6)


def test_the_text_models_beat_the_mean_each_by_the_error_it_was_tuned_for(scored):
    """The words say something about the price: in dollars for the linear model, in proportion for ridge_log."""
    models = scored[1]["baselines"]["models"]
    assert set(models) == {"mean", "linear", "ridge_log"}
    assert models["linear"]["average_error"] < models["mean"]["average_error"]
    assert models["ridge_log"]["rmsle"] < models["mean"]["rmsle"]
    assert models["ridge_log"]["average_error"] < models["mean"]["average_error"]
    for name, penalties in (("linear", (10.0, 100.0, 1000.0)), ("ridge_log", (0.1, 1.0, 10.0))):
        held_out = models[name]["held_out"]
        assert sorted(map(float, held_out)) == list(penalties)
        assert models[name]["penalty"] == min(penalties, key=lambda p: held_out[str(p)])


def test_the_baseline_command_repeats_the_runs_scores_and_records_them(scored, capsys):
    """Read back from the published files, on other partitions: the same seed gives the same scores."""
    output, info = scored
    assert main(["baseline", str(output), "--master", "local[2]"]) == 0
    printed = capsys.readouterr().out
    amended = manifest(str(output))
    assert {k: v for k, v in amended.items() if k != "baselines"} == {k: v for k, v in info.items() if k != "baselines"}
    again, before = amended["baselines"]["models"], info["baselines"]["models"]
    for name in before:
        assert again[name]["bands"] == before[name]["bands"], name
        for key in ("average_error", "rmsle", "hit_rate"):
            assert again[name][key] == pytest.approx(before[name][key], rel=1e-6), (name, key)
    assert "ridge_log" in printed and "recorded in" in printed
    with open(os.path.join(str(output), amended["data"], "manifest.json"), encoding="utf-8") as handle:
        assert json.load(handle) == amended  # the data folder's copy too
    card = (output / "README.md").read_text(encoding="utf-8")
    assert card == render(amended) and "## Baselines" in card and "| ridge_log |" in card
    page = write_report(output).read_text(encoding="utf-8")
    assert "id='baselines-table'" in page and "ridge_log" in page


def test_too_few_train_items_fit_nothing_and_say_so(spark):
    rows = [(f"B{i:04d}", "Toys_and_Games", f"Question\n\nItem {i}\n\nPrice is ${i}.00", float(i)) for i in range(1, 11)]
    frame = spark.createDataFrame(rows, "parent_asin string, category string, text string, price double")
    section = run_baselines(frame, frame, 42)
    assert section["skipped"] == f"10 train items, fewer than {MIN_TRAIN}" and section["models"] == {}
    assert baseline_lines(section) == [f"  baselines: not fitted (10 train items, fewer than {MIN_TRAIN})"]
