"""Find the ``meta_<Category>.jsonl[.gz]`` files and read their lines with file/line provenance.

Lines are read where they lie, many splits per file; each line's number is
filled in afterwards from a small table of per-split line counts. The reader
never holds more of a line than ``line_limit`` bytes: it skips a longer line
(``pricecurate.pipeline.long_lines`` finds and counts such lines).
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pricecurate.errors import InputError
from pricecurate.output.source import SOURCE_CARD
from pricecurate.paths import local_path
from pricecurate.rules.categories import CATEGORIES, FILE_NAME, category_of
from pricecurate.rules.lines import DEFAULT_MAX_RECORD_BYTES
from pricecurate.spark.fs import HadoopFS, redact
from pricecurate.spark.session import driver_table

# A .gz file cannot be split: one task reads it whole, and the big ones then
# have their lines spread over partitions of about this many (expanded) bytes.
BYTES_PER_PARTITION = 48 * 1024 * 1024
_GZIP_RATIO = 6  # rough expansion of the metadata JSON under gzip
# Input bytes per shuffle partition after the rules (about 22,000 kept items of the real data, 400,000 of
# their band rows): shuffle tasks stay this size however large the input. Spark's adaptive execution
# merges partitions smaller than its advisory size, so a small input does not pay for many.
SHUFFLE_INPUT_BYTES = 128 * 1024 * 1024

# Columns that locate a line before its number is known: the byte offset of the
# Spark split it was read in, and its position in the task that read it (rows of
# one split are consecutive there, in file order).
SPLIT_START = "split_start"
POSITION = "position"

# Hadoop's line reader, under Spark's text source, skips a line whose bytes (its end included) reach this
# setting, reading it through a buffer of a few kilobytes and holding at most that many of it. Read options
# go into the Hadoop configuration of the read, so each read sets it.
LINE_LENGTH_OPTION = "mapreduce.input.linerecordreader.line.maxlength"
_LARGEST_INT = 2**31 - 1  # the setting is a Java int


def line_limit(max_record_bytes: int) -> int:
    """The reader's line bound for ``max_record_bytes``: a line of up to that many bytes, CRLF and all (and a
    byte order mark, on the first), is read whole; a longer one is skipped."""
    return min(max_record_bytes + 3, _LARGEST_INT)


@dataclass(frozen=True)
class InputFile:
    uri: str
    name: str
    category: str
    size: int

    def manifest_entry(self) -> dict:
        return {"file": self.name, "category": self.category, "bytes": self.size, "uri": redact(self.uri)}


@dataclass(frozen=True)
class InputPlan:
    files: list[InputFile]
    missing: list[str]  # asked-for categories with no file in the input
    ignored: list[str]  # names of files that are not metadata (no meta_ prefix)

    @property
    def categories(self) -> list[str]:
        return sorted({f.category for f in self.files})


def _ignored(name: str) -> bool:
    # Hidden files and Hadoop/Spark markers (_SUCCESS, .crc) are not data; the source's card is read for its terms.
    return name.startswith((".", "_")) or name == SOURCE_CARD


def discover(fs: HadoopFS, input_uri: str, categories: list[str] | str) -> InputPlan:
    if not fs.exists(input_uri):
        raise InputError(f"input directory {redact(input_uri)} does not exist; pass --input DIR with meta_<Category>.jsonl files")
    if not fs.is_dir(input_uri):
        raise InputError(f"input {redact(input_uri)} is not a directory; pass the folder that holds meta_<Category>.jsonl files")
    found: dict[str, InputFile] = {}
    ignored: list[str] = []
    for entry in fs.list(input_uri):
        if _ignored(entry.name):
            continue
        if not entry.name.startswith("meta_"):
            ignored.append(entry.name)  # README, SOURCES.json...: named in the manifest, not read
            continue
        category = category_of(entry.name)
        if entry.is_dir or category is None:
            reason = "an unknown category" if FILE_NAME.match(entry.name) else "not a meta_<Category>.jsonl[.gz] file"
            raise InputError(
                f"input {redact(entry.uri)} is {reason}; move it out of the input directory "
                f"(categories: {', '.join(CATEGORIES)})"
            )
        if category in found:
            raise InputError(
                f"category {category} has two input files ({found[category].name} and {entry.name}); keep one"
            )
        found[category] = InputFile(entry.uri, entry.name, category, entry.size)

    wanted = sorted(found) if categories == "all" else list(categories)
    files = [found[c] for c in wanted if c in found]
    missing = [c for c in (CATEGORIES if categories == "all" else wanted) if c not in found]
    if not files and categories == "all":
        raise InputError(f"no meta_<Category>.jsonl[.gz] files in {redact(input_uri)}; pass --input the folder that "
                         "holds them (`pricecurate download` or `pricecurate sample` makes one)")
    if not files:
        held = sorted(f.name for f in found.values())
        holds = (f"it holds {', '.join(held[:3])}" + (f" and {len(held) - 3} more" if len(held) > 3 else "")
                 if held else "it holds no meta_<Category>.jsonl files")
        raise InputError(
            f"no input files for the chosen categories in {redact(input_uri)} (the config's `categories`, or "
            f"--categories: {', '.join(wanted)}; files like meta_{wanted[0]}.jsonl) and {holds}; "
            "`--categories all` takes every file there, or name the ones you want with --categories"
        )
    return InputPlan(files, missing, ignored)


def _estimated_bytes(file: InputFile) -> int:
    return file.size * (_GZIP_RATIO if file.name.endswith(".gz") else 1)


def shuffle_partitions(files: list[InputFile], parallelism: int) -> int:
    """Partitions of the shuffles after the rules: one per ``SHUFFLE_INPUT_BYTES`` of input, at least two per core."""
    return max(2 * max(parallelism, 1), math.ceil(sum(_estimated_bytes(f) for f in files) / SHUFFLE_INPUT_BYTES))


def is_compressed(file: InputFile) -> bool:
    return file.name.endswith(".gz")


# Reading tasks per core: with a few waves of them, the last wave's idle cores
# cost little. Each task runs the item rules, so it is seconds of work even small.
SPLITS_PER_CORE = 4
_BYTE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}


def parse_bytes(text: str) -> int:
    """A Spark size setting ("128MB", "134217728b", "4m", "1048576") in bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _BYTE_UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]


