"""A plan before the run: what the input holds and what the job will make of it, from listings and samples.

Nothing is read beyond the file listing and the first lines of each file: records are the file size over the
sampled bytes per line, the kept share is the recipe applied to the sampled lines, and the wall time is the whole
run's, term by term (``pricecurate.pipeline.bench_model``).
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from pricecurate.pipeline.bench_model import BenchModel, WallTime, bench_rates, dedup_family, wall_time
from pricecurate.pipeline.read import InputFile, InputPlan, is_compressed, packed_read_tasks
from pricecurate.units import duration_text, size_text

SAMPLE_LINES = 200
SAMPLE_BYTES = 1 << 20  # read at most this much of a file's head (compressed bytes for .gz)
# Parquet bytes per written row (items, train, test) at the course's 160 tokens: 210 in the bench's 1M run.
BYTES_PER_ROW = 210
# Building the codec on the driver costs about half a second: a run samples its kept share only when the kept
# items' terms at the bench corpus's share come to at least this much.
SAMPLE_WORTH_SECONDS = 1.0
SPARK_OPEN_COST = 4 << 20  # spark.sql.files.openCostInBytes's default


@dataclass(frozen=True)
class FileEstimate:
    file: InputFile
    bytes_per_line: float | None  # of the decompressed text; None when no line could be sampled
    records: int
    read_tasks: int


@dataclass(frozen=True)
class RunEstimate:
    files: list[FileEstimate]
    split_bytes: int
    cores: int
    records: int
    kept_share: float | None  # sampled, when the rules were applied to the heads
    output_bytes: int | None
    wall: WallTime
    model: BenchModel
    family: str  # the config's deduplication (``dedup_family``)
    kept_note: str  # where the kept share the wall time assumes comes from
    load: tuple[float, int] | None = None  # the 1-minute load average and the CPUs, when the estimate was made
    open_cost: int = SPARK_OPEN_COST  # what Spark counts for opening a file when it packs small files into tasks
    spare_cpus: int = 0  # CPUs of a local run's machine that no task slot uses

    @property
    def seconds(self) -> float:
        return self.wall.total

    @property
    def kept_items(self) -> float:
        return self.records * (self.model.kept_share if self.kept_share is None else self.kept_share)

    @property
    def read_tasks(self) -> int:
        """Spark's read tasks: the files' splits, small ones packed together."""
        return packed_read_tasks([f.file for f in self.files], self.split_bytes, self.open_cost, self.cores)

    @property
    def compressed(self) -> list[FileEstimate]:
        return [f for f in self.files if is_compressed(f.file)]


def head_lines(head: bytes, compressed: bool) -> tuple[int, list[bytes]]:
    """The head's decompressed length and its whole lines (a .gz head decompressed as far as it goes)."""
    if compressed:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
        except zlib.error:
            return 0, []
    return len(head), head.split(b"\n")[:-1]  # the last piece may be cut short


def records_in(file: InputFile, head: bytes) -> tuple[float | None, int]:
    """Bytes per line (newline included) and the file's estimated lines, from its head."""
    expanded, lines = head_lines(head, is_compressed(file))
    if not lines:
        return None, 0
    per_line = sum(len(line) + 1 for line in lines) / len(lines)
    # A .gz file expands as its head did.
    text_bytes = file.size * expanded / len(head) if is_compressed(file) else file.size
    return per_line, round(text_bytes / per_line)


def read_heads(fs, plan: InputPlan, max_bytes: int = SAMPLE_BYTES) -> dict[str, bytes]:
    """Each file's first bytes (``fs`` is a ``pricecurate.spark.fs.HadoopFS`` or anything with ``head``)."""
    return {file.name: fs.head(file.uri, max_bytes) for file in plan.files}


def sampled_kept_share(plan: InputPlan, heads: dict[str, bytes], codec, rules) -> float | None:
    """The share the recipe keeps of the first ``SAMPLE_LINES`` lines of each file, each file's share weighted by its
    estimated records (a big file sampled as thinly as a small one must still count for more)."""
    from pricecurate.rules.lines import KEPT, build_items

    sampled = []  # (file's estimated records, its sampled lines)
    for file in plan.files:
        head = heads.get(file.name, b"")
        lines = head_lines(head, is_compressed(file))[1][:SAMPLE_LINES]
        if lines:
            sampled.append((records_in(file, head)[1], lines))
    if not sampled:
        return None
    outcomes = iter(build_items([line for _, lines in sampled for line in lines], codec, rules=rules))
    weighted = kept = 0.0
    for records, lines in sampled:
        weight = max(records, 1)
        kept += weight * sum(next(outcomes).status == KEPT for _ in lines) / len(lines)
        weighted += weight
    return kept / weighted


def read_tasks(file: InputFile, split_bytes: int) -> int:
    return 1 if is_compressed(file) else max(1, math.ceil(file.size / split_bytes))


