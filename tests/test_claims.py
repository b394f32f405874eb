"""README claims checked against counts this test makes itself: ignored and missing inputs, scaled splits in the
summary and the card, rows in input order inside each category folder, lone surrogates quarantined on the byte
path, and a failed run leaving the previous dataset and no data folder of its own."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pyarrow.parquet as pq
import pytest

from helpers import data_dir, manifest, split_files, split_rows
from pricecurate import publish
from pricecurate.cli import main
from pricecurate.config import load_config
from pricecurate.job import run_job
from pricecurate.progress import Progress
from pricecurate.report import write_report
from pricecurate.sample import write_sample

CATEGORIES = ["Automotive", "Toys_and_Games"]
SURROGATE_LINE = '{"parent_asin": "BADSURR01", "title": "Lamp \\ud800 shade", "price": "12.00"}'


@pytest.fixture(scope="module")
def mixed_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("claims") / "in"
    write_sample(source, records_per_category=200, categories=CATEGORIES)
    with open(source / "meta_Automotive.jsonl", "a", encoding="utf-8") as handle:
        handle.write(SURROGATE_LINE + "\n")  # valid UTF-8 and JSON; the escape is a lone surrogate
    (source / "notes.txt").write_text("not a category file")
    return source


@pytest.fixture(scope="module")
def claims_run(spark, mixed_input, tmp_path_factory):
    """The CLI on the mixed input, asking for more than it holds (so the splits are scaled); its output and stdout."""
    output = tmp_path_factory.mktemp("claims-out") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["run", "--input", str(mixed_input), "--output", str(output), "--no-report",
                     "--set", "categories=Automotive,Toys_and_Games,Gift_Cards",
                     "--set", "split.train=100000", "--set", "split.test=1000"])
    assert code == 0
    return output, printed.getvalue()


def _lines(path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def test_every_line_counted_here_is_in_the_accounting(claims_run, mixed_input):
    counted = {f"meta_{c}.jsonl": len(_lines(mixed_input / f"meta_{c}.jsonl")) for c in CATEGORIES}
    files = manifest(str(claims_run[0]))["accounting"]["files"]
    assert {name: entry["lines"] for name, entry in files.items()} == counted


def test_ignored_files_and_missing_categories_are_named(claims_run):
    info = manifest(str(claims_run[0]))["input"]
    assert info["ignored_files"] == ["notes.txt"] and info["missing_categories"] == ["Gift_Cards"]


def test_scaled_splits_are_said_in_the_summary_and_the_card(claims_run):
    output, printed = claims_run
    assert manifest(str(output))["splits"]["scaled"] is True
    assert "splits scaled down in proportion" in printed and "no input file for: Gift_Cards" in printed
    assert "scaled down in proportion" in (output / "README.md").read_text()


def test_a_lone_surrogate_is_quarantined_on_the_byte_path(claims_run, mixed_input):
    output = claims_run[0]
    line = _lines(mixed_input / "meta_Automotive.jsonl").index(SURROGATE_LINE) + 1
    rows = [json.loads(text) for path in sorted(os.listdir(os.path.join(data_dir(output), "quarantine")))
            if path.endswith(".json") for text in _lines(os.path.join(data_dir(output), "quarantine", path))]
    assert [(r["file"], r["line"], r["reason"]) for r in rows] == [("meta_Automotive.jsonl", line, "invalid_unicode")]


def test_rows_inside_each_category_folder_follow_the_input_lines(claims_run, mixed_input):
    line_of = {}
    for category in CATEGORIES:
        for number, text in enumerate(_lines(mixed_input / f"meta_{category}.jsonl"), 1):
            try:
                line_of[json.loads(text)["parent_asin"]] = number
            except ValueError:
                continue
    by_folder: dict[str, list[int]] = {}
    for path in split_files(str(claims_run[0]), "items"):  # file name order
        asins = pq.read_table(path, columns=["parent_asin"]).column("parent_asin").to_pylist()
        by_folder.setdefault(os.path.dirname(path), []).extend(line_of[a] for a in asins)
    assert len(by_folder) == len(CATEGORIES)
    for folder, lines in by_folder.items():
        assert len(lines) > 10 and lines == sorted(lines), folder


@pytest.fixture(scope="module")
def course_run(spark, mixed_input, tmp_path_factory):
    """Small splits and over-full price slots: most balanced items are in no split."""
    output = tmp_path_factory.mktemp("course") / "out"
    config = load_config("conf/course.yaml", ["categories=all", "split.train=30", "split.test=5", "balance.slot_cap=1"])
    run_job(spark, config, str(mixed_input), str(output))
    return output


def test_the_report_shows_every_balanced_item_not_only_the_splits(course_run):
    info = manifest(str(course_run))
    assert info["accounting"]["kept"] > info["balanced"] > 35  # the cut dropped items; the splits hold 35
    assert sum(info["balanced_by_price_slot"].values()) == info["balanced"]
    write_report(course_run)
    numbers = json.loads((course_run / "report" / "report.json").read_text())
    assert numbers["after_balancing_rows"] == info["balanced"] and numbers["train"] + numbers["test"] == 35
    for split in ("train", "test"):  # every split row's price lies in a slot the balanced histogram counts
        assert all(info["balanced_by_price_slot"].get(str(round(row[1])), 0) > 0 for row in split_rows(str(course_run), split))


def test_a_failed_run_leaves_the_previous_dataset_and_only_its_items_which_the_next_run_resumes_from(
        spark, course_run, mixed_input, monkeypatch):
    before, listing = split_rows(str(course_run), "train"), sorted(os.listdir(course_run))
    published = manifest(str(course_run))

    def fail(*_args, **_kwargs):
        raise RuntimeError("disk full")

    config = load_config("conf/course.yaml", ["categories=all", "seed=3"])
    monkeypatch.setattr(publish, "publish", fail)  # every dataset is written; the commit fails
    with pytest.raises(RuntimeError, match="disk full"):
        run_job(spark, config, str(mixed_input), str(course_run), overwrite=True)
    [left] = sorted(set(os.listdir(course_run)) - set(listing))
    kept = sorted(name for name in os.listdir(course_run / left) if not name.startswith("."))  # not Hadoop's .crc
    assert left.startswith("data-") and kept == sorted(["curated", publish.ITEMS_DONE, publish.DEDUP_DONE])
    assert split_rows(str(course_run), "train") == before and manifest(str(course_run)) == published

    monkeypatch.undo()
    said = io.StringIO()
    result = run_job(spark, config, str(mixed_input), str(course_run), overwrite=True,
                     progress=Progress(said, interactive=False))
    assert f"kept the items {left} holds" in said.getvalue() and f"resuming: the items in {left}" in said.getvalue()
    info = result.manifest
    assert info["spark"]["rule_records"] == 0 and info["curation"]["reused_from"].endswith(left)
    assert info["accounting"] == published["accounting"]  # the same lines, whatever the seed
    assert [n for n in os.listdir(course_run) if n.startswith("data-")] == [info["data"]]  # then cleaned up


def test_an_output_holding_only_an_interrupted_first_runs_items_can_be_run_on(spark, tmp_path):
    """A first run that died after its items leaves only its data folder: the next run needs no --overwrite
    (nothing is replaced) and resumes; anything else in a folder without a manifest is still refused."""
    from pricecurate.fs import HadoopFS
    from pricecurate.write import Output, OutputError

    output = tmp_path / "out"
    (output / "data-20260101T000000-abc").mkdir(parents=True)
    (output / "data-20260101T000000-abc" / publish.ITEMS_DONE).write_text("{}")
    fs = HadoopFS(spark)
    Output(fs, str(output), str(tmp_path / "in"), lambda manifest: "").claim(overwrite=False)
    (output / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="is not a pricecurate dataset"):
        Output(fs, str(output), str(tmp_path / "in"), lambda manifest: "").claim(overwrite=True)
