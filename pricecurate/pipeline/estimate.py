"""A plan before the run: what the input holds and what the job will make of it, from listings and samples.

Nothing is read beyond the file listing and the first lines of each file:
records are the file size over the sampled bytes per line, the kept share is
the recipe applied to the sampled lines, and the wall time is the records over
the per-core rate of this machine's last benchmark (or the README's figure).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from pricecurate.pipeline.read import InputFile, InputPlan, is_compressed
from pricecurate.units import duration_text, size_text

SAMPLE_LINES = 200
SAMPLE_BYTES = 1 << 20  # read at most this much of a file's head (compressed bytes for .gz)
# The bench's steady rate of `local[1]` on one CPU with conf/course.yaml, and its fixed cost at local[2]
# (README, Performance); used until this machine has run scripts/bench.py.
DEFAULT_RATE_PER_CORE = 12_000
DEFAULT_FIXED_SECONDS = 25.0
DEFAULT_NEAR_FACTOR = 0.67  # conf/default.yaml (exact and near dedup) over conf/course.yaml at local[2]
# Parquet bytes per written row (items, train, test) at the course's 160 tokens: 210 in the bench's 1M run.
BYTES_PER_ROW = 210
BENCH_RESULT = "bench-last.json"


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
    kept_share: float | None  # of the sampled lines, when the rules were applied to them
    output_bytes: int | None
    seconds: float
    rate_per_core: float
    rate_source: str

    @property
    def read_tasks(self) -> int:
        return sum(f.read_tasks for f in self.files)

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
    """The recipe applied to the first ``SAMPLE_LINES`` lines of every file: the share it keeps."""
    from pricecurate.rules.lines import KEPT, build_items

    lines = [line for file in plan.files
             for line in head_lines(heads.get(file.name, b""), is_compressed(file))[1][:SAMPLE_LINES]]
    if not lines:
        return None
    return sum(outcome.status == KEPT for outcome in build_items(lines, codec, rules=rules)) / len(lines)


def read_tasks(file: InputFile, split_bytes: int) -> int:
    return 1 if is_compressed(file) else max(1, math.ceil(file.size / split_bytes))


def save_bench(cache_dir: Path, result: dict) -> Path:
    """Keep this machine's bench figures (``scripts/bench.py``'s result) where ``bench_rates`` reads them; whole or
    not at all. Keys starting with ``_`` are the bench's own and are left out."""
    path = cache_dir / BENCH_RESULT
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}), encoding="utf-8")
    os.replace(partial, path)
    return path


def bench_rates(cache_dir: Path) -> tuple[float, float, float, str]:
    """(records/s per core, fixed seconds, near factor, where from): this machine's last bench (``save_bench``),
    else defaults."""
    path = cache_dir / BENCH_RESULT
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        rate = float(result["job_local1_rps"])
        fixed = float(result["fixed_cost_s"]["local2"])
        near = float(result["ratios"].get("local2_default_vs_local2") or DEFAULT_NEAR_FACTOR)
        return rate, fixed, near, f"this machine's last bench ({path})"
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_RATE_PER_CORE, DEFAULT_FIXED_SECONDS, DEFAULT_NEAR_FACTOR, "the README's bench figures"


def estimate(plan: InputPlan, heads: dict[str, bytes], split_bytes: int, cores: int, config, cache_dir: Path,
             kept_share: float | None = None) -> RunEstimate:
    """The estimate from the listing, each file's head (by name) and, if measured, the sample's kept share."""
    files = []
    for file in plan.files:
        per_line, records = records_in(file, heads.get(file.name, b""))
        files.append(FileEstimate(file, per_line, records, read_tasks(file, split_bytes)))
    records = sum(f.records for f in files)
    rate, fixed, near, source = bench_rates(cache_dir)
    if "near" in config.dedup:
        rate *= near
    output = None
    if kept_share is not None:
        kept = records * kept_share
        rows = kept + min(kept, config.split.train + config.split.test + config.split.validation)
        output = round(rows * BYTES_PER_ROW * config.recipe.max_tokens / 160)
    seconds = fixed + records / (rate * max(cores, 1))
    return RunEstimate(files, split_bytes, cores, records, kept_share, output, seconds, rate, source)


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
    lines.append(f"{len(run.files)} file(s), {size_text(total)}: about {run.records:,} records in {run.read_tasks:,} read "
                 f"task(s) of up to {size_text(run.split_bytes)} on {run.cores} core(s)")
    if run.compressed:
        lines.append(f"{len(run.compressed)} compressed file(s) cannot be split: "
                     + ", ".join(f.file.name for f in run.compressed))
    if run.kept_share is not None:
        lines.append(f"kept by the recipe: {run.kept_share:.1%} of the sampled lines, about "
                     f"{round(run.records * run.kept_share):,} items; output about {size_text(run.output_bytes or 0)}")
    lines.append(f"estimated wall time: {duration_text(run.seconds)} at {run.rate_per_core:,.0f} records/s per core "
                 f"(from {run.rate_source}; real records and other machines differ)")
    return lines


def plan_run(spark, config, input_uri: str) -> list[str]:
    """``pricecurate plan``: the input as the job would find and split it, the recipe on a sample, an estimate."""
    from pricecurate.paths import cache_dir
    from pricecurate.pipeline.read import chosen_split_bytes, discover
    from pricecurate.rules import recipe
    from pricecurate.spark.fs import HadoopFS, redact
    from pricecurate.tokenizer.engine import build_codec, choose_engine
    from pricecurate.tokenizer.spec import load_spec

    fs = HadoopFS(spark)
    plan = discover(fs, input_uri, config.categories)
    cores = spark.sparkContext.defaultParallelism
    session = {key: spark.conf.get(key) for key in ("spark.sql.files.maxPartitionBytes",
                                                    "spark.sql.files.openCostInBytes")}
    split_bytes = chosen_split_bytes(plan.files, cores, session, config.spark)  # as the job picks it
    heads = read_heads(fs, plan)
    spec = load_spec(config.tokenizer)
    engine, why = choose_engine(spec.json, config.tokenizer_engine)
    share = sampled_kept_share(plan, heads, build_codec(spec.json, engine, spec.clean_up_spaces), config.recipe)
    run = estimate(plan, heads, split_bytes, cores, config, cache_dir(), share)
    lines = [f"plan for {redact(input_uri)}: recipe {config.recipe.label}, tokenizer {spec.name} ({why})"]
    lines += [f"warning: {warning}" for warning in recipe.warnings(config.recipe)]
    if plan.missing:
        lines.append(f"no file for: {', '.join(plan.missing)}")
    if plan.ignored:
        lines.append(f"ignored (not meta_<Category> files): {', '.join(plan.ignored)}")
    return lines + describe(run)
