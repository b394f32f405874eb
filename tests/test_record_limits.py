"""Lines no run can be stopped by: records nested too deep, lines past ``max_record_bytes``, a .gz that inflates past
``max_gzip_bytes``. Each is quarantined or cut and named; every other line keeps its number and its outcome."""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import random
from collections import Counter

import pyarrow.parquet as pq
import pytest
from helpers import data_dir, manifest

from pricecurate.config import load_config
from pricecurate.pipeline.job import run_job
from pricecurate.pipeline.read import discover, plan_layout, read_lines
from pricecurate.rules.lines import DEFAULT_MAX_RECORD_BYTES, DROPPED, QUARANTINED, build_items
from pricecurate.sample import generate_records
from pricecurate.spark.fs import HadoopFS
from pricecurate.tokenizer.engine import codec_for

TOO_DEEP, TOO_LARGE = "too_deep", "too_large"
BOM = b"\xef\xbb\xbf"


def _record(**fields) -> dict:
    return {"title": "Deep Widget", "parent_asin": "B0DEEP0001", "description": ["A sturdy widget for the shed. " * 20],
            "features": [], "price": 12.5, "details": {"Brand": "Acme"}, **fields}


def deep_line(levels: int, field: str) -> bytes:
    """A record whose ``field`` nests objects so that the line is ``levels`` deep (the record is the first level);
    written by hand, since json.dumps itself cannot go that deep."""
    inner = levels - 1
    head = json.dumps({key: value for key, value in _record().items() if key != field})
    return (head[:-1] + f', "{field}": ' + '{"a": ' * inner + "1" + "}" * inner + "}").encode()


def test_deep_records_are_quarantined_before_any_parser_recurses(codec):
    lines = [
        deep_line(1100, "extra"),  # orjson refuses it; the standard library's parser would recurse
        deep_line(1100, "details"),
        deep_line(900, "details"),  # orjson reads it; json.dumps of the details would recurse
    ]
    for given in (lines, [line.decode() for line in lines]):  # bytes as read, and text
        outcomes = build_items(given, codec)
        assert [(o.status, o.reason) for o in outcomes] == [(QUARANTINED, TOO_DEEP)] * len(lines)
        assert all(0 < len(o.raw) <= 4096 for o in outcomes)
    # Nested as deep outside the details, nothing recurses into it: it goes through the rules like any record.
    [outcome] = build_items([deep_line(900, "extra")], codec)
    assert outcome.status != QUARANTINED


def test_the_depth_limit_is_exact(codec):
    from pricecurate.rules.lines import MAX_DEPTH

    deepest, past = deep_line(MAX_DEPTH, "details"), deep_line(MAX_DEPTH + 1, "details")
    outcomes = build_items([deepest, past], codec)  # the deepest through json.dumps and the rules
    assert [o.reason if o.status == QUARANTINED else None for o in outcomes] == [None, TOO_DEEP]


def test_nesting_counts_brackets_outside_strings_only():
    from pricecurate.rules.lines import nesting

    assert nesting(b"[" * 700 + b"]" * 700) == 700
    assert nesting(b'{"a": "[[[{{{", "b": "\\\\", "c": ["\\"]]]{{"]}') == 2  # brackets in strings, escaped quotes
    assert nesting(b'"' + b'\\"[' * 5000) == 0  # an unclosed string: linear, not a backtracking search
    assert nesting(b"") == 0


def _reference_scan(data: bytes, max_line: int, max_bytes: int | None):
    """Lines as Hadoop's reader sees them in one split, found one byte at a time: (count, skipped lines, cut)."""
    spans, start, at = [], 0, 0
    while at < len(data):
        if data[at] in b"\r\n":
            end = at + 2 if data[at:at + 2] == b"\r\n" else at + 1
            spans.append((start, end, at))
            start = at = end
        else:
            at += 1
    bom = len(BOM) if data.startswith(BOM) else 0
    if len(data) - start - (bom if not spans else 0) > 0:
        spans.append((start, len(data), len(data)))
    cut = max_bytes is not None and len(data) > max_bytes
    if cut:
        spans = [span for span in spans if span[1] <= max_bytes and span[2] < len(data)]
    skipped = []
    for number, (first, end, text_end) in enumerate(spans, start=1):
        text_start = first + (bom if number == 1 else 0)
        if end - text_start >= max_line:
            skipped.append((number, data[text_start:text_end][:4096]))
    return len(spans), skipped, cut


