"""README claims checked against counts this test makes itself: ignored and missing inputs, scaled splits in the
summary and the card (and no such note when they are not), rows in input order inside each category folder
across many read splits and many files, lone surrogates quarantined on the byte path, the balanced set's size
from the kept items, and a failed run leaving the previous dataset and no data folder of its own."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter

import pyarrow.parquet as pq
import pytest
from helpers import data_dir, manifest, session_settings, split_files, split_rows

from pricecurate.cli.main import main
from pricecurate.config import load_config
from pricecurate.errors import OutputError
from pricecurate.output import layout, publish
from pricecurate.pipeline.job import run_job
from pricecurate.pipeline.progress import Progress
from pricecurate.report.build import write_report
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


# Each input file read in many splits, each category folder written as many files: the order of the rows in a
# folder then rests on the line numbers across splits and on the files' names, not on one task's order.
SMALL_READ_SPLITS = {"spark.sql.files.maxPartitionBytes": "24000", "spark.sql.files.openCostInBytes": "1"}
ROWS_PER_FILE = 40


def run_cli(*args: str) -> str:
    """``pricecurate run ARGS`` in this process, in the test session; what it printed (the summary) and said
    (progress), together."""
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        assert main(["run", "--no-report", *args]) == 0
    return said.getvalue()


@pytest.fixture(scope="module")
def claims_run(spark, mixed_input, tmp_path_factory):
    """The CLI on the mixed input, asking for more than it holds (so the splits are scaled), read in many splits
    and written in many files; its output and what it printed."""
    output = tmp_path_factory.mktemp("claims-out") / "out"
    with session_settings(spark, SMALL_READ_SPLITS):
        printed = run_cli("--input", str(mixed_input), "--output", str(output),
                          "--set", "categories=Automotive,Toys_and_Games,Gift_Cards", "--set", "split.train=100000",
                          "--set", "split.test=1000", "--set", f"write.rows_per_file={ROWS_PER_FILE}")
    return output, printed


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
    output = str(claims_run[0])
    line_of = {}
    for category in CATEGORIES:
        for number, text in enumerate(_lines(mixed_input / f"meta_{category}.jsonl"), 1):
            try:
                line_of[json.loads(text)["parent_asin"]] = (category, number)
            except ValueError:
                continue
    assert manifest(output)["spark"]["read_tasks"] >= 2 * len(CATEGORIES)  # every file read in several splits
    for split in ("items", "train"):  # (test, scaled down from 1,000, holds only a few rows)
        by_folder: dict[str, list[list[tuple]]] = {}
        for path in split_files(output, split):  # file name order
            asins = pq.read_table(path, columns=["parent_asin"]).column("parent_asin").to_pylist()
            assert len(asins) <= ROWS_PER_FILE, path
            by_folder.setdefault(os.path.dirname(path), []).append([line_of[a] for a in asins])
        assert len(by_folder) == len(CATEGORIES), split
        for folder, files in by_folder.items():
            rows = [row for rows in files for row in rows]
            assert {category for category, _ in rows} == {folder.rsplit("category=", 1)[1]}, folder
            assert len(files) >= 2 and rows == sorted(rows), folder  # input order, across the files


@pytest.fixture(scope="module")
def course_run(spark, mixed_input, tmp_path_factory):
    """The CLI with small splits (there are enough items: not scaled) and over-full price slots (most balanced
    items are in no split); its output and what it printed."""
    output = tmp_path_factory.mktemp("course") / "out"
    printed = run_cli("--config", "conf/course.yaml", "--input", str(mixed_input), "--output", str(output),
                      "--categories", "all", "--set", "split.train=30", "--set", "split.test=5",
                      "--set", "balance.slot_cap=1")
    return output, printed


def test_splits_that_are_not_scaled_are_not_said_to_be(course_run):
    output, printed = course_run
    splits = manifest(str(output))["splits"]
    assert splits["sizes"] == splits["requested"] == {"train": 30, "test": 5, "validation": 0}
    assert splits["scaled"] is False
    assert "summary" in printed and "split: train" in printed  # the summary was printed, without the note
    assert "scaled" not in printed and "scaled" not in (output / "README.md").read_text()


def expected_balanced_slots(output) -> dict[str, int]:
    """The balanced set per $1 slot, counted here from the written items: balancing keeps every item of a slot
    at or above keep_all_from, and at most slot_cap of any other slot in the recipe's range."""
    info = manifest(str(output))
    balance, rules = info["config"]["balance"], info["recipe"]["parameters"]
    low, high = max(1, round(rules["min_price"])), round(rules["max_price"])  # the recipe's whole-dollar slots
    kept = Counter(round(row[1]) for row in split_rows(str(output), "items"))  # Python's rounding, as the prompt's
    return {str(slot): n if slot >= balance["keep_all_from"] else min(n, balance["slot_cap"])
            for slot, n in sorted(kept.items()) if low <= slot <= high}


def test_the_report_shows_every_balanced_item_not_only_the_splits(course_run):
    output = course_run[0]
    info, expected = manifest(str(output)), expected_balanced_slots(output)
    assert info["accounting"]["kept"] > sum(expected.values()) > 35  # the cut dropped items; the splits hold 35
    assert info["balanced_by_price_slot"] == expected and info["balanced"] == sum(expected.values())
    write_report(output)
    numbers = json.loads((output / "report" / "report.json").read_text())
    assert numbers["after_balancing_rows"] == sum(expected.values()) and numbers["train"] + numbers["test"] == 35
    assert numbers["price_mean_after"] == pytest.approx(sum(int(s) * n for s, n in expected.items())
                                                        / sum(expected.values()))
    for split in ("train", "test"):  # every split row's price lies in a slot the balanced set holds
        assert all(str(round(row[1])) in expected for row in split_rows(str(output), split))


def test_a_failed_run_leaves_the_previous_dataset_and_only_its_items_which_the_next_run_resumes_from(
        spark, course_run, mixed_input, monkeypatch):
    course_run = course_run[0]
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
    assert left.startswith("data-") and kept == sorted(["curated", layout.ITEMS_DONE, layout.DEDUP_DONE,
                                                        layout.MARKER])
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
    (nothing is replaced); a file put beside it is someone else's and stays, and a folder holding only such
    files, or a folder named like a data folder without the marker, is refused."""
    from pricecurate.spark.fs import HadoopFS

    output = tmp_path / "out"
    folder = output / "data-20260101T000000-0123456789ab"
    folder.mkdir(parents=True)
    (folder / layout.MARKER).write_text("{}")
    fs = HadoopFS(spark)

    def claim(where, overwrite):
        publish.claim(publish.survey(fs, str(where), lambda manifest: ""), str(where), overwrite)

    claim(output, overwrite=False)
    (output / "notes.txt").write_text("mine")
    claim(output, overwrite=False)
    (folder / layout.MARKER).unlink()  # the same name, holding something not made by a run: not ours
    (folder / "mine.txt").write_text("mine")
    with pytest.raises(OutputError, match="is not a pricecurate dataset"):
        claim(output, overwrite=True)
