"""The bench's figures for issue 26's targets: near's cost from A-B-B-A runs, seconds after the items stage."""

from __future__ import annotations

from devtools.bench.jobs import JobRun
from devtools.bench.report import after_items_per_250k, near_cost


def _run(wall: float, stages: dict | None = None, kept: int = 0) -> JobRun:
    return JobRun(wall, 0.0, {"stage_seconds": stages or {}, "accounting": {"kept": kept}}, {})


def test_near_s_cost_sums_both_pairs_steady_seconds():
    tiny = {"local2_default": _run(12.0), "local2_exact": _run(10.0)}
    big = {"local2_default": _run(72.0), "local2_exact": _run(60.0)}  # steady 60 against 50: +20%
    again = {"local2_default": _run(62.0), "local2_exact": _run(70.0)}  # steady 50 against 60: -17%
    figures = near_cost(big, again, tiny)
    assert figures["near_cost_rounds"] == [0.2, round(50 / 60 - 1, 3)]
    assert figures["near_cost"] == 0.0  # 110 s against 110 s
    assert figures["wall_again_s"] == {"local2_default": 62.0, "local2_exact": 70.0}


def test_near_s_cost_is_unknown_when_a_big_run_was_no_slower_than_its_tiny_run():
    tiny = {"local2_default": _run(12.0), "local2_exact": _run(10.0)}
    runs = {"local2_default": _run(11.0), "local2_exact": _run(9.0)}
    assert near_cost(runs, runs, tiny)["near_cost"] is None


def test_seconds_after_the_items_stage_count_every_stage_after_it_per_250k_kept():
    stages = {"tokenizer": 0.1, "items": 30.0, "balance": 1.0, "split": 1.5, "leakage": 2.5, "write": 5.0,
              "write quarantine": 0.5}
    assert after_items_per_250k(_run(50.0, stages, kept=125_000)) == 21.0
    assert after_items_per_250k(_run(50.0, stages, kept=0)) is None