# Spark's estimate of what opening a file costs, in bytes read (spark.sql.files.openCostInBytes, 4 MB by default),
# decides how many small files share a read task. For local files a run sets this instead: opening one costs far
# less than a task's fixed overhead with its Python round trip (about 90 ms here, a few hundred records of rules),
# so the bundled sample's 34 files are read in 12 tasks, not 34 (items stage 13.0 -> 10.5 s, the same dataset).
LOCAL_OPEN_COST = 64 * 1024
_SPLIT_KEYS = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")


def read_settings(files: list[InputFile], parallelism: int, session: dict[str, str], config: dict) -> dict[str, int]:
    """The split size and open cost a run reads with (``session`` holds Spark's values of both): what the config
    sets, else ``LOCAL_OPEN_COST`` for local files and ``split_size`` under the session's maximum."""
    settings = {**session, **config}
    if "spark.sql.files.openCostInBytes" not in config and all(local_path(f.uri) is not None for f in files):
        settings["spark.sql.files.openCostInBytes"] = str(LOCAL_OPEN_COST)
    open_cost = parse_bytes(settings["spark.sql.files.openCostInBytes"])
    if "spark.sql.files.maxPartitionBytes" in config:
        split = parse_bytes(config["spark.sql.files.maxPartitionBytes"])
    else:
        split = split_size(files, parallelism, parse_bytes(settings["spark.sql.files.maxPartitionBytes"]), open_cost)
    return dict(zip(_SPLIT_KEYS, (split, open_cost)))


def chosen_split_bytes(files: list[InputFile], parallelism: int, session: dict[str, str], config: dict) -> int:
    """The read split size a run uses (``read_settings``)."""
    return read_settings(files, parallelism, session, config)["spark.sql.files.maxPartitionBytes"]


