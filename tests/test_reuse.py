"""Reusing curated items: identical to a full run, row for row; refused, with the reason, when anything differs."""

from __future__ import annotations

import io
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from helpers import manifest, split_rows

from pricecurate.config import load_config
from pricecurate.output.layout import CURATED, DUPLICATES
from pricecurate.pipeline import reuse
from pricecurate.pipeline.job import run_job, runs_python_on_reused
from pricecurate.pipeline.progress import Progress
from pricecurate.rules.recipe import COURSE_2024, Recipe
from pricecurate.sample import write_sample

FIRST = ["categories=all", "split.train=80", "split.test=10", "dedup=none"]
# Another dedup, seed, balance and split: none of them changes what the rules make of a line.
SECOND = ["categories=all", "split.train=60", "split.test=15", "split.validation=5", "dedup=title,text",
          "seed=9", "balance.slot_cap=3"]


def _key(**changes) -> dict:
    inputs = [{"file": "meta_A.jsonl", "bytes": 10, "modified": 1, "head_sha256": "h", "tail_sha256": "t"}]
    key = {"inputs": inputs, "recipe_hash": COURSE_2024.digest, "tokenizer_sha256": "f" * 64, "max_record_bytes": 5,
           "max_gzip_bytes": 8}
    for name, value in changes.items():
        if name in inputs[0]:
            key["inputs"] = [{**inputs[0], name: value}]
        else:
            key[name] = value
    return key