def estimate(plan: InputPlan, heads: dict[str, bytes], split_bytes: int, cores: int, config, model: BenchModel,
             kept_share: float | None = None, kept_note: str | None = None,
             open_cost: int = SPARK_OPEN_COST, spare_cpus: int = 0) -> RunEstimate:
    """The estimate from the listing, each file's head (by name) and, if measured, the sample's kept share (else
    the bench corpus's, said in ``kept_note``)."""
    files = []
    for file in plan.files:
        per_line, records = records_in(file, heads.get(file.name, b""))
        files.append(FileEstimate(file, per_line, records, read_tasks(file, split_bytes)))
    records = sum(f.records for f in files)
    output = None
    if kept_share is not None:
        kept = records * kept_share
        rows = kept + min(kept, config.split.train + config.split.test + config.split.validation)
        output = round(rows * BYTES_PER_ROW * config.recipe.max_tokens / 160)
    share = model.kept_share if kept_share is None else kept_share
    note = kept_note or ("sampled" if kept_share is not None else "the bench corpus's, as no line was sampled")
    return RunEstimate(files, split_bytes, cores, records, kept_share, output,
                       wall_time(records, records * share, cores, config, model, spare_cpus), model,
                       dedup_family(config), note, open_cost=open_cost, spare_cpus=spare_cpus)


def kept_seconds(run: RunEstimate) -> float:
    """The seconds the estimate gives to the kept items (what a wrong kept share would get wrong)."""
    return sum(seconds for name, seconds in run.wall.terms if name not in ("fixed", "item rules"))


def estimate_for_run(plan: InputPlan, heads: dict[str, bytes], split_bytes: int, cores: int, config,
                     model: BenchModel, make_codec: Callable[[], object],
                     open_cost: int = SPARK_OPEN_COST, spare_cpus: int = 0) -> RunEstimate:
    """The estimate a run says before its items stage (and the bench checks): the kept share is sampled from the
    heads (with ``make_codec()``, built only then) when the kept items' seconds at the bench corpus's share reach
    ``SAMPLE_WORTH_SECONDS``; below that it is the bench corpus's."""
    first = estimate(plan, heads, split_bytes, cores, config, model,
                     kept_note=f"the bench corpus's; not sampled, under {SAMPLE_WORTH_SECONDS:g} s at stake",
                     open_cost=open_cost, spare_cpus=spare_cpus)
    if kept_seconds(first) >= SAMPLE_WORTH_SECONDS:
        share = sampled_kept_share(plan, heads, make_codec(), config.recipe)
        first = first if share is None else estimate(plan, heads, split_bytes, cores, config, model, share,
                                                     open_cost=open_cost, spare_cpus=spare_cpus)
    return replace(first, load=machine_load())


def spare_cpus(master: str, cores: int) -> int:
    """The CPUs this process may run on that no task slot uses, for a local master (a cluster's executors are other
    machines). A run held to fewer CPUs (``taskset``) counts only those."""
    if not master.startswith("local"):
        return 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this system
        usable = os.cpu_count() or 1
    return max(0, usable - cores)


def machine_load() -> tuple[float, int] | None:
    """The 1-minute load average and the CPUs (None where the system does not say)."""
    try:
        return os.getloadavg()[0], os.cpu_count() or 1
    except (OSError, AttributeError):
        return None


FIGURE_NAMES = {"items_rate_per_core": "items rate", "two_core_speedup": "2-core speedup", "kept_share": "kept share",
                "spare_cpu_speedup": "spare-CPU speedup",
                "fixed_seconds": "fixed cost", "after_us": "cost after the rules", "dedup_us": "dedup cost",
                "baseline_us": "baselines' cost", "train_share": "train share"}


def figures_used(run: RunEstimate) -> set[str]:
    """The model's figures this estimate multiplied (named as ``BenchModel.defaulted`` names them)."""
    terms = dict(run.wall.terms)
    used = {"items_rate_per_core", "two_core_speedup", f"fixed_seconds.{run.family}", f"after_us.{run.family}"}
    used |= {"kept_share"} if run.kept_share is None else set()
    used |= {"spare_cpu_speedup"} if run.spare_cpus else set()
    used |= {f"dedup_us.{kind}" for kind in ("exact", "near") if f"{kind} duplicates" in terms}
    return used | ({"baseline_us", "train_share"} if "baselines" in terms else set())