def packed_read_tasks(files: list[InputFile], split_bytes: int, open_cost: int, parallelism: int) -> int:
    """The read tasks Spark makes of ``files``: each cut into pieces, the pieces packed largest first into tasks
    of up to the split size, each piece counted with the open cost (as ``FilePartition.getFilePartitions``)."""
    sizes = [f.size for f in files if f.size > 0]
    total = sum(size + open_cost for size in sizes)
    split = min(split_bytes, max(open_cost, total // max(parallelism, 1)))
    pieces = []
    for file, size in ((f, f.size) for f in files if f.size > 0):
        step = size if is_compressed(file) else split
        pieces += [min(step, size - start) for start in range(0, size, step)]
    tasks, filled = 0, None
    for piece in sorted(pieces, reverse=True):
        if filled is None or filled + piece > split:
            tasks, filled = tasks + 1, 0
        filled += piece + open_cost
    return tasks


def split_size(files: list[InputFile], parallelism: int, max_split: int, open_cost: int) -> int:
    """The read split size: Spark's cap (``maxPartitionBytes``, 128 MB by default) on big inputs, smaller
    when that would give the cores fewer than ``SPLITS_PER_CORE`` splits each, but never below Spark's
    per-file open cost (below it, splits cost more to open than to read)."""
    splittable = sum(f.size for f in files if not is_compressed(f))
    return max(open_cost, min(max_split, splittable // (SPLITS_PER_CORE * max(parallelism, 1))))


@dataclass(frozen=True)
class ReadLayout:
    """How lines reach the Python stage.

    Uncompressed files are split by Spark (``spark.sql.files.maxPartitionBytes``)
    and their splits read in parallel, with no shuffle. A ``.gz`` file is read
    whole by one task; a big one would hold up every other core through the
    item rules, so its lines are hash-spread over ``spread_partitions``.
    ``partitions`` > 0 in the config spreads every line over exactly that many.
    """

    spread_files: frozenset[str]
    spread_partitions: int
    dominant_compressed: tuple[tuple[str, float], ...] = ()  # (file, share of the input) read by one task


def plan_layout(files: list[InputFile], parallelism: int, partitions: int = 0) -> ReadLayout:
    if partitions:
        return ReadLayout(frozenset(f.name for f in files), partitions)
    total = sum(_estimated_bytes(f) for f in files)
    target = max(1, min(BYTES_PER_PARTITION, total // (2 * max(parallelism, 1))))
    big = [f for f in files if is_compressed(f) and _estimated_bytes(f) > target]
    spread = sum(math.ceil(_estimated_bytes(f) / target) for f in big)
    # One task reading more than a core's share of the input sets the read's pace.
    dominant = tuple(
        (f.name, _estimated_bytes(f) / total) for f in big if _estimated_bytes(f) * max(parallelism, 1) > total
    )
    return ReadLayout(frozenset(f.name for f in big), spread, dominant)


# FILE_NAME's pattern in Java's syntax (no named groups), for the category column.
_CATEGORY_IN_NAME = r"^meta_([A-Za-z_]+)\.jsonl(?:\.gz)?$"


def _scan(spark: SparkSession, files: list[InputFile], tolerate_corruption: bool, max_line: int) -> DataFrame:
    reader = spark.read.option(LINE_LENGTH_OPTION, str(max_line))
    if tolerate_corruption:
        # Read up to the damage and stop there instead of failing the job.
        reader = reader.option("ignoreCorruptFiles", "true")
    # Every file here was found by its name's pattern (``discover``): the category is the name's own part. One
    # expression, where a map of the names cost a JVM call per name and category (0.4 s for 34 files).
    category = F.regexp_extract(F.col("_metadata.file_name"), _CATEGORY_IN_NAME, 1)
    return reader.text([f.uri for f in files]).select(
        category.alias("category"),
        F.col("_metadata.file_name").alias("file"),
        F.col("_metadata.file_block_start").alias(SPLIT_START),
        F.monotonically_increasing_id().alias(POSITION),
        F.col("value").cast("binary").alias("value"),
    )


def read_lines(spark: SparkSession, plan: InputPlan, layout: ReadLayout, corrupt: frozenset[str] = frozenset(),
               max_line: int = line_limit(DEFAULT_MAX_RECORD_BYTES)) -> DataFrame:
    """Columns ``category, file, split_start, position, value``; ``line_offsets`` turns the middle two into line numbers.

    ``value`` is the line's bytes: Spark does not check UTF-8, so the Python
    side decodes and quarantines what is not valid. Files named in ``corrupt``
    are read up to the point where they cannot be decoded any more. Lines of
    ``max_line`` bytes or more are skipped (``line_limit``).
    """

    def scans(files: list[InputFile]) -> DataFrame | None:
        sound = [f for f in files if f.name not in corrupt]
        damaged = [f for f in files if f.name in corrupt]
        parts = ([_scan(spark, sound, False, max_line)] if sound else []) + (
            [_scan(spark, damaged, True, max_line)] if damaged else [])
        return parts[0].unionByName(parts[1]) if len(parts) == 2 else (parts[0] if parts else None)

    direct = scans([f for f in plan.files if f.name not in layout.spread_files])
    spread = scans([f for f in plan.files if f.name in layout.spread_files])
    if spread is not None:
        spread = spread.repartition(layout.spread_partitions, "file", POSITION)
    if direct is None:
        return spread
    return direct if spread is None else direct.unionByName(spread)


@contextmanager
def whole_file_splits(spark: SparkSession):
    """Inside, Spark reads every file as one split; the settings are put back after.

    Spark cuts a file at ``maxPartitionBytes``, or finer when the input is
    small for the cores (never below ``openCostInBytes``): both are raised.
    Spark cuts the splits of a read when it first runs, so the read's first
    action belongs inside too; its splits then stay, cached or recomputed.
    """
    whole = str(1 << 50)
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    previous = {key: spark.conf.get(key) for key in keys}
    for key in keys:
        spark.conf.set(key, whole)
    try:
        yield
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)


def read_whole(spark: SparkSession, files: list[tuple[InputFile, int | None]], corrupt: frozenset[str],
               max_line: int) -> DataFrame:
    """The columns of ``read_lines`` for each (file, rows): the file read alone, as one split (inside
    ``whole_file_splits``), its first ``rows`` rows only when given, so a row's position is its index
    among the file's rows. A big file's rows are spread over partitions for the rules, as a .gz's are."""
    parts = []
    for file, rows in files:
        part = _scan(spark, [file], file.name in corrupt, max_line)
        if rows is not None:
            part = part.limit(rows)  # the reader stops there: nothing past it is read
        spread = math.ceil(_estimated_bytes(file) / BYTES_PER_PARTITION)
        parts.append(part.repartition(spread, "file", POSITION) if spread > 1 else part)
    return reduce(DataFrame.unionByName, parts)


def line_offsets(splits) -> dict[tuple[str, int], int]:
    """What to add to a line's position to get its 1-based line number, per (file, split_start).

    ``splits`` holds (file, split_start, lines, first_position) for every split
    that yielded a line. A split's first line follows all lines of the splits
    that start before it in the same file; its lines have consecutive positions.
    """
    offsets, next_line = {}, {}
    for file, start, lines, first_position in sorted(splits):
        first_line = next_line.get(file, 1)
        offsets[(file, start)] = first_line - first_position
        next_line[file] = first_line + lines
    return offsets


def number_lines(frame: DataFrame, offsets: dict[tuple[str, int], int], where: Column | None = None) -> DataFrame:
    """``frame`` with ``split_start, position`` replaced by ``line``, null on rows not ``where``."""
    spark = frame.sparkSession
    table = driver_table(
        spark,
        [(file, start, offset) for (file, start), offset in offsets.items()],
        f"file string, {SPLIT_START} long, _offset long",
    )
    columns = [c for c in frame.columns if c not in (SPLIT_START, POSITION)]
    line = F.col(POSITION) + F.col("_offset")
    line = (line if where is None else F.when(where, line)).alias("line")
    at = columns.index("file") + 1  # keep line right after file
    return frame.join(F.broadcast(table), ["file", SPLIT_START], "left").select(
        *columns[:at], line, *columns[at:]
    )


_READ_FAILURE = re.compile(r"Encountered error while reading file (\S+?)\.?(?:\s|$)")
_CAUSE = re.compile(r"Caused by: (?:[\w$]+\.)*([\w$]+): (.+)")


def read_failure(error: BaseException) -> str:
    """One line on why Spark could not read a file: the innermost cause its error names (``EOFException:
    Unexpected end of input stream``), else the error's first line."""
    causes = _CAUSE.findall(str(error))
    if causes:
        kind, message = causes[-1]
        return f"{kind}: {message.strip()}"[:300]
    return str(error).strip().splitlines()[0][:300]


def failed_file(error: BaseException, plan: InputPlan) -> InputFile | None:
    """The input file a failed Spark job could not read, if the error names one."""
    for match in _READ_FAILURE.finditer(str(error)):
        name = match.group(1).rstrip(".").rsplit("/", 1)[-1]
        for candidate in plan.files:
            if candidate.name == name:
                return candidate
    return None