def test_the_line_scan_sees_lines_as_the_reader_does_whatever_the_chunks():
    from pricecurate.pipeline.long_lines import scan_lines

    pieces = [b"a", b"bc", b"\n", b"\r", b"\r\n", b"x" * 7, BOM]
    rng = random.Random(7)
    for _ in range(3000):
        data = (BOM if rng.random() < 0.3 else b"") + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        max_line = rng.randint(2, 12)
        max_bytes = rng.choice([None, rng.randint(0, len(data) + 2)])
        scan = scan_lines(io.BytesIO(data).read, max_line, max_bytes, chunk_bytes=rng.randint(1, 9))
        expected = _reference_scan(data, max_line, max_bytes)
        assert (scan.lines, list(scan.long_lines), scan.cut is not None) == expected, (data, max_line, max_bytes)
    # CRLF around a long line, and the rows numbered around it
    scan = scan_lines(io.BytesIO(b"a\r\n" + b"x" * 20 + b"\r\nb\r\nc").read, 10)
    assert (scan.lines, scan.long_lines, scan.rows, scan.segment_starts()) == (4, ((2, b"x" * 20),), 3, [1])


def test_with_default_settings_the_reader_never_holds_a_line_past_the_limit(spark, tmp_path):
    """The bound is the JVM's: Spark's text reader skips the line, holding no more of it than the limit (a 300 MB
    line costs what this one does). Where the line crosses a split boundary a piece of it comes through, no longer
    than the limit; the job finds the line (below)."""
    line = b"x" * (DEFAULT_MAX_RECORD_BYTES + 4)
    (tmp_path / "meta_Automotive.jsonl").write_bytes(b"short\n" + line + b"\nafter\n")
    plan = discover(HadoopFS(spark), str(tmp_path), "all")
    values = [bytes(row["value"]) for row in read_lines(spark, plan, plan_layout(plan.files, 2)).collect()]
    assert values[0] == b"short" and values[-1] == b"after"
    assert max(len(value) for value in values) <= DEFAULT_MAX_RECORD_BYTES + 3 < len(line)


# The job on a corpus with every kind of line that once stopped a run.
MAX_RECORD_BYTES = 64 * 1024  # small limits keep the test cheap; the rules are the same at the defaults
MAX_GZIP_BYTES = 256 * 1024
SPLIT_BYTES = 32 * 1024  # long lines cross split boundaries, where the reader cuts them into pieces
GOOD = [json.dumps(r).encode() for r in generate_records("Automotive", 80, seed=5)]
TOYS = [json.dumps(r).encode() for r in generate_records("Toys_and_Games", 20, seed=5)]
ELECTRONICS = b"".join(json.dumps(r).encode() + b"\n" for r in generate_records("Electronics", 400, seed=5))


def _long(record: bytes, size: int) -> bytes:
    return json.dumps({**json.loads(record), "title": "long " + "x" * size}).encode()


def _lines(*groups: tuple[list[bytes], bytes]) -> bytes:
    return b"".join(line + end for lines, end in groups for line in lines)


CORPUS = {
    "meta_Automotive.jsonl": _lines(
        (GOOD[:20], b"\n"), ([deep_line(1100, "extra")], b"\n"), (GOOD[20:30], b"\r\n"),
        ([_long(GOOD[30], 150_000), _long(GOOD[31], 70_000)], b"\r\n"),  # two in a row, CRLF around them
        (GOOD[32:40], b"\r\n"), ([deep_line(900, "details")], b"\n"), (GOOD[40:60], b"\n"),
        ([_long(GOOD[60], 40_000 + SPLIT_BYTES * 2)], b"\n"), (GOOD[61:], b"\n"),
    ),
    # A .gz with a long first line after a byte order mark, CRLF, and a last line without a line end.
    "meta_Toys_and_Games.jsonl.gz": BOM + _lines(([_long(TOYS[0], 100_000)], b"\r\n"), (TOYS[1:], b"\r\n"))[:-2],
    "meta_Electronics.jsonl.gz": ELECTRONICS,  # inflates past MAX_GZIP_BYTES
}


