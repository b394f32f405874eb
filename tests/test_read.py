"""Input layout, and exact line numbers however the files are split into tasks."""

from __future__ import annotations

import gzip

import pytest
from pyspark.sql import functions as F

from pricecurate.pipeline.read import (
    LOCAL_OPEN_COST,
    POSITION,
    SHUFFLE_INPUT_BYTES,
    SPLIT_START,
    InputFile,
    discover,
    line_offsets,
    number_lines,
    packed_read_tasks,
    parse_bytes,
    plan_layout,
    read_lines,
    read_settings,
    shuffle_partitions,
    split_size,
)
from pricecurate.spark.fs import HadoopFS

MB = 1024 * 1024


def files(*sizes_mb: float, gz: bool = False) -> list[InputFile]:
    suffix = ".jsonl.gz" if gz else ".jsonl"
    return [InputFile(f"/in/meta_C{i}{suffix}", f"meta_C{i}{suffix}", f"C{i}", int(mb * MB)) for i, mb in enumerate(sizes_mb)]


def test_uncompressed_files_are_never_shuffled_however_big():
    layout = plan_layout(files(2000, 1, 1), parallelism=8)
    assert layout.spread_files == frozenset() and layout.dominant_compressed == ()


def test_big_compressed_files_are_spread_by_their_expanded_size():
    layout = plan_layout(files(100, 100, gz=True) + files(1), parallelism=2)
    assert len(layout.spread_files) == 2 and layout.spread_partitions >= 2 * 100 * 6 // 48


def test_a_compressed_file_that_dominates_the_read_is_named():
    layout = plan_layout(files(100, gz=True) + files(10, 10), parallelism=8)
    assert [name for name, _ in layout.dominant_compressed] == ["meta_C0.jsonl.gz"]
    assert layout.dominant_compressed[0][1] == pytest.approx(600 / 620)
    assert plan_layout(files(1, gz=True) + files(500), parallelism=8).dominant_compressed == ()


def test_explicit_partitions_spread_every_file():
    layout = plan_layout(files(1, 2, 3), parallelism=2, partitions=5)
    assert layout.spread_partitions == 5 and len(layout.spread_files) == 3


def test_shuffle_partitions_grow_with_the_input_not_with_the_cores():
    per = SHUFFLE_INPUT_BYTES // MB
    assert shuffle_partitions(files(1, 2), parallelism=2) == 4  # small input: two per core
    assert shuffle_partitions(files(10 * per, 30 * per), parallelism=2) == 40
    assert shuffle_partitions(files(10 * per, 30 * per), parallelism=64) == 128
    assert shuffle_partitions(files(10 * per + 1), parallelism=2) == 11
    assert shuffle_partitions(files(10 * per, gz=True), parallelism=2) == 60  # by the expanded size


def test_line_offsets_follow_the_splits_of_each_file_in_byte_order():
    # (file, split_start, lines, first position): positions restart in every task.
    splits = [("b", 0, 4, 100), ("a", 50, 2, 7), ("a", 0, 3, 0), ("a", 90, 1, 8589934592)]
    offsets = line_offsets(splits)
    assert offsets == {("a", 0): 1, ("a", 50): 4 - 7, ("a", 90): 6 - 8589934592, ("b", 0): 1 - 100}


# Lines chosen to sit on split boundaries at every small split size: empty lines
# (also two in a row), a line far longer than a split, CRLF endings, multi-byte
# characters, and a last line without a newline.
CONTENT = {
    "meta_Books.jsonl": b"alpha\n\n\nbravo-" + b"x" * 61 + b"\r\ncharlie\n\xc3\xa9t\xc3\xa9\n\nd\ne\r\nlast-no-newline",
    "meta_Software.jsonl": b"\n" + b"".join(b"line %d\n" % i for i in range(40)),
    "meta_Gift_Cards.jsonl": b"only\n",
}


