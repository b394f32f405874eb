"""Input discovery rules and how lines are laid out over tasks."""

from __future__ import annotations

from pricecurate.read import InputFile, plan_layout

MB = 1024 * 1024


def files(*sizes_mb: float, gz: bool = False) -> list[InputFile]:
    suffix = ".jsonl.gz" if gz else ".jsonl"
    return [InputFile(f"/in/meta_C{i}{suffix}", f"meta_C{i}{suffix}", f"C{i}", int(mb * MB)) for i, mb in enumerate(sizes_mb)]


def test_many_similar_small_files_are_read_whole_without_a_shuffle():
    layout = plan_layout(files(*[12] * 34), parallelism=2)
    assert layout.spread_files == frozenset() and layout.tasks == 34


def test_a_dominating_file_is_spread_over_the_cores():
    layout = plan_layout(files(200, 1, 1), parallelism=8)
    assert layout.spread_files == {"meta_C0.jsonl"}
    assert layout.spread_partitions >= 8 and layout.whole_files == 2


def test_big_compressed_files_are_judged_by_their_expanded_size():
    layout = plan_layout(files(100, 100, gz=True) + files(1), parallelism=2)
    assert len(layout.spread_files) == 2 and layout.spread_partitions >= 2 * 100 * 6 // 48


def test_explicit_partitions_spread_every_file():
    layout = plan_layout(files(1, 2, 3), parallelism=2, partitions=5)
    assert layout.spread_partitions == 5 and layout.whole_files == 0 and len(layout.spread_files) == 3
