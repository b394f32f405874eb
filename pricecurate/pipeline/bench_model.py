"""What a run costs on this machine, term by term, from its last bench (``scripts/bench.py``) or the README's.

A bench's big and tiny runs, taken apart (``model_from_bench``): what every run pays (the tiny run), the item
rules' stage per record, deduplication and the stages after the rules per kept item, the baselines per train
item, and the report. ``wall_time`` adds them up for a run's records and kept items.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The model's figures until this machine has run scripts/bench.py: the README's bench (docs/performance.md,
# 1,006,508 synthetic records at 719eec3, with the C kernels, JVM class archive mapped), taken apart as
# ``model_from_bench`` does. The course run at local[2] added 32.4 s over its tiny run: 23.3 s in the item rules'
# stage (so 43,000 records/s at local[2], over 1.97 = 21,900 per core) and 9.0 s after it, over 244,899 kept items.
DEFAULT_ITEMS_RATE_PER_CORE = 21_900.0
DEFAULT_TWO_CORE_SPEEDUP = 1.97  # local[2] over local[1] held to one CPU
# local[1] with a second CPU free (the JVM reads and writes while the Python worker applies the rules) over local[1]
# held to one CPU, beyond the tiny run: (78.8 - 16.6) / (55.5 - 10.5) s.
DEFAULT_SPARE_CPU_SPEEDUP = 1.38
DEFAULT_FIXED_SECONDS = {"none": 11.3, "exact": 11.7, "near": 12.3}  # the 680-record runs at local[2], by dedup
# Per kept item, the stages after the item rules, at local[2], by dedup (near implies the leakage check).
DEFAULT_AFTER_US = {"none": 37.0, "exact": 41.0, "near": 25.0}
# Per kept item, at local[2]: what exact dedup adds to the item rules' stage over course.yaml, and near over exact.
DEFAULT_DEDUP_US = {"exact": 25.0, "near": 18.0}
DEFAULT_KEPT_SHARE = 0.243  # of the bench's synthetic records
DEFAULT_BASELINE_US = 356.0  # fitting and scoring per train item: 41.4 s for 116,267 train items
DEFAULT_TRAIN_SHARE = 0.47  # train items per kept item with default.yaml's balancing, on the bench's records
DEFAULT_REPORT_SECONDS = 1.5  # the report after the bundled sample's run (1.2-1.55 s); the bench runs without it
BENCH_TINY_RECORDS = 680  # the bench's tiny input (20 records per category), for results that do not say

BENCH_RESULT = "bench-last.json"
README_BENCH = "the README's bench (docs/performance.md)"
# The bench run whose tiny and big walls stand for a config with this deduplication (``dedup_family``).
FAMILY_JOB = {"none": "local2", "exact": "local2_exact", "near": "local2_default"}


@dataclass(frozen=True)
class BenchModel:
    """The figures of a whole run's wall time, from one bench (``model_from_bench``) or the README's."""

    items_rate_per_core: float = DEFAULT_ITEMS_RATE_PER_CORE  # records/s through the item rules' stage, one CPU
    two_core_speedup: float = DEFAULT_TWO_CORE_SPEEDUP  # that stage at local[2] over local[1]
    spare_cpu_speedup: float = DEFAULT_SPARE_CPU_SPEEDUP  # a local[1] run with a CPU free beside it over one without
    fixed_seconds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FIXED_SECONDS))  # by dedup family
    after_us: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_AFTER_US))  # by dedup family
    dedup_us: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DEDUP_US))  # "exact", "near"
    kept_share: float = DEFAULT_KEPT_SHARE
    baseline_us: float = DEFAULT_BASELINE_US
    train_share: float = DEFAULT_TRAIN_SHARE
    report_seconds: float = DEFAULT_REPORT_SECONDS
    source: str = README_BENCH
    defaulted: tuple[str, ...] = ()  # the figures a bench left out, taken from the README's ("after_us.none")

    def speedup(self, cores: int) -> float:
        """How much faster than one core: each core past the first adds what the second added at local[2]."""
        return 1 + (max(cores, 1) - 1) * (max(self.two_core_speedup, 1.0) - 1)

    def spare_cpu_factor(self, cores: int, spare_cpus: int) -> float:
        """How much faster the work past the fixed cost goes on a machine with CPUs no task slot uses: what the
        bench's local[1] gained from a second CPU, for the share of the slots that have one beside them."""
        share = min(1.0, max(spare_cpus, 0) / max(cores, 1))
        return 1 + (max(self.spare_cpu_speedup, 1.0) - 1) * share


@dataclass(frozen=True)
class WallTime:
    """The whole run's seconds as terms (named as the estimate line says them), and the report's."""

    terms: tuple[tuple[str, float], ...]
    report: float

    @property
    def without_report(self) -> float:
        return sum(seconds for _, seconds in self.terms)

    @property
    def total(self) -> float:
        return self.without_report + self.report


def save_bench(cache_dir: Path, result: dict) -> Path:
    """Keep this machine's bench figures (``scripts/bench.py``'s result) where ``bench_rates`` reads them; whole or
    not at all. Keys starting with ``_`` are the bench's own and are left out."""
    path = cache_dir / BENCH_RESULT
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}), encoding="utf-8")
    os.replace(partial, path)
    return path


