"""The Spark job end to end on the shared data, in local mode."""

from __future__ import annotations

import io
import os
from collections import Counter

import pytest
from conftest import SHARED, SHARED_SETS, load_golden, needs_shared, require_shared
from helpers import data_dir, manifest, split_rows
from pyspark.sql import functions as F

from pricecurate.config import load_config
from pricecurate.pipeline.arrow_rules import apply_recipe, number_outcomes, tally_outcomes
from pricecurate.pipeline.job import run_job
from pricecurate.pipeline.progress import Progress
from pricecurate.pipeline.read import discover, plan_layout, read_lines
from pricecurate.rules.recipe import COURSE_2024
from pricecurate.spark.columns import cut_test_prompt
from pricecurate.spark.fs import HadoopFS


@needs_shared
@pytest.mark.parametrize(
    "partitions, many_splits", [(0, False), (3, False), (0, True)], ids=["auto-layout", "3-partitions", "many-splits"]
)
@pytest.mark.parametrize("name", SHARED_SETS)
def test_spark_outcomes_match_golden_line_by_line(spark, tokenizer_spec, name, partitions, many_splits):
    """read + mapInArrow reproduce the reference for every kept (file, line) and every drop count,
    whatever the partitioning or split size; dropped lines come back tallied per file and reason."""
    plan = discover(HadoopFS(spark), str(SHARED / "data" / name), "all")
    settings = {"spark.sql.execution.arrow.maxRecordsPerBatch": "500"}  # many batches per task
    if many_splits:  # about 40 splits in all, most files cut mid-line several times
        split_bytes = max(512, sum(f.size for f in plan.files) // 40)
        settings.update({"spark.sql.files.maxPartitionBytes": str(split_bytes), "spark.sql.files.openCostInBytes": "1"})
    for key, value in settings.items():
        spark.conf.set(key, value)
    lines = read_lines(spark, plan, plan_layout(plan.files, 2, partitions))
    builds = spark.sparkContext.accumulator(0)
    records = spark.sparkContext.accumulator(0)
    spec = spark.sparkContext.broadcast(tokenizer_spec.json)
    cached = apply_recipe(lines, COURSE_2024, spec, tokenizer_spec.sha256, 4 * 1024 * 1024, builds, records=records).cache()
    try:
        read_tasks = lines.rdd.getNumPartitions()
        outcomes = number_outcomes(cached, tally_outcomes(cached))
        rows = outcomes.withColumn("test_prompt", F.when(F.col("status") == "kept", cut_test_prompt(COURSE_2024))).select(
            "file", "line", "status", "reason", "lines", "price", "prompt", "test_prompt", "token_count", "category"
        ).collect()
    finally:
        cached.unpersist()
        for key in settings:
            spark.conf.unset(key)
    golden = load_golden(name)
    assert records.value == len(golden)  # the rules ran once per line
    if many_splits:
        assert read_tasks > len(plan.files) + 10  # files really were split
    itemized = [r for r in rows if r["status"] != "dropped"]
    got_items = {
        (r["file"], r["line"]): (r["reason"], r["price"], r["prompt"], r["test_prompt"], r["token_count"], r["category"])
        for r in itemized
    }
    expected_items = {
        (g["file"].split("/")[-1], g["line"]): (None, g["price"], g["prompt"], g["test_prompt"], g["token_count"], g["category"])
        for g in golden if g["include"]
    }
    assert len(got_items) == len(itemized) and all(r["lines"] == 1 for r in itemized)
    wrong = [key for key in expected_items.keys() | got_items.keys() if got_items.get(key) != expected_items.get(key)]
    assert not wrong, f"{len(wrong)} kept lines differ, e.g. {wrong[:3]}"

    got_drops, expected_drops = Counter(), Counter()
    for r in rows:
        if r["status"] == "dropped":
            assert r["line"] is None and r["prompt"] is None
            got_drops[(r["file"], r["category"], r["reason"])] += r["lines"]
    for g in golden:
        if not g["include"]:
            expected_drops[(g["file"].split("/")[-1], g["category"], g["reason"])] += 1
    assert got_drops == expected_drops
    assert sum(r["lines"] for r in rows) == len(golden)
    # Built once per Python worker, not per batch or task: never more builds than
    # local[2] has workers (zero when the workers kept it from an earlier job).
    assert builds.value <= 2


@pytest.fixture(scope="module")
def real_run(spark, tmp_path_factory):
    require_shared()
    folder = tmp_path_factory.mktemp("real")
    output = folder / "out"
    config = load_config("conf/course.yaml", ["categories=all", "split.train=500", "split.test=20"])
    # Status lines ten times a second into the log, as a long run writes them every 30 s.
    progress = Progress(io.StringIO(), str(folder / "run.log"), interactive=False, log_every=0.1)
    result = run_job(spark, config, str(SHARED / "data" / "real"), str(output), progress=progress)
    progress.close()
    return str(output), result


def test_the_log_of_a_real_run_holds_live_status_lines(real_run):
    output, _ = real_run
    lines = open(os.path.join(os.path.dirname(output), "run.log"), encoding="utf-8").read().splitlines()
    assert any(line.endswith("Spark UI: http://127.0.0.1:4040") or "Spark UI: http://127.0.0.1:" in line
               for line in lines)
    # The plan's summary comes before the work: records estimated from the files' first 64 kB (709 lines).
    [planned] = [line for line in lines if "read task(s)" in line]
    estimated = int(planned.split("about ")[1].split(" records")[0].replace(",", ""))
    assert abs(estimated - 709) < 71 and lines.index(planned) < next(
        i for i, line in enumerate(lines) if line.endswith("items: started"))
    status = [line for line in lines if " tasks, " in line or line.endswith(" tasks")]
    assert any("] items: " in line and "of 1.29 MB read" in line for line in status), lines


def test_manifest_accounts_for_every_line_as_golden_does(real_run):
    output, result = real_run
    golden = load_golden("real")
    info = manifest(output)
    assert info == result.manifest
    acc = info["accounting"]
    assert acc["lines"] == len(golden)
    assert acc["kept"] == sum(g["include"] for g in golden)
    assert acc["dropped"] == dict(sorted(Counter(g["reason"] for g in golden if not g["include"]).items()))
    assert acc["quarantined"] == {}
    assert info["spark"]["rule_records"] == acc["lines"]  # the course config ran the rules once per line
    for name, counts in acc["files"].items():  # each file's lines, kept and drops, counted from golden
        mine = [g for g in golden if g["file"].endswith("/" + name)]
        assert counts["lines"] == len(mine) and counts["kept"] == sum(g["include"] for g in mine), name
        assert counts["dropped"] == dict(sorted(Counter(g["reason"] for g in mine if not g["include"]).items())), name
    assert info["tokenizer"]["name"] == "llama-3.1-8b" and len(info["tokenizer"]["sha256"]) == 64
    assert [f["file"] for f in info["input"]["files"]] == sorted(p.name for p in (SHARED / "data" / "real").iterdir())


def test_items_hold_exactly_the_golden_kept_prompts(real_run):
    output, _ = real_run
    golden = [g for g in load_golden("real") if g["include"]]
    items = split_rows(output, "items")
    assert sorted((r[0], r[2], r[5]) for r in items) == sorted((g["prompt"], g["category"], g["token_count"]) for g in golden)


def test_splits_are_disjoint_balanced_subsets(real_run):
    output, _ = real_run
    info = manifest(output)
    items = split_rows(output, "items")
    train, test = split_rows(output, "train"), split_rows(output, "test")
    sizes = info["splits"]["sizes"]
    assert (len(train), len(test)) == (sizes["train"], sizes["test"])
    item_keys = Counter((r[3], r[1], r[0]) for r in items)
    assert all(item_keys[(r[3], r[1], r[0])] for r in train)  # train rows are items, prompt and all
    test_prompts = {r[0] for r in test}
    assert all(text.endswith("Price is $") for text in test_prompts)
    assert not {r[0].rsplit("Price is $", 1)[0] for r in train} & {t[: -len("Price is $")] for t in test_prompts}
    for category, counts in info["categories"].items():
        assert counts["train"] + counts["test"] <= counts["balanced"] <= counts["kept"], category


def test_output_loads_with_datasets(real_run):
    datasets = pytest.importorskip("datasets")
    output, _ = real_run
    loaded = datasets.load_dataset(
        "parquet",
        data_files={"train": f"{data_dir(output)}/train/*/*.parquet", "test": f"{data_dir(output)}/test/*/*.parquet"},
    )
    info = manifest(output)
    assert loaded["train"].num_rows == info["splits"]["sizes"]["train"]
    assert loaded["test"].num_rows == info["splits"]["sizes"]["test"]
    assert loaded["train"].column_names == ["text", "price", "category", "parent_asin", "title", "token_count"]
    assert set(loaded["train"]["category"]) <= set(info["categories"])
    assert all(text.startswith("How much does this cost") for text in loaded["test"]["text"])


def test_data_card_names_the_splits(real_run):
    output, _ = real_run
    card = open(f"{output}/README.md", encoding="utf-8").read()
    assert card.startswith("---\nconfigs:")
    folder = manifest(output)["data"]
    assert f'path: "{folder}/train/*/*.parquet"' in card and f'path: "{folder}/test/*/*.parquet"' in card


def test_output_folder_loads_as_a_hub_dataset_through_its_card(real_run):
    """The data card's YAML tells `datasets` where the splits are: the folder loads as it is."""
    datasets = pytest.importorskip("datasets")
    output, _ = real_run
    loaded = datasets.load_dataset(output)
    info = manifest(output)
    assert set(loaded) == {name for name, size in info["splits"]["sizes"].items() if size}
    for name, split in loaded.items():
        assert split.num_rows == info["splits"]["sizes"][name]
        assert split.features["token_count"].dtype == "int32" and split.features["price"].dtype == "float64"


def test_recipe_wording_from_the_config_changes_only_the_words(spark, real_run, tmp_path):
    """Another question and price prefix: the same items, prices and splits row for row, in the new words; the
    manifest and the card name the changed recipe."""
    output, _ = real_run
    question, prefix = "What would this sell for, in whole dollars?", "Our estimate: US$"
    config = load_config("conf/course.yaml", ["categories=all", "split.train=500", "split.test=20",
                                              f"recipe.question={question}", f"recipe.price_prefix={prefix}"])
    reworded = str(tmp_path / "reworded")
    result = run_job(spark, config, str(SHARED / "data" / "real"), reworded)
    course = load_config("conf/course.yaml").recipe

    def reword(text: str) -> str:
        body = text[len(course.question):]
        head, sep, price = body.rpartition(course.price_prefix)
        return question + (head + prefix + price if sep else body.removesuffix(course.price_prefix) + prefix)

    for split in ("items", "train", "test"):
        before, after = split_rows(output, split), split_rows(reworded, split)
        assert len(after) == len(before) > 0, split
        # text, price, category, parent_asin, title (token counts change with the words)
        assert sorted((reword(r[0]), *r[1:5]) for r in before) == sorted(r[:5] for r in after), split
    assert all(r[0].endswith(prefix) for r in split_rows(reworded, "test"))
    info = result.manifest["recipe"]
    assert info["changes"] == {"question": question, "price_prefix": prefix}
    assert info["name"] == f"course-2024+{info['hash']}" and info["parameters"]["max_tokens"] == 160
    assert manifest(output)["recipe"]["name"] == "course-2024" and manifest(output)["recipe"]["changes"] == {}
    card = open(f"{reworded}/README.md", encoding="utf-8").read()
    assert f"recipe {info['name']}" in card and f'"{question}"' in card and f"`{prefix}<dollars>.00`" in card
    assert "`question`, `price_prefix` changed" in card and info["hash"] in card