def split_lines(data: bytes) -> list[bytes]:
    """The corpus' lines as the test wrote them (LF or CRLF ends, a mark before the first)."""
    lines = data.removeprefix(BOM).split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def expected_outcomes(tokenizer_spec) -> dict[str, list[tuple[str, str | None, str | None, str | None]]]:
    """(status, reason, prompt, raw snippet) of every line the job should read, from the lines themselves through the rules
    in this process; the .gz past the bound, only its lines that end within it."""
    codec = codec_for(tokenizer_spec.json, tokenizer_spec.sha256, "tiktoken")
    expected = {}
    for name, data in CORPUS.items():
        lines = split_lines(data)
        if name.endswith(".gz") and len(data) > MAX_GZIP_BYTES:
            lines = lines[: data[:MAX_GZIP_BYTES].count(b"\n")]  # those that end within the bound
        outcomes = build_items(lines, codec, MAX_RECORD_BYTES)
        expected[name] = [(o.status, o.reason, o.prompt, o.raw) for o in outcomes]
    return expected


@pytest.fixture(scope="module")
def limits_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    source = root / "in"
    source.mkdir()
    for name, data in CORPUS.items():
        (source / name).write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    config = load_config("conf/course.yaml", [
        "categories=all", f"max_record_bytes={MAX_RECORD_BYTES}", f"max_gzip_bytes={MAX_GZIP_BYTES}",
        f"spark.sql.files.maxPartitionBytes={SPLIT_BYTES}",
    ])
    run_job(spark, config, str(source), str(root / "out"))  # returns: no line stopped it
    output = str(root / "out")
    rows = [row for path in glob.glob(os.path.join(data_dir(output), "curated", "*.parquet"))
            for row in pq.read_table(path, columns=["file", "line", "status", "reason", "prompt", "raw"]).to_pylist()]
    quarantined = [json.loads(line) for path in glob.glob(os.path.join(data_dir(output), "quarantine", "*.json"))
                   for line in open(path, encoding="utf-8")]
    return manifest(output), rows, quarantined


def test_every_line_is_accounted_for_per_file(limits_run, tokenizer_spec):
    info, _, _ = limits_run
    expected = expected_outcomes(tokenizer_spec)
    files = info["accounting"]["files"]
    assert {name: entry["lines"] for name, entry in files.items()} == {name: len(o) for name, o in expected.items()}
    for entry in files.values():
        assert entry["lines"] == entry["kept"] + sum(entry["dropped"].values()) + sum(entry["quarantined"].values())
    auto = files["meta_Automotive.jsonl"]["quarantined"]
    assert (auto[TOO_DEEP], auto[TOO_LARGE]) == (2, 3)
    assert files["meta_Toys_and_Games.jsonl.gz"]["quarantined"] == {TOO_LARGE: 1}


def test_each_line_keeps_its_number_and_outcome(limits_run, tokenizer_spec):
    """Kept and quarantined lines by (file, line), dropped ones counted by reason: as the rules give them on the
    corpus' own lines, so lines after a skipped one are numbered right and good records are untouched."""
    info, rows, quarantined = limits_run
    expected = expected_outcomes(tokenizer_spec)
    got_items = {(r["file"], r["line"]): (r["status"], r["reason"], r["prompt"], r["raw"]) for r in rows}
    want_items = {(name, number): outcome for name, outcomes in expected.items()
                  for number, outcome in enumerate(outcomes, start=1) if outcome[0] != DROPPED}
    assert got_items == want_items
    # What the user reads: quarantine/ names each bad line's file, number and reason.
    assert {(r["file"], r["line"]): r["reason"] for r in quarantined} == {
        key: reason for key, (status, reason, *_) in want_items.items() if status == QUARANTINED}
    for name, outcomes in expected.items():
        drops = Counter(reason for status, reason, *_ in outcomes if status == DROPPED)
        assert info["accounting"]["files"][name]["dropped"] == dict(sorted(drops.items()))
    skipped = sorted((r["file"], r["line"]) for r in rows if r["reason"] == TOO_LARGE)
    assert skipped == [("meta_Automotive.jsonl", 32), ("meta_Automotive.jsonl", 33), ("meta_Automotive.jsonl", 63),
                       ("meta_Toys_and_Games.jsonl.gz", 1)]


def test_a_gzip_past_the_bound_is_read_up_to_it_and_named_damaged(limits_run):
    info, _, _ = limits_run
    [damaged] = info["input"]["damaged_files"]
    assert damaged["file"] == "meta_Electronics.jsonl.gz" and "max_gzip_bytes" in damaged["error"]
    assert damaged["lines_read"] == ELECTRONICS[:MAX_GZIP_BYTES].count(b"\n") > 0
    assert len(ELECTRONICS) > MAX_GZIP_BYTES
