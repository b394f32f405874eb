"""Bounded output files: many files per big category, each within write.rows_per_file, rows in input order."""

from __future__ import annotations

import json
import os
from collections import Counter

import pyarrow.parquet as pq
import pytest
from helpers import manifest, split_files

from pricecurate.config import load_config
from pricecurate.output.write import write_tasks
from pricecurate.pipeline.job import run_job
from pricecurate.sample import write_sample

ROWS_PER_FILE = 40


def test_write_tasks_bound_the_rows_per_task_and_keep_small_outputs_whole():
    assert write_tasks(10_000, 500_000, cores=64) == 1  # small: one task, one file per category
    assert write_tasks(30_000_000, 500_000, cores=8) == 60  # big: the file bound decides
    assert write_tasks(2_000_000, 500_000, cores=64) == 128  # enough rows for every core
    assert write_tasks(0, 500_000, cores=4) == 1


@pytest.fixture(scope="module")
def bounded_run(spark, tmp_path_factory):
    source = tmp_path_factory.mktemp("bounded") / "in"
    write_sample(source, records_per_category=500, categories=["Automotive", "Books"])
    output = str(tmp_path_factory.mktemp("bounded-out") / "out")
    config = load_config("conf/course.yaml", ["categories=all", "split.train=150", "split.test=30",
                                               f"write.rows_per_file={ROWS_PER_FILE}"])
    run_job(spark, config, str(source), output)
    order = {}  # parent_asin -> (file, line), as the input lists them
    for path in sorted(source.iterdir()):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                order[json.loads(line)["parent_asin"]] = (path.name, number)
    return output, order


@pytest.mark.parametrize("dataset", ["items", "train", "test"])
def test_files_hold_at_most_rows_per_file_in_input_order(bounded_run, dataset):
    output, order = bounded_run
    files = split_files(output, dataset)
    by_folder = Counter(os.path.dirname(path) for path in files)
    rows = {path: pq.read_table(path).column("parent_asin").to_pylist() for path in files}
    assert all(0 < len(asins) <= ROWS_PER_FILE for asins in rows.values())
    for folder in by_folder:
        in_name_order = [asin for path in sorted(rows) if os.path.dirname(path) == folder for asin in rows[path]]
        assert [order[a] for a in in_name_order] == sorted(order[a] for a in in_name_order), folder
    counts = manifest(output)["categories"]
    column = "kept" if dataset == "items" else dataset
    assert sum(len(a) for a in rows.values()) == sum(c[column] for c in counts.values())
    if dataset == "items":  # a category bigger than a file is written as several files
        assert max(by_folder.values()) >= 2


def test_bounded_files_load_with_datasets(bounded_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    output, _ = bounded_run
    # A cache of its own: `datasets` keys a folder's cache by its name and globs, and other tests' outputs are "out" too.
    loaded = datasets.load_dataset(output, cache_dir=str(tmp_path))
    sizes = manifest(output)["splits"]["sizes"]
    assert loaded["train"].num_rows == sizes["train"] and loaded["test"].num_rows == sizes["test"]
