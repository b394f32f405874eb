"""The plan before a run: records from file heads, read tasks, the kept share on a sample, the wall time."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import replace
from types import SimpleNamespace

import pytest
from conftest import SHARED, require_shared

from pricecurate.config import load_config
from pricecurate.pipeline.bench_model import (
    DEFAULT_AFTER_US,
    DEFAULT_BASELINE_US,
    DEFAULT_DEDUP_US,
    DEFAULT_FIXED_SECONDS,
    DEFAULT_REPORT_SECONDS,
    DEFAULT_TRAIN_SHARE,
    README_BENCH,
    BenchModel,
    bench_rates,
    model_from_bench,
    save_bench,
    wall_time,
)
from pricecurate.pipeline.estimate import (
    SAMPLE_BYTES,
    describe,
    estimate,
    estimate_for_run,
    head_lines,
    plan_run,
    read_tasks,
    records_in,
    sampled_kept_share,
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


# A bench's result as scripts/bench.py saves it, cut to what the model reads; the figures come out round:
# 1,000,000 records beyond the tiny run's, 250,000 kept by the rules in every run.
BENCH = {
    "date": "2026-12-07", "records": 1_000_680, "tiny_records": 680,
    "stage_seconds": {"local1": {"items": 70.0}, "local2": {"items": 45.0}, "local2_exact": {"items": 52.0},
                      "local2_default": {"items": 70.0}},
    "stage_seconds_tiny": {"local1": {"items": 10.0}, "local2": {"items": 10.0}, "local2_exact": {"items": 12.0},
                           "local2_default": {"items": 15.0}},
    "fixed_cost_s": {"local1": 49.0, "local1_unpinned": 31.0, "local2": 25.0, "local2_exact": 33.0,
                     "local2_default": 40.0},
    "wall_s": {"local1": 140.0, "local1_unpinned": 101.0, "local2": 80.0, "local2_exact": 95.0,
               "local2_default": 110.0},
    "kept": {"local2": 250_000, "local2_exact": 240_000, "local2_default": 236_000},
    "rules_kept": {"local2": 250_000, "local2_exact": 250_000, "local2_default": 250_000},
    "baselines": {"fit_s": 50.0, "train_items": 125_000},
}


def _plan(texts: dict[str, bytes], scale: dict[str, int] | None = None) -> tuple[InputPlan, dict[str, bytes]]:
    """Files named meta_<name>.jsonl whose heads are ``texts``; a file ``scale`` times its head's size."""
    files = [InputFile(f"file:/in/meta_{name}.jsonl", f"meta_{name}.jsonl", name,
                       len(text) * (scale or {}).get(name, 1)) for name, text in texts.items()]
    return InputPlan(files, [], []), {f"meta_{name}.jsonl": text for name, text in texts.items()}


def test_the_model_is_the_readme_s_until_a_bench_and_figure_by_figure_after_an_older_one(tmp_path):
    assert bench_rates(tmp_path) == BenchModel() and BenchModel().source.startswith("the README's bench")
    # An older bench's result: no stage seconds, kept counts or date; what it has is used, the rest is the README's.
    saved = save_bench(tmp_path, {"job_local1_rps": 5000.0, "fixed_cost_s": {"local2": 20.0},
                                  "ratios": {"local2_default_vs_local2": 0.5}, "_runs": "the bench's own"})
    model = bench_rates(tmp_path)
    assert model.fixed_seconds == {**BenchModel().fixed_seconds, "none": 20.0}
    assert (model.items_rate_per_core, model.after_us, model.dedup_us) == (
        BenchModel().items_rate_per_core, BenchModel().after_us, BenchModel().dedup_us)
    assert model.source.startswith("this machine's bench of 20") and "fixed_seconds.near" in model.defaulted
    plan, heads = _plan({"Books": _lines(10)})
    said = describe(estimate(plan, heads, 2**20, 2, load_config("conf/course.yaml"), model))[-1]
    assert "12s fixed" not in said and "20s fixed" in said  # the bench's, and the README's only for what it lacks:
    assert "(the README's items rate, 2-core speedup, kept share, cost after the rules)" in said
    assert "_runs" not in json.loads(saved.read_text()) and sorted(p.name for p in tmp_path.iterdir()) == [saved.name]
    for broken in ("{not json", "[1, 2]"):
        saved.write_text(broken)
        assert bench_rates(tmp_path) == BenchModel()
    saved.write_text('{"records": "many", "fixed_cost_s": {"local2": "soon"}}')  # every figure the README's
    assert replace(bench_rates(tmp_path), source=README_BENCH, defaulted=()) == BenchModel()


