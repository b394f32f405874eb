"""Lines the reader skipped, and ``.gz`` files past ``max_gzip_bytes``: noticed in the rules' tally, counted apart.

The reader holds at most ``read.line_limit`` bytes of a line and skips a longer one, so no line can exhaust the
JVM; but a skipped line leaves no row, and where it crosses a split boundary the reader yields pieces of it
instead. Files where that may have happened show in the tally at no extra cost: a file's rows and their bytes
fall short of its size (for a ``.gz``, of the size its trailer gives, modulo 4 GiB), or a row is longer than a
record may be. Only those files are scanned here, on the driver in bounded memory, for the lines the reader
skips when it reads a file whole, and read again as one split each: there the skips are clean, the rows are the
other lines in order, and ``stages.in_segments`` numbers them around the skipped ones, which are quarantined
(``too_large``). A ``.gz`` that decompresses past ``max_gzip_bytes`` is read again up to there.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.pipeline.arrow_rules import Tally, long_line_outcomes, tally_outcomes
from pricecurate.pipeline.read import InputFile, InputPlan, is_compressed, read_whole, whole_file_splits
from pricecurate.rules.lines import QUARANTINED, RAW_SNIPPET_CHARS, TOO_LARGE
from pricecurate.spark.fs import HadoopFS
from pricecurate.spark.session import CACHE

# Hadoop's reader fails on a line of 2 GiB or more, and may split one just under it: a file is read up to
# such a line, and named damaged.
JVM_LINE_CEILING = 2**31 - 2**20
_CHUNK_BYTES = 8 << 20
_BOM = b"\xef\xbb\xbf"
_LF, _CR = 10, 13
_DAMAGE = (EOFError, OSError, zlib.error)  # a .gz that cannot be decoded further


@dataclass(frozen=True)
class FileScan:
    """A file's lines as the reader sees them when it reads the file whole, counted apart from it."""

    lines: int  # lines read (up to ``cut``, when there is one)
    long_lines: tuple[tuple[int, bytes], ...]  # (line number, its first bytes) of each line the reader skips
    cut: str | None = None  # why the lines after ``lines`` are not read

    @property
    def rows(self) -> int:
        """Rows the reader yields for the lines read."""
        return self.lines - len(self.long_lines)

    def segment_starts(self) -> list[int]:
        """The rows before each skipped line (``stages.in_segments``)."""
        return [line - k for k, (line, _) in enumerate(self.long_lines, start=1)]

    def describe(self, name: str) -> str:
        """One line for the progress output."""
        found = []
        if self.long_lines:
            count = len(self.long_lines)
            found.append(f"{count:,} line(s) longer than max_record_bytes (line {self.long_lines[0][0]:,}"
                         f"{' and more' if count > 1 else ''}) skipped unread and quarantined as too_large")
        if self.cut:
            found.append(f"{self.cut} ({self.lines:,} lines)")
        return f"{name}: {'; '.join(found)}; reading it again alone"


def scan_lines(read: Callable[[int], bytes], max_line: int, max_bytes: int | None = None,
               chunk_bytes: int = _CHUNK_BYTES) -> FileScan:
    """The lines of the stream ``read(n)`` returns (up to ``n`` bytes, none at its end), as Hadoop's line
    reader sees them in one split.

    A line ends at LF, CR or CRLF (or at the end); a UTF-8 byte order mark before the first is not part of it;
    a line whose bytes, its end included, reach ``max_line`` is skipped. With ``max_bytes``, only lines ending
    within the stream's first ``max_bytes`` bytes are read, and at most one byte more is asked for. Memory
    stays within a chunk and a snippet, however long the lines.
    """
    scan = _Scan(max_line, max_bytes)
    pending = b""  # bytes held back: a CR that may start a CRLF, or the first bytes, until a mark can be told
    while scan.cut is None:
        want = chunk_bytes if max_bytes is None else min(chunk_bytes, max_bytes + 1 - scan.read)
        try:
            data = read(want)
        except _DAMAGE as error:
            scan.cut = f"cannot be decoded past byte {scan.read:,}: {error}"
            break
        scan.read += len(data)
        chunk = pending + data
        if scan.base == 0 and data and len(chunk) < len(_BOM):
            pending = chunk
            continue
        pending = chunk[-1:] if data and chunk.endswith(b"\r") else b""
        scan.take(chunk[: len(chunk) - len(pending)], at_end=not data)
        if not data:
            break
    return FileScan(scan.lines, tuple(scan.long_lines), scan.cut)


