"""The plan before a run: records from file heads, read tasks, the kept share on a sample, the wall time."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from conftest import SHARED, require_shared

from pricecurate.config import load_config
from pricecurate.pipeline.estimate import (
    DEFAULT_RATE_PER_CORE,
    SAMPLE_BYTES,
    bench_rates,
    describe,
    estimate,
    head_lines,
    plan_run,
    read_tasks,
    records_in,
    save_bench,
)
from pricecurate.pipeline.read import InputFile, InputPlan


def _lines(count: int, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    return b"".join(json.dumps({"title": "x" * rng.randint(200, 1800), "n": i}).encode() + b"\n"
                    for i in range(count))


def test_records_from_the_head_of_a_plain_and_a_gzipped_file():
    text = _lines(6000)  # about 6 MB: the head is a sixth of it
    plain = InputFile("file:/in/meta_Books.jsonl", "meta_Books.jsonl", "Books", len(text))
    per_line, records = records_in(plain, text[:SAMPLE_BYTES])
    assert abs(records - 6000) / 6000 < 0.05 and 1000 < per_line < 1100
    packed = gzip.compress(text)
    zipped = InputFile("file:/in/meta_Books.jsonl.gz", "meta_Books.jsonl.gz", "Books", len(packed))
    _, records = records_in(zipped, packed[:SAMPLE_BYTES // 8])
    assert abs(records - 6000) / 6000 < 0.05
    assert head_lines(b"not gzip", True) == (0, []) and records_in(zipped, b"") == (None, 0)
    assert head_lines(b'{"a": 1}\n{"b": 2', False) == (16, [b'{"a": 1}'])  # a cut last line is not counted


def test_read_tasks_follow_the_split_size_and_compressed_files_are_one():
    assert read_tasks(InputFile("u", "meta_A.jsonl", "A", 10 * 2**20 + 1), 2**20) == 11
    assert read_tasks(InputFile("u", "meta_A.jsonl.gz", "A", 10 * 2**30), 2**20) == 1
    assert read_tasks(InputFile("u", "meta_A.jsonl", "A", 0), 2**20) == 1


def test_the_rate_comes_from_the_last_bench_else_the_readme(tmp_path):
    rate, fixed, near, source = bench_rates(tmp_path)
    assert (rate, source) == (DEFAULT_RATE_PER_CORE, "the README's bench figures")
    saved = save_bench(tmp_path, {"job_local1_rps": 5000.0, "fixed_cost_s": {"local2": 20.0},
                                  "ratios": {"local2_default_vs_local2": 0.5}, "_runs": "the bench's own"})
    assert bench_rates(tmp_path)[:3] == (5000.0, 20.0, 0.5) and str(saved) in bench_rates(tmp_path)[3]
    assert "_runs" not in json.loads(saved.read_text()) and sorted(p.name for p in tmp_path.iterdir()) == [saved.name]


def test_the_estimate_adds_up(tmp_path):
    text = _lines(800)  # under the head size: the heads are the whole files, so the counts are exact
    files = [InputFile(f"file:/in/meta_{c}.jsonl", f"meta_{c}.jsonl", c, len(text)) for c in ("Books", "Software")]
    packed = gzip.compress(text)
    files.append(InputFile("file:/in/meta_Unknown.jsonl.gz", "meta_Unknown.jsonl.gz", "Unknown", len(packed)))
    heads = {f.name: (packed if f.name.endswith(".gz") else text)[:SAMPLE_BYTES] for f in files}
    (tmp_path / "bench-last.json").write_text(json.dumps(
        {"job_local1_rps": 1000.0, "fixed_cost_s": {"local2": 10.0}, "ratios": {}}))
    config = load_config("conf/course.yaml")
    split = 2**18
    run = estimate(InputPlan(files, [], []), heads, split, 2, config, tmp_path, kept_share=0.25)
    tasks = 2 * -(-len(text) // split) + 1
    assert run.records == 2400 and run.read_tasks == tasks and [f.file.name for f in run.compressed] == [
        "meta_Unknown.jsonl.gz"]
    assert run.seconds == pytest.approx(10 + 2400 / 2000)
    assert run.output_bytes == round((600 + 600) * 210)  # kept items, and splits of at most the kept
    lines = describe(run)
    assert "3 file(s)" in lines[-4] and f"about 2,400 records in {tasks} read task(s)" in lines[-4]
    assert "cannot be split: meta_Unknown.jsonl.gz" in lines[-3]
    assert "25.0% of the sampled lines, about 600 items" in lines[-2] and "estimated wall time: 11s" in lines[-1]
    near = load_config("conf/default.yaml")
    assert estimate(InputPlan(files, [], []), heads, split, 2, near, tmp_path).seconds == pytest.approx(
        10 + 2400 / (2 * 1000 * 0.67))  # no ratio in the bench: near at the README's 0.67


def test_plan_on_the_shared_records(spark):
    require_shared()
    config = load_config("conf/course.yaml", ["categories=all"])
    lines = plan_run(spark, config, str(SHARED / "data" / "real"))
    total = sum(1 for path in (SHARED / "data" / "real").glob("*.jsonl")
                for line in path.read_bytes().split(b"\n") if line)
    assert lines[0].startswith("plan for ") and "recipe course-2024" in lines[0] and "tiktoken" in lines[0]
    [summary] = [line for line in lines if "read task(s)" in line]
    estimated = int(summary.split("about ")[1].split(" records")[0].replace(",", ""))
    assert abs(estimated - total) / total < 0.05, (estimated, total)
    assert sum(1 for line in lines if line.startswith("  meta_")) == len(list((SHARED / "data" / "real").glob("meta_*")))
    assert any(line.startswith("kept by the recipe:") for line in lines)
    assert lines[-1].startswith("estimated wall time:")