@pytest.mark.parametrize("change, reason", [
    ({"bytes": 11}, "input file meta_A.jsonl changed (size 10 -> 11)"),
    ({"modified": 2}, "input file meta_A.jsonl changed (modification time 1 -> 2)"),
    ({"head_sha256": "x"}, "input file meta_A.jsonl changed (first MB h -> x)"),
    ({"tail_sha256": "x"}, "input file meta_A.jsonl changed (last MB t -> x)"),
    ({"recipe_hash": Recipe(max_tokens=200).digest}, f"the recipe changed (parameter hash {COURSE_2024.digest} -> "),
    ({"tokenizer_sha256": "e" * 64}, "the tokenizer changed (sha256 ffffffffffff -> eeeeeeeeeeee)"),
    ({"max_record_bytes": 6}, "max_record_bytes changed (5 -> 6)"),
    ({"max_gzip_bytes": 9}, "max_gzip_bytes changed (8 -> 9)"),
])
def test_each_difference_is_named(change, reason):
    assert reuse.difference(_key(), _key()) is None
    assert reuse.difference(_key(), _key(**change)).startswith(reason)
    more = _key()
    more["inputs"] = more["inputs"] + [{**more["inputs"][0], "file": "meta_B.jsonl"}]
    assert reuse.difference(_key(), more) == "input file meta_B.jsonl is new"
    assert reuse.difference(more, _key()) == "input file meta_B.jsonl was read then and is not now"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reuse") / "in"
    write_sample(folder, records_per_category=60, categories=["Automotive", "Toys_and_Games"])
    records = [json.loads(line) for line in (folder / "meta_Toys_and_Games.jsonl").read_text().splitlines()]
    with open(folder / "meta_Automotive.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"not closed"\n')  # a quarantined line travels with the reused items too
        for record in records[:30]:  # the same products listed again: the second run's dedup drops them
            handle.write(json.dumps({**record, "parent_asin": "R" + record["parent_asin"]}) + "\n")
    return folder


@pytest.fixture(scope="module")
def first(spark, source, tmp_path_factory):
    output = tmp_path_factory.mktemp("reuse") / "first"
    run_job(spark, load_config("conf/course.yaml", FIRST), str(source), str(output))
    return output


def _datasets(output) -> dict:
    return {name: split_rows(str(output), name) for name in ("items", "train", "test", "validation")}


def _curated(output) -> list:
    return _rows(output, CURATED)


def _rows(output, folder: str) -> list:
    """The rows of a Parquet folder in the output's data folder, sorted, columns in name order."""
    table = pq.read_table(os.path.join(str(output), manifest(str(output))["data"], folder))
    return sorted(map(tuple, zip(*[table.column(name).to_pylist() for name in sorted(table.column_names)])),
                  key=repr)


def _quarantine(output) -> list:
    folder = os.path.join(str(output), manifest(str(output))["data"], "quarantine")
    return sorted(line for name in sorted(os.listdir(folder)) if name.endswith(".json")
                  for line in open(os.path.join(folder, name), encoding="utf-8"))


@pytest.fixture(scope="module")
def second(spark, source, first, tmp_path_factory):
    """SECOND's settings on the first run's items, and from scratch: (reused output, its result, full, result)."""
    reused, full = tmp_path_factory.mktemp("reuse") / "reused", tmp_path_factory.mktemp("reuse") / "full"
    result = run_job(spark, load_config("conf/course.yaml", [*SECOND, f"reuse_items={first}"]), str(source),
                     str(reused))
    expected = run_job(spark, load_config("conf/course.yaml", SECOND), str(source), str(full))
    return reused, result, full, expected


def test_reused_items_give_the_full_runs_dataset_row_for_row(first, second):
    reused, result, full, expected = second
    assert _datasets(reused) == _datasets(full) and _datasets(full)["validation"]
    assert _quarantine(reused) == _quarantine(full) and len(_quarantine(full)) == 1
    got, want = result.manifest, expected.manifest
    assert got["accounting"] == want["accounting"] and got["accounting"]["dropped"].get("duplicate_title")
    assert got["spark"]["rule_records"] == 0 < want["spark"]["rule_records"]  # the rules did not run
    assert got["curation"]["reused_from"].endswith("/first") and want["curation"]["reused_from"] is None
    assert got["curation"]["key"] == want["curation"]["key"] and got["curation"]["tally"] == want["curation"]["tally"]
    assert got["curation"]["dedup"] == want["curation"]["dedup"]
    # The reused run keeps the same curated items in turn, so a third run could reuse it.
    assert _curated(reused) == _curated(first) == _curated(full) and len(_curated(full)) > 30


def test_the_same_dedup_settings_and_seed_reuse_the_duplicates_found(spark, source, second, tmp_path):
    """Other balancing and splits over SECOND's dedup and seed: the lines it marked are marked again, unsearched."""
    reused_before, _, full_before, _ = second
    third = [*SECOND, "balance.slot_cap=2", "split.train=40", "split.test=12", "split.validation=0"]
    log = io.StringIO()
    got = run_job(spark, load_config("conf/course.yaml", [*third, f"reuse_items={reused_before}"]), str(source),
                  str(tmp_path / "reused"), progress=Progress(stream=log)).manifest
    want = run_job(spark, load_config("conf/course.yaml", third), str(source), str(tmp_path / "full")).manifest
    marked = sum(got["accounting"]["dropped"].get(reason, 0) for reason in ("duplicate_title", "duplicate_text"))
    assert marked > 0 and f"duplicates: the {marked:,} lines file:{reused_before} marked" in log.getvalue()
    assert f"items dataset: copied from file:{reused_before}" in log.getvalue()
    assert _datasets(tmp_path / "reused") == _datasets(tmp_path / "full")
    assert _datasets(tmp_path / "full") != _datasets(full_before)  # the new settings did change the dataset
    assert got["accounting"] == want["accounting"] and got["curation"]["dedup"] == want["curation"]["dedup"]
    duplicates = _rows(tmp_path / "reused", DUPLICATES)
    assert duplicates == _rows(tmp_path / "full", DUPLICATES) == _rows(reused_before, DUPLICATES)
    assert len(duplicates) == marked


def test_without_dedup_another_seed_copies_the_items_dataset(spark, source, first, tmp_path):
    """No deduplication: the items dataset is every kept item whatever the seed, so a reused run copies it."""
    other = [*FIRST, "seed=7", "split.train=50"]
    log = io.StringIO()
    run_job(spark, load_config("conf/course.yaml", [*other, f"reuse_items={first}"]), str(source),
            str(tmp_path / "reused"), progress=Progress(stream=log))
    run_job(spark, load_config("conf/course.yaml", other), str(source), str(tmp_path / "full"))
    assert f"items dataset: copied from file:{first}" in log.getvalue()
    assert _datasets(tmp_path / "reused") == _datasets(tmp_path / "full") != _datasets(first)


def _refusal(spark, config, source, output) -> str:
    with pytest.raises(reuse.ReuseError) as caught:
        run_job(spark, config, str(source), str(output))
    message = str(caught.value)
    assert "\n" not in message and not os.path.exists(output)
    return message


def test_reuse_is_refused_when_an_input_the_recipe_or_the_tokenizer_changed(spark, source, first, tmp_path):
    changed = tmp_path / "in"
    shutil.copytree(source, changed)
    with open(changed / "meta_Toys_and_Games.jsonl", "a", encoding="utf-8") as handle:
        handle.write("\n")
    message = _refusal(spark, load_config("conf/course.yaml", [*SECOND, f"reuse_items={first}"]), changed,
                       tmp_path / "a")
    assert message.startswith(f"cannot reuse the items of file:{first}: input file meta_Toys_and_Games.jsonl changed")

    message = _refusal(spark, load_config("conf/course.yaml", [*SECOND, f"reuse_items={first}",
                                                               "recipe.max_tokens=170"]), source, tmp_path / "b")
    assert "the recipe changed (parameter hash" in message

    from pricecurate.tokenizer.spec import load_spec

    tokenizer = json.loads(load_spec().json)
    tokenizer["truncation"] = {"direction": "Right", "max_length": 9, "strategy": "LongestFirst", "stride": 0}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")  # same tokens, other file
    message = _refusal(spark, load_config("conf/course.yaml", [*SECOND, f"reuse_items={first}",
                                                               f"tokenizer={tmp_path / 'tokenizer.json'}"]),
                       source, tmp_path / "c")
    assert "the tokenizer changed (sha256" in message

    message = _refusal(spark, load_config("conf/course.yaml", [*SECOND, f"reuse_items={tmp_path}"]), source,
                       tmp_path / "d")
    assert "has no manifest.json" in message


@pytest.mark.parametrize("change", ["lose a file", "cut a file short", "add a file"])
def test_curated_items_that_changed_since_their_run_are_refused_with_one_line(spark, source, first, tmp_path, change):
    """The items are checked against the file list and sizes their run recorded before anything is copied or
    read: a damaged copy of them never becomes a dataset."""
    copy = tmp_path / "first"
    shutil.copytree(first, copy)
    folder = copy / manifest(str(copy))["data"] / CURATED
    parts = sorted(folder.rglob("*.parquet"))
    if change == "lose a file":
        parts[0].unlink()
    elif change == "cut a file short":
        parts[0].write_bytes(parts[0].read_bytes()[:100])
    else:
        shutil.copy(parts[0], folder / "part-99999-extra.snappy.parquet")
    output = tmp_path / "out"
    with pytest.raises(reuse.ReuseError, match="changed since its run wrote it") as refused:
        run_job(spark, load_config("conf/course.yaml", [*SECOND, f"reuse_items={copy}"]), str(source), str(output))
    assert "\n" not in str(refused.value)
    assert not output.exists() or not [n for n in os.listdir(output) if not n.startswith(".")]


def test_python_workers_are_warmed_for_a_reused_run_only_when_it_runs_python():
    """Reused marks that imply the leakage check leave no Python work; new marks or a leakage check do."""
    near = load_config(None, ["dedup=title,text,near"])
    exact = load_config(None, ["dedup=title,text"])

    def curation(config, star_buckets=0, seed=None):
        key = reuse.dedup_key(config.dedup, config.near, config.seed if seed is None else seed)
        near_found = {"star_buckets": star_buckets} if "near" in config.dedup else None
        return {"dedup": {"key": key, "near": near_found}}

    assert not runs_python_on_reused(near, curation(near))  # marks reused, every bucket's pairs compared
    assert runs_python_on_reused(near, curation(near, star_buckets=3))  # the check runs on the crowded buckets
    assert runs_python_on_reused(near, curation(near, seed=7))  # near-duplicates signed anew
    assert runs_python_on_reused(exact, curation(exact))  # no near-duplicate removal: the check runs
    assert runs_python_on_reused(near, {})  # never deduplicated