def bench_rates(cache_dir: Path) -> BenchModel:
    """The model from this machine's last bench (``save_bench``), figure by figure, the README's where it has none."""
    path = cache_dir / BENCH_RESULT
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        date = result.get("date") or dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
    except (OSError, ValueError, AttributeError):  # no bench yet, a file cut short, or not a JSON object
        return BenchModel()
    return model_from_bench(result, f"this machine's bench of {date}")


def _measured(compute: Callable[[], float], low: float = 0.0) -> float | None:
    """``compute()`` when the bench holds what it needs and the figure makes sense (above ``low``), else None."""
    try:
        value = float(compute())
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None
    return value if math.isfinite(value) and value > low else None


def model_from_bench(result: dict, source: str) -> BenchModel:
    """The model's figures from a bench's result (``scripts/bench.py``): what each big run took beyond its tiny run,
    split into the item rules' stage and the rest, over the records and the kept items (kept by the rules, before
    deduplication). A figure the result cannot give (an older bench, a run that failed) is the README's."""
    stages, tiny_stages = result.get("stage_seconds") or {}, result.get("stage_seconds_tiny") or {}

    def records_added() -> int:
        return result["records"] - result.get("tiny_records", BENCH_TINY_RECORDS)

    def items_added(job: str) -> float:  # the item rules' stage (deduplication included) beyond the tiny run's
        return stages[job]["items"] - tiny_stages[job]["items"]

    def kept(job: str) -> int:  # older benches kept only what deduplication left
        return (result.get("rules_kept") or {}).get(job) or result["kept"][job]

    def beyond_tiny(job: str) -> float:
        return result["wall_s"][job] - result["fixed_cost_s"][job]

    def after_us(job: str) -> float:
        return max(0.0, beyond_tiny(job) - items_added(job)) / kept(job) * 1e6

    figures = {
        "items_rate_per_core": _measured(lambda: records_added() / items_added("local1")),
        "two_core_speedup": _measured(lambda: items_added("local1") / items_added("local2")),
        "spare_cpu_speedup": _measured(lambda: max(1.0, beyond_tiny("local1") / beyond_tiny("local1_unpinned"))),
        "kept_share": _measured(lambda: kept("local2") / result["records"]),
        "baseline_us": _measured(lambda: result["baselines"]["fit_s"] / result["baselines"]["train_items"] * 1e6),
        "train_share": _measured(lambda: result["baselines"]["train_items"] / kept("local2_default")),
    }
    fixed = {family: _measured(lambda job=job: result["fixed_cost_s"][job]) for family, job in FAMILY_JOB.items()}
    after = {family: _measured(lambda job=job: after_us(job), -1.0) for family, job in FAMILY_JOB.items()}
    # What deduplication adds to the item rules' stage; noise below zero is no cost, not the README's figure.
    dedup = {
        "exact": _measured(lambda: max(0.0, items_added("local2_exact") - items_added("local2"))
                           / kept("local2_exact") * 1e6, -1.0),
        "near": _measured(lambda: max(0.0, items_added("local2_default") - items_added("local2_exact"))
                          / kept("local2_default") * 1e6, -1.0),
    }
    readme = BenchModel()
    missing = [name for name, value in figures.items() if value is None]
    for label, measured, default in (("fixed_seconds", fixed, readme.fixed_seconds),
                                     ("after_us", after, readme.after_us), ("dedup_us", dedup, readme.dedup_us)):
        missing += [f"{label}.{key}" for key, value in measured.items() if value is None]
        measured.update({key: default[key] for key, value in measured.items() if value is None})
    return BenchModel(**{name: value for name, value in figures.items() if value is not None},
                      fixed_seconds=fixed, after_us=after, dedup_us=dedup, source=source, defaulted=tuple(missing))


def dedup_family(config) -> str:
    """Which of the bench's runs a config's deduplication is priced by: ``near``, ``exact`` (title, text) or none."""
    return "near" if "near" in config.dedup else "exact" if config.dedup else "none"


def wall_time(records: int, kept: float, cores: int, config, model: BenchModel, spare_cpus: int = 0) -> WallTime:
    """The whole run's seconds: the bench's tiny run at the same deduplication (what every run pays: the JVM, the
    session, the first tasks' start-up), the item rules' stage per record on these cores, what deduplication and
    the stages after the rules take per kept item (measured at local[2], scaled to these cores), the baselines
    per expected train item (fitted on the driver) when the config asks for them, and the report. ``spare_cpus``:
    CPUs of a local run's machine that no task slot uses (``BenchModel.spare_cpu_factor``)."""
    family = dedup_family(config)
    spare = model.spare_cpu_factor(cores, spare_cpus)
    from_two_cores = model.speedup(2) / model.speedup(cores) / spare
    terms = [("fixed", model.fixed_seconds[family]),
             ("item rules", records / (model.items_rate_per_core * model.speedup(cores) * spare))]
    if family != "none" and set(config.dedup) - {"near"}:
        terms.append(("exact duplicates", kept * model.dedup_us["exact"] * 1e-6 * from_two_cores))
    if family == "near":
        terms.append(("near duplicates", kept * model.dedup_us["near"] * 1e-6 * from_two_cores))
    terms.append(("after the rules", kept * model.after_us[family] * 1e-6 * from_two_cores))
    if config.baseline:
        train = min(config.split.train, kept * model.train_share)
        terms.append(("baselines", train * model.baseline_us * 1e-6))
    return WallTime(tuple(terms), model.report_seconds)