def test_the_model_takes_a_bench_apart(tmp_path):
    save_bench(tmp_path, BENCH)
    model = bench_rates(tmp_path)
    assert model.source == "this machine's bench of 2026-12-07" and model.defaulted == ()
    assert model.items_rate_per_core == pytest.approx(1_000_000 / 60)  # the item rules' stage on one CPU
    assert model.two_core_speedup == pytest.approx(60 / 35)
    assert model.spare_cpu_speedup == pytest.approx(91 / 70)  # local[1] beyond its tiny run, held to one CPU or not
    assert model.fixed_seconds == {"none": 25.0, "exact": 33.0, "near": 40.0}
    # Beyond the tiny run and outside the item rules' stage: 20, 22 and 15 s over 250,000 kept items.
    assert model.after_us == pytest.approx({"none": 80.0, "exact": 88.0, "near": 60.0})
    assert model.dedup_us == pytest.approx({"exact": 20.0, "near": 60.0})  # 5 s and 15 s more in that stage
    assert model.kept_share == pytest.approx(250_000 / 1_000_680)
    assert (model.baseline_us, model.train_share) == pytest.approx((400.0, 0.5))
    # Noise that makes exact dedup look free is no cost, not the README's figure; a missing run is the README's.
    noisy = {**BENCH, "stage_seconds": {**BENCH["stage_seconds"], "local2_exact": {"items": 40.0}}}
    assert model_from_bench(noisy, "noisy").dedup_us["exact"] == 0.0
    del noisy["baselines"]
    assert model_from_bench(noisy, "noisy").baseline_us == DEFAULT_BASELINE_US


def test_the_wall_time_adds_the_terms_its_config_needs():
    model = BenchModel(items_rate_per_core=10_000.0, two_core_speedup=1.5)
    course, default = load_config("conf/course.yaml"), load_config("conf/default.yaml")
    wall = wall_time(1_000_000, 250_000, 2, course, model)
    assert [name for name, _ in wall.terms] == ["fixed", "item rules", "after the rules"]
    assert wall.without_report == pytest.approx(DEFAULT_FIXED_SECONDS["none"] + 1_000_000 / 15_000
                                                + 250_000 * DEFAULT_AFTER_US["none"] * 1e-6)
    assert wall.total == pytest.approx(wall.without_report + DEFAULT_REPORT_SECONDS)
    # Four cores: each past the first adds what the second did; the kept items' terms scale the same way.
    four = dict(wall_time(1_000_000, 250_000, 4, course, model).terms)
    assert four["item rules"] == pytest.approx(1_000_000 / 25_000)
    assert four["after the rules"] == pytest.approx(dict(wall.terms)["after the rules"] * 1.5 / 2.5)
    near = dict(wall_time(1_000_000, 250_000, 2, default, model).terms)
    assert near["fixed"] == DEFAULT_FIXED_SECONDS["near"]
    assert near["exact duplicates"] == pytest.approx(250_000 * DEFAULT_DEDUP_US["exact"] * 1e-6)
    assert near["near duplicates"] == pytest.approx(250_000 * DEFAULT_DEDUP_US["near"] * 1e-6)
    assert near["baselines"] == pytest.approx(250_000 * DEFAULT_TRAIN_SHARE * DEFAULT_BASELINE_US * 1e-6)
    only_near = dict(wall_time(1000, 250, 2, load_config("conf/default.yaml", ["dedup=near"]), model).terms)
    assert "near duplicates" in only_near and "exact duplicates" not in only_near
    # CPUs no task slot uses: all but the fixed cost goes faster, by the bench's local[1] gain for each slot with one.
    model = replace(model, spare_cpu_speedup=1.3)
    one, spare = dict(wall_time(1_000_000, 250_000, 1, default, model).terms), {}
    for cpus, factor in ((1, 1.3), (5, 1.3)):
        spare = dict(wall_time(1_000_000, 250_000, 1, default, model, spare_cpus=cpus).terms)
        assert spare["fixed"] == one["fixed"] and spare["baselines"] == one["baselines"]
        for name in ("item rules", "exact duplicates", "near duplicates", "after the rules"):
            assert spare[name] == pytest.approx(one[name] / factor)
    half = dict(wall_time(1_000_000, 250_000, 2, default, model, spare_cpus=1).terms)
    assert half["item rules"] == pytest.approx(near["item rules"] / 1.15)  # one of two slots has a CPU beside it
    assert dict(wall_time(1_000_000, 250_000, 2, default, model, spare_cpus=0).terms) == near


def test_spare_cpus_are_a_local_runs_only(monkeypatch):
    import os

    from pricecurate.pipeline.estimate import spare_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert (spare_cpus("local[1]", 1), spare_cpus("local[*]", 4), spare_cpus("local[8]", 8)) == (3, 0, 0)
    assert spare_cpus("spark://cluster:7077", 1) == 0  # the executors are other machines
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # held to one CPU, as the bench's pinned run
    assert spare_cpus("local[1]", 1) == 0