def _expected(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


@pytest.fixture(scope="module")
def boundary_input(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boundaries")
    for name, data in CONTENT.items():
        (folder / name).write_bytes(data)
    with gzip.open(folder / "meta_Video_Games.jsonl.gz", "wb") as handle:
        handle.write(CONTENT["meta_Software.jsonl"])
    return folder


def numbered_lines(spark, folder, split_bytes: int | None, partitions: int = 0) -> dict[tuple[str, int], bytes]:
    """(file, line) → bytes as the job numbers them, with Spark's split size set to ``split_bytes``."""
    settings = {"spark.sql.files.maxPartitionBytes": str(split_bytes), "spark.sql.files.openCostInBytes": "1"}
    try:
        if split_bytes:
            for key, value in settings.items():
                spark.conf.set(key, value)
        plan = discover(HadoopFS(spark), str(folder), "all")
        lines = read_lines(spark, plan, plan_layout(plan.files, 2, partitions)).cache()
        counts = lines.groupBy("file", SPLIT_START).agg(F.count(F.lit(1)), F.min(POSITION)).collect()
        tasks = lines.rdd.getNumPartitions()
        numbered = number_lines(lines, line_offsets(tuple(r) for r in counts)).collect()
        lines.unpersist()
    finally:
        for key in settings:
            spark.conf.unset(key)
    got = {(r["file"], r["line"]): bytes(r["value"]) for r in numbered}
    assert len(got) == len(numbered)
    return got, tasks


@pytest.fixture(scope="module")
def whole(spark, boundary_input):
    return numbered_lines(spark, boundary_input, None)[0]


def test_whole_files_are_numbered_like_a_plain_read(whole):
    expected = {
        (name, number): line
        for name, data in {**CONTENT, "meta_Video_Games.jsonl.gz": CONTENT["meta_Software.jsonl"]}.items()
        for number, line in enumerate(_expected(data), start=1)
    }
    assert whole == expected


@pytest.mark.parametrize("split_bytes", [1, 2, 3, 7, 13, 64])
def test_tiny_splits_number_every_line_as_whole_file_reading_does(spark, boundary_input, whole, split_bytes):
    split, tasks = numbered_lines(spark, boundary_input, split_bytes)
    assert tasks > len(CONTENT) + 1  # really split: several tasks per file
    assert split == whole


def test_spreading_every_line_keeps_the_numbers(spark, boundary_input, whole):
    spread, tasks = numbered_lines(spark, boundary_input, 5, partitions=3)
    assert tasks == 3 and spread == whole


def test_split_size_is_sparks_cap_on_big_inputs_and_smaller_for_many_cores():
    big = files(*[2000] * 20)  # 40 GB
    assert split_size(big, 64, 128 * MB, 4 * MB) == 128 * MB
    assert split_size(big, 256, 128 * MB, 4 * MB) == 40_000 * MB // 1024  # four splits per core
    assert split_size(files(5), 2, 128 * MB, 4 * MB) == 4 * MB  # never below the open cost
    assert split_size(files(100, gz=True) + files(8), 2, 128 * MB, 0) == 1 * MB  # .gz files are not split


def test_local_files_are_opened_cheaply_and_the_config_wins():
    spark_defaults = {"spark.sql.files.maxPartitionBytes": "128m", "spark.sql.files.openCostInBytes": "4m"}
    local = files(2, 0.1, 0.1)
    remote = [InputFile("s3a://bucket" + f.uri, f.name, f.category, f.size) for f in local]
    split_key, open_key = "spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes"
    assert read_settings(local, 2, spark_defaults, {}) == {split_key: int(2.2 * MB) // 8, open_key: LOCAL_OPEN_COST}
    assert read_settings(remote, 2, spark_defaults, {}) == {split_key: 4 * MB, open_key: 4 * MB}
    assert read_settings(local, 2, spark_defaults, {open_key: "1m", split_key: "3m"}) == {split_key: 3 * MB,
                                                                                         open_key: MB}


def test_read_tasks_are_counted_as_spark_packs_files_into_them(spark, tmp_path):
    """A big file's splits, small files packed several to a task: the count the plan says is the one Spark makes."""
    record = b'{"title": "x", "price": 1.0}\n'
    sizes = {"Books": 300_000, "Software": 40_000, "Toys_and_Games": 25_000, "Gift_Cards": 9_000,
             "Baby_Products": 9_000, "Beauty_and_Personal_Care": 1_000}
    for category, size in sizes.items():
        (tmp_path / f"meta_{category}.jsonl").write_bytes(record * (size // len(record)))
    plan = discover(HadoopFS(spark), str(tmp_path), "all")
    counted = set()
    for split, open_cost in [(100_000, LOCAL_OPEN_COST), (100_000, 4 * MB), (50_000, 1), (MB, LOCAL_OPEN_COST),
                             (20_000, 3_000)]:
        settings = {"spark.sql.files.maxPartitionBytes": str(split), "spark.sql.files.openCostInBytes": str(open_cost)}
        try:
            for key, value in settings.items():
                spark.conf.set(key, value)
            made = read_lines(spark, plan, plan_layout(plan.files, 2)).rdd.getNumPartitions()
        finally:
            for key in settings:
                spark.conf.unset(key)
        expected = packed_read_tasks(plan.files, split, open_cost, spark.sparkContext.defaultParallelism)
        assert expected == made, (split, open_cost)
        counted.add(made)
    assert len(counted) >= 4  # the cases differ: packing is tested, not one split per file


def test_sizes_read_like_spark():
    assert [parse_bytes(t) for t in ("128MB", "134217728b", "4m", "1048576", "2g")] == [128 * MB, 128 * MB, 4 * MB, MB, 2048 * MB]
    with pytest.raises(ValueError):
        parse_bytes("12 parsecs")


def test_the_category_column_reads_names_as_discover_does():
    """The scan takes the category from the file name with a Java regular expression: the same as category_of."""
    import re

    from pricecurate.pipeline.read import _CATEGORY_IN_NAME
    from pricecurate.rules.categories import CATEGORIES, category_of

    for category in CATEGORIES:
        for name in (f"meta_{category}.jsonl", f"meta_{category}.jsonl.gz"):
            assert re.match(_CATEGORY_IN_NAME, name).group(1) == category_of(name) == category
