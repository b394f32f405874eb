"""A corrupted corpus: every line is kept, dropped or quarantined, and the books balance."""

from __future__ import annotations

import glob
import gzip
import json
import os

import pytest

from helpers import data_dir, manifest
from pricecurate.config import load_config
from pricecurate.job import run_job
from pricecurate.sample import generate_records

GOOD = [json.dumps(r) for r in generate_records("Automotive", 60, seed=3)]
MAX_RECORD_BYTES = 100_000  # the rule is the same at the default 4 MiB; a small limit keeps the test fast
BAD_LINES = {
    b'{"title": "cut off", "price": 3': "invalid_json",
    GOOD[0].encode() + b" trailing garbage": "invalid_json",
    b'"just a string"': "not_an_object",
    b"": "empty_line",
    b'{"title": "caf\xe9 \xff", "parent_asin": "B0BADUTF8"}': "invalid_utf8",
    json.dumps({**json.loads(GOOD[1]), "title": None}).encode(): "bad_type:title",
    json.dumps({**json.loads(GOOD[1]), "title": 12}).encode(): "bad_type:title",
    json.dumps({**json.loads(GOOD[1]), "description": "one string"}).encode(): "bad_type:description",
    json.dumps({**json.loads(GOOD[1]), "features": ["ok", None]}).encode(): "bad_type:features",
    json.dumps({**json.loads(GOOD[1]), "details": ["a", "b"]}).encode(): "bad_type:details",
    json.dumps({**json.loads(GOOD[1]), "price": {"amount": 3}}).encode(): "bad_type:price",
    json.dumps({k: v for k, v in json.loads(GOOD[1]).items() if k != "parent_asin"}).encode(): "missing_field:parent_asin",
    json.dumps({**json.loads(GOOD[1]), "title": "x" * 200_000}).encode(): "too_large",  # over MAX_RECORD_BYTES
}


@pytest.fixture(scope="module")
def corrupted_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    source = root / "in"
    source.mkdir()
    mixed = [line.encode() for line in GOOD[:30]] + list(BAD_LINES) + [line.encode() for line in GOOD[30:]]
    (source / "meta_Automotive.jsonl").write_bytes(b"\n".join(mixed) + b"\n")

    electronics = "\n".join(json.dumps(r) for r in generate_records("Electronics", 400, seed=3)) + "\n"
    packed = gzip.compress(electronics.encode(), mtime=0)
    (source / "meta_Electronics.jsonl.gz").write_bytes(packed[: int(len(packed) * 0.6)])  # truncated download
    (source / "meta_Toys_and_Games.jsonl").write_bytes(b"")

    output = root / "out"
    config = load_config("conf/course.yaml", ["categories=all", f"max_record_bytes={MAX_RECORD_BYTES}"])
    run_job(spark, config, str(source), str(output))
    return output, manifest(str(output))


def _complete_lines_before_the_damage(path) -> int:
    """Lines Python's gzip module decodes whole from a truncated file: counted apart from the job."""
    lines = 0
    with gzip.open(path, "rb") as handle:
        try:
            for line in handle:
                lines += line.endswith(b"\n")
        except EOFError:
            pass
    return lines


def test_every_line_is_accounted_for(corrupted_run):
    output, info = corrupted_run
    acc = info["accounting"]
    source = output.parent / "in"
    counted = {
        "meta_Automotive.jsonl": (source / "meta_Automotive.jsonl").read_bytes().count(b"\n"),
        "meta_Electronics.jsonl.gz": _complete_lines_before_the_damage(source / "meta_Electronics.jsonl.gz"),
        "meta_Toys_and_Games.jsonl": 0,
    }
    assert counted["meta_Automotive.jsonl"] == len(GOOD) + len(BAD_LINES)
    assert {name: counts["lines"] for name, counts in acc["files"].items()} == counted
    assert acc["lines"] == sum(counted.values())
    for entry in (acc, *acc["files"].values()):
        assert entry["lines"] == entry["kept"] + sum(entry["dropped"].values()) + sum(entry["quarantined"].values())


def test_each_bad_line_is_quarantined_with_its_reason(corrupted_run):
    output, info = corrupted_run
    expected = {}
    for reason in BAD_LINES.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert info["accounting"]["files"]["meta_Automotive.jsonl"]["quarantined"] == dict(sorted(expected.items()))
    rows = [json.loads(line) for path in glob.glob(os.path.join(data_dir(output), "quarantine", "*.json")) for line in open(path)]
    assert len(rows) == sum(info["accounting"]["quarantined"].values())
    by_line = {row["line"]: row for row in rows}
    for offset, reason in enumerate(BAD_LINES.values()):
        row = by_line[31 + offset]  # the bad lines follow the first 30 good ones
        assert (row["file"], row["reason"]) == ("meta_Automotive.jsonl", reason)
        assert len(row["raw"]) <= 4096


def test_truncated_gzip_is_read_up_to_the_damage_and_reported(corrupted_run):
    _, info = corrupted_run
    [damaged] = info["input"]["damaged_files"]
    assert damaged["file"] == "meta_Electronics.jsonl.gz"
    read = info["accounting"]["files"]["meta_Electronics.jsonl.gz"]
    source = corrupted_run[0].parent / "in" / "meta_Electronics.jsonl.gz"
    assert damaged["lines_read"] == read["lines"] == _complete_lines_before_the_damage(source) > 0
    assert info["categories"]["Electronics"]["kept"] > 0