def test_the_estimate_adds_up_and_says_what_it_assumes():
    text = _lines(800)  # under the head size: the heads are the whole files, so the counts are exact
    files = [InputFile(f"file:/in/meta_{c}.jsonl", f"meta_{c}.jsonl", c, len(text)) for c in ("Books", "Software")]
    packed = gzip.compress(text)
    files.append(InputFile("file:/in/meta_Unknown.jsonl.gz", "meta_Unknown.jsonl.gz", "Unknown", len(packed)))
    heads = {f.name: (packed if f.name.endswith(".gz") else text)[:SAMPLE_BYTES] for f in files}
    model = BenchModel(items_rate_per_core=1000.0, two_core_speedup=2.0, fixed_seconds={"none": 10.0},
                       after_us={"none": 1000.0}, report_seconds=3.0, source="a test bench")
    config = load_config("conf/course.yaml")
    split = 2**18
    run = estimate(InputPlan(files, [], []), heads, split, 2, config, model, kept_share=0.25)
    tasks = 2 * -(-len(text) // split) + 1
    assert run.records == 2400 and run.read_tasks == tasks and [f.file.name for f in run.compressed] == [
        "meta_Unknown.jsonl.gz"]
    assert run.seconds == pytest.approx(10 + 2400 / 2000 + 600 * 1e-3 + 3)
    assert run.output_bytes == round((600 + 600) * 210)  # kept items, and splits of at most the kept
    lines = describe(run)
    assert "3 file(s)" in lines[-5] and f"about 2,400 records in {tasks} read task(s)" in lines[-5]
    assert "cannot be split: meta_Unknown.jsonl.gz" in lines[-4]
    assert "25.0% of the sampled lines" in lines[-3] and "about 600 items" in lines[-3]
    assert lines[-2] == ("estimated wall time: 15s (12s with --no-report) = 10s fixed + 1s item rules + 1s after the "
                         "rules + 3s report")
    assert lines[-1].startswith("  assumes 1,000 records/s per core in the item rules (x2.00 on 2 cores); 600 kept "
                                "items (25.0%, sampled) at 1,000 µs each after the rules; 10s fixed (the bench's tiny "
                                "run at local[2], no dedup)")
    assert lines[-1].endswith("from a test bench; other records or machines differ")
    busy = describe(replace(run, load=(5.2, 2)))[-1]
    assert busy.endswith("from a test bench; the machine is busy (1-minute load 5.2 on 2 CPUs): expect longer; "
                         "other records or machines differ")
    assert describe(replace(run, load=(1.5, 2)))[-1] == lines[-1]
    beside = estimate(InputPlan(files, [], []), heads, split, 2, config, replace(model, spare_cpu_speedup=1.5),
                      kept_share=0.25, spare_cpus=2)
    assert beside.seconds == pytest.approx(10 + (2400 / 2000 + 600 * 1e-3) / 1.5 + 3)
    assert "(x2.00 on 2 cores; all but the fixed cost x1.50 with 2 CPU(s) no task uses)" in describe(beside)[-1]


def test_a_run_samples_its_kept_share_only_when_the_kept_items_matter(monkeypatch):
    from pricecurate.rules import lines as rules_lines

    # The recipe stands in for a codec here: lines holding "keep" are kept.
    monkeypatch.setattr(rules_lines, "build_items", lambda lines, codec, rules: [
        SimpleNamespace(status=rules_lines.KEPT if b"keep" in line else "dropped") for line in lines])
    keep, drop = b'{"keep": 1}\n' * 50, b'{"drop": 1}\n' * 50
    plan, heads = _plan({"Books": keep, "Software": drop}, scale={"Books": 9})
    config = load_config("conf/course.yaml")

    def no_codec():
        raise AssertionError("a codec built for a small input")

    small = estimate_for_run(plan, heads, 2**20, 2, config, BenchModel(), no_codec)
    assert small.kept_share is None and small.kept_items == pytest.approx(500 * BenchModel().kept_share)
    assert "the bench corpus's; not sampled" in describe(small)[-1]
    costly = BenchModel(after_us={"none": 10_000.0})  # 500 records at 24.5% kept: over a second at stake
    built = []
    sampled = estimate_for_run(plan, heads, 2**20, 2, config, costly, lambda: built.append(1) or "codec")
    assert built == [1] and sampled.kept_share == pytest.approx(0.9)  # Books holds 450 of the 500 records
    assert sampled_kept_share(plan, heads, "codec", config.recipe) == pytest.approx(0.9)
    assert sampled_kept_share(*_plan({"Books": b""}), "codec", config.recipe) is None


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
    files = len(list((SHARED / "data" / "real").glob("meta_*")))
    assert sum(1 for line in lines if line.startswith("  meta_")) == files
    assert any(line.startswith("kept by the recipe:") for line in lines)
    assert lines[-2].startswith("estimated wall time:") and lines[-1].startswith("  assumes ")