class _Scan:
    """``scan_lines``' state between chunks."""

    def __init__(self, max_line: int, max_bytes: int | None):
        self.max_line, self.max_bytes = max_line, max_bytes
        self.lines = 0  # lines ended so far
        self.start = 0  # where the current line starts in the stream
        self.base = 0  # where the next chunk starts
        self.read = 0  # bytes asked for and given so far
        self.bom = 0
        self.head = b""  # the current line's first bytes seen so far (its text: no mark, no line end)
        self.long_lines: list[tuple[int, bytes]] = []
        self.cut: str | None = None

    def text_start(self, line_start: int) -> int:
        return line_start + (self.bom if self.lines == 0 else 0)

    def take(self, chunk: bytes, at_end: bool) -> None:
        if self.base == 0 and chunk.startswith(_BOM):
            self.bom = len(_BOM)
        ends, text_ends = _line_ends(chunk, self.base)
        if self.max_bytes is not None:
            ends = ends[: int(np.searchsorted(ends, self.max_bytes, side="right"))]
        for end, text_end in zip(ends.tolist(), text_ends.tolist()):
            text_start = self.text_start(self.start)
            if not self._fits(end - text_start):
                return
            if end - text_start >= self.max_line:
                known = self.head if self.start < self.base else b""
                text = known + chunk[max(text_start - self.base, 0): max(text_end - self.base, 0)]
                self.long_lines.append((self.lines + 1, text[:RAW_SNIPPET_CHARS]))
            self.lines += 1
            self.start = end
        if self.max_bytes is not None and self.read > self.max_bytes:
            self.cut = f"decompresses past max_gzip_bytes ({self.max_bytes:,} bytes); read up to there"
            return
        text_start = self.text_start(self.start)
        known = self.head if self.start < self.base else b""
        self.head = (known + chunk[max(text_start - self.base, 0):][:RAW_SNIPPET_CHARS])[:RAW_SNIPPET_CHARS]
        self.base += len(chunk)
        if not self._fits(self.base - text_start):
            return
        if at_end and self.base > text_start:  # a last line without a line end is a line
            if self.base - text_start >= self.max_line:
                self.long_lines.append((self.lines + 1, self.head))
            self.lines += 1

    def _fits(self, size: int) -> bool:
        """False (and the scan cut there) for a line the reader cannot skip: it fails on 2 GiB."""
        if size < JVM_LINE_CEILING:
            return True
        self.cut = f"line {self.lines + 1:,} is too long for the reader (2 GiB or more); read up to there"
        return False