def assumptions(run: RunEstimate) -> str:
    """What the wall time assumes, in one line: the figures it multiplied and where they come from."""
    model, cores = run.model, run.cores
    terms = dict(run.wall.terms)
    scaling = (f"x{model.speedup(cores):.2f} on {cores} cores" + (", extrapolated from 2" if cores > 2 else "")
               if cores > 1 else "on 1 core")
    spare = model.spare_cpu_factor(cores, run.spare_cpus)
    if spare > 1:
        scaling += f"; all but the fixed cost x{spare:.2f} with {run.spare_cpus} CPU(s) no task uses"
    per_kept = [f"{model.after_us[run.family]:,.0f} µs each after the rules"]
    per_kept += [f"+{model.dedup_us[kind]:,.0f} µs {kind} duplicates" for kind in ("exact", "near")
                 if f"{kind} duplicates" in terms]
    parts = [f"{model.items_rate_per_core:,.0f} records/s per core in the item rules ({scaling})",
             f"{round(run.kept_items):,} kept items ({run.kept_items / max(run.records, 1):.1%}, {run.kept_note}) at "
             + ", ".join(per_kept) + (" (measured at local[2])" if cores != 2 else ""),
             f"{duration_text(terms['fixed'])} fixed (the bench's tiny run at local[2], "
             + {"none": "no dedup", "exact": "exact dedup", "near": "exact and near dedup"}[run.family] + ")"]
    if "baselines" in terms:
        parts.append(f"{model.baseline_us:,.0f} µs per train item for the baselines")
    readme = dict.fromkeys(FIGURE_NAMES[name.split(".")[0]] for name in model.defaulted if name in figures_used(run))
    source = model.source + (f" (the README's {', '.join(readme)})" if readme else "")
    # The bench's figures are a quiet machine's: other work on the same cores slows every term.
    busy = (f"; the machine is busy (1-minute load {run.load[0]:.1f} on {run.load[1]} CPUs): expect longer"
            if run.load and run.load[0] > run.load[1] else "")
    return "  assumes " + "; ".join(parts) + f"; from {source}{busy}; other records or machines differ"


def describe(run: RunEstimate, per_file: bool = True) -> list[str]:
    """The plan as lines for a terminal."""
    lines = []
    if per_file:
        width = max((len(f.file.name) for f in run.files), default=10)
        for f in run.files:
            per_line = f"{f.bytes_per_line:,.0f} B/line" if f.bytes_per_line else "no whole line sampled"
            note = "  compressed: one task reads it whole" if is_compressed(f.file) else ""
            lines.append(f"  {f.file.name:<{width}}  {size_text(f.file.size):>10}  ~{f.records:>12,} records  "
                         f"{per_line:>14}  {f.read_tasks:>5} task(s){note}")
    total = sum(f.file.size for f in run.files)
    lines.append(f"{len(run.files)} file(s), {size_text(total)}: about {run.records:,} records in "
                 f"{run.read_tasks:,} read task(s) of up to {size_text(run.split_bytes)} on {run.cores} core(s)")
    if run.compressed:
        lines.append(f"{len(run.compressed)} compressed file(s) cannot be split: "
                     + ", ".join(f.file.name for f in run.compressed))
    if run.kept_share is not None:
        lines.append(f"kept by the recipe: {run.kept_share:.1%} of the sampled lines (each file's share weighted by "
                     f"its records), about {round(run.kept_items):,} items; output about "
                     f"{size_text(run.output_bytes or 0)}")
    terms = " + ".join(f"{duration_text(seconds)} {name}" for name, seconds in run.wall.terms)
    lines.append(f"estimated wall time: {duration_text(run.wall.total)} ({duration_text(run.wall.without_report)} "
                 f"with --no-report) = {terms} + {duration_text(run.wall.report)} report")
    lines.append(assumptions(run))
    return lines


def plan_run(spark, config, input_uri: str) -> list[str]:
    """``pricecurate plan``: the input as the job would find and split it, the recipe on a sample, an estimate."""
    from pricecurate.paths import cache_dir
    from pricecurate.pipeline.read import discover, read_settings
    from pricecurate.rules import recipe
    from pricecurate.spark.fs import HadoopFS, redact
    from pricecurate.tokenizer.engine import build_codec, choose_engine
    from pricecurate.tokenizer.spec import load_spec

    fs = HadoopFS(spark)
    plan = discover(fs, input_uri, config.categories)
    cores = spark.sparkContext.defaultParallelism
    session = {key: spark.conf.get(key) for key in ("spark.sql.files.maxPartitionBytes",
                                                    "spark.sql.files.openCostInBytes")}
    split_bytes, open_cost = read_settings(plan.files, cores, session, config.spark).values()  # as the job picks them
    heads = read_heads(fs, plan)
    spec = load_spec(config.tokenizer)
    engine, why = choose_engine(spec.json, config.tokenizer_engine)
    share = sampled_kept_share(plan, heads, build_codec(spec.json, engine, spec.clean_up_spaces), config.recipe)
    run = replace(estimate(plan, heads, split_bytes, cores, config, bench_rates(cache_dir()), share,
                           open_cost=open_cost, spare_cpus=spare_cpus(spark.sparkContext.master, cores)),
                  load=machine_load())
    lines = [f"plan for {redact(input_uri)}: recipe {config.recipe.label}, tokenizer {spec.name} ({why})"]
    lines += [f"warning: {warning}" for warning in recipe.warnings(config.recipe)]
    if plan.missing:
        lines.append(f"no file for: {', '.join(plan.missing)}")
    if plan.ignored:
        lines.append(f"ignored (not meta_<Category> files): {', '.join(plan.ignored)}")
    return lines + describe(run)