def _line_ends(chunk: bytes, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each line ending in ``chunk`` ends (after its line end) and where its text ends, ascending, as
    offsets in the stream (``chunk`` starts at ``base``; a CR at its end is a line end of its own)."""
    codes = np.frombuffer(chunk, np.uint8)
    lf = np.flatnonzero(codes == _LF)
    cr = np.flatnonzero(codes == _CR)
    alone = cr[(cr + 1 == len(codes)) | (codes[np.minimum(cr + 1, len(codes) - 1)] != _LF)]
    lf_text = lf - ((lf > 0) & (codes[np.maximum(lf - 1, 0)] == _CR))
    ends = np.concatenate([lf, alone]) + 1
    order = np.argsort(ends, kind="stable")
    return ends[order] + base, np.concatenate([lf_text, alone])[order] + base


@contextmanager
def _local_copy(spark, uri: str):
    """A local path to the file: its own on a local disk, else a copy in a temporary folder (Python reads a
    local file a hundred times faster than through the JVM's gateway)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(conf)
    if str(fs.getUri().getScheme()) == "file":
        yield str(path.toUri().getPath())
        return
    folder = tempfile.mkdtemp(prefix="pricecurate-scan-")
    try:
        local = os.path.join(folder, str(path.getName()))
        fs.copyToLocalFile(False, path, jvm.org.apache.hadoop.fs.Path(local), True)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def scan_file(spark, file: InputFile, max_line: int, max_gzip_bytes: int) -> FileScan:
    """``scan_lines`` over one input file, decompressed (and bounded by ``max_gzip_bytes``) if it is a .gz."""
    with _local_copy(spark, file.uri) as path, open(path, "rb") as stored:
        if is_compressed(file):
            with gzip.GzipFile(fileobj=stored) as stream:
                # read1: what was decoded before any damage comes back, not lost with a bigger read.
                return scan_lines(stream.read1, max_line, max_gzip_bytes)
        return scan_lines(stored.read, max_line)


def _gzip_size_modulo(fs: HadoopFS, file: InputFile) -> int | None:
    """The uncompressed size, modulo 4 GiB, in a gzip file's last four bytes (of its last member, if several)."""
    if file.size < 20:  # no room for a header and a trailer: Spark's reading decides what it is
        return None
    return int.from_bytes(fs.read_range(file.uri, file.size - 4, 4), "little")


def may_have_skipped(fs: HadoopFS, plan: InputPlan, tallies: list[Tally], max_line: int, max_gzip_bytes: int,
                     damaged: frozenset[str]) -> list[InputFile]:
    """Files whose reading may have skipped or cut lines, or that may decompress past ``max_gzip_bytes``.

    A file's bytes are its rows' bytes plus one line end each (-1 for a last line without one, +1 per CRLF,
    +3 for a byte order mark), plus the lines skipped, each at least ``max_line`` bytes: a file whose rows
    fall short of its size by less than ``max_line - 2`` bytes skipped none. A row over ``max_record_bytes``
    (a ``too_large`` quarantine) may be a piece of a line cut at a split boundary. A damaged file's size (a
    .gz's trailer) says nothing of what was read: only its rows are checked. A file with about ``max_line``
    CRLF lines, or a .gz of several members (its trailer counts the last), is scanned for nothing.
    """
    rows: dict[str, int] = defaultdict(int)
    covered: dict[str, int] = defaultdict(int)  # the rows' bytes and one line end each
    oversized: set[str] = set()
    for t in tallies:
        rows[t.file] += t.lines
        covered[t.file] += t.line_bytes + t.lines
        if t.status == QUARANTINED and t.reason == TOO_LARGE:
            oversized.add(t.file)
    suspects = []
    for file in plan.files:
        if file.name in oversized:
            suspects.append(file)
        elif is_compressed(file) and covered[file.name] + rows[file.name] + len(_BOM) > max_gzip_bytes:
            suspects.append(file)  # with CRLF ends and a mark, its rows may pass the bound
        elif file.name not in damaged and not _too_few_for_a_line(_shortfall(fs, file, covered[file.name]), max_line):
            suspects.append(file)
    return suspects


def _shortfall(fs: HadoopFS, file: InputFile, covered: int) -> int:
    """The bytes of a file that its rows and their line ends do not cover; for a .gz, modulo 4 GiB (from its
    trailer; -1 stays -1), or 0 for a file too short to have one."""
    if not is_compressed(file):
        return file.size - covered
    modulo = _gzip_size_modulo(fs, file)
    return 0 if modulo is None else (modulo - covered + 1) % 2**32 - 1


def _too_few_for_a_line(shortfall: int, max_line: int) -> bool:
    """True when the bytes of a file that its rows do not cover cannot hold a skipped line."""
    return -1 <= shortfall < max_line - 2


def read_again(spark, first: DataFrame, scans: dict[InputFile, FileScan], rules, corrupt: dict[str, str],
               max_line: int) -> tuple[DataFrame, list[Tally]]:
    """The outcomes with the scanned files' rows read again, whole, numbered around their skipped lines, and
    each skipped line quarantined; their tally. ``rules(lines, segments)`` applies the item rules.

    The other files' outcomes are taken from ``first`` (cached), which is released.
    """
    names = [file.name for file in scans]
    skipped = [(file.category, file.name, k, text.decode("utf-8", "replace"))
               for file, scan in scans.items() for k, (_, text) in enumerate(scan.long_lines, start=1)]
    with whole_file_splits(spark):
        lines = read_whole(spark, [(file, scan.rows if scan.cut else None) for file, scan in scans.items()],
                           frozenset(corrupt), max_line)
        again = rules(lines, {file.name: scan.segment_starts() for file, scan in scans.items()})
        if skipped:
            again = again.unionByName(long_line_outcomes(spark, skipped))
        outcomes = first.filter(~F.col("file").isin(names)).unionByName(again).persist(CACHE)
        tallies = tally_outcomes(outcomes)
    first.unpersist()
    read = defaultdict(int)
    for t in tallies:
        read[t.file] += t.lines
    for file, scan in scans.items():
        # The reader and the scan must agree on every line, or numbers would be wrong: a bug, never a result.
        if read[file.name] != scan.lines and file.name not in corrupt:
            raise RuntimeError(f"{file.name}: read again, it gave {read[file.name]:,} lines where the scan "
                               f"counted {scan.lines:,}")
    return outcomes, tallies


def find_skipped_lines(spark, plan: InputPlan, tallies: list[Tally], max_line: int, max_gzip_bytes: int,
                       corrupt: dict[str, str]) -> dict[InputFile, FileScan]:
    """The files that must be read again (``read_again``), each with its scan; files the tally only made
    suspect, whose scan finds nothing skipped or cut, were read right and are left out."""
    suspects = may_have_skipped(HadoopFS(spark), plan, tallies, max_line, max_gzip_bytes, frozenset(corrupt))
    scans = {file: scan_file(spark, file, max_line, max_gzip_bytes) for file in suspects}
    return {file: scan for file, scan in scans.items() if scan.long_lines or scan.cut}
