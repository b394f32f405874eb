"""A corrupted corpus: every line is kept, dropped or quarantined, each file's count and reasons as the test
derives them from the lines it wrote."""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections import Counter

import pytest
from helpers import data_dir, manifest, split_rows

from pricecurate.config import load_config
from pricecurate.pipeline.job import run_job
from pricecurate.rules.lines import DROPPED, KEPT, QUARANTINED, build_items
from pricecurate.sample import generate_records
from pricecurate.tokenizer.engine import codec_for

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


def _complete_lines(path) -> list[bytes]:
    """Lines Python's gzip module decodes whole from a truncated file: read apart from the job."""
    lines = []
    with gzip.open(path, "rb") as handle:
        try:
            for line in handle:
                if line.endswith(b"\n"):
                    lines.append(line[:-1])
        except EOFError:
            pass
    return lines


def _complete_lines_before_the_damage(path) -> int:
    return len(_complete_lines(path))


def _entry(outcomes: list[tuple[str, str | None]]) -> dict:
    """An accounting entry counted from (status, reason) per line, as the manifest writes one."""
    kept = sum(status == KEPT for status, _ in outcomes)
    reasons = {status: dict(sorted(Counter(r for s, r in outcomes if s == status).items()))
               for status in (DROPPED, QUARANTINED)}
    return {"lines": len(outcomes), "kept": kept, **reasons}


def _category(file_name: str) -> str:
    return file_name[len("meta_"):].split(".")[0]


def _outcomes_per_file(source, tokenizer_spec) -> dict[str, list[tuple[str, str | None]]]:
    """(status, reason) of each file's lines, from the lines themselves: each planted bad line by the reason this
    test gave it, the others through the item rules in this process (not the job's reading, counting or adding up)."""
    codec = codec_for(tokenizer_spec.json, tokenizer_spec.sha256, "tiktoken")

    def outcomes(lines: list[bytes]) -> list[tuple[str, str | None]]:
        planted = [(QUARANTINED, BAD_LINES[line]) for line in lines if line in BAD_LINES]
        others = [(o.status, o.reason) for o in build_items([line for line in lines if line not in BAD_LINES],
                                                              codec, MAX_RECORD_BYTES)]
        assert QUARANTINED not in {status for status, _ in others}  # only the planted lines are bad
        return planted + others

    automotive = (source / "meta_Automotive.jsonl").read_bytes()
    assert automotive.endswith(b"\n")
    return {
        "meta_Automotive.jsonl": outcomes(automotive[:-1].split(b"\n")),
        "meta_Electronics.jsonl.gz": outcomes(_complete_lines(source / "meta_Electronics.jsonl.gz")),
        "meta_Toys_and_Games.jsonl": [],
    }


def test_every_line_is_accounted_for_in_its_file_with_its_reason(corrupted_run, tokenizer_spec):
    output, info = corrupted_run
    acc = info["accounting"]
    outcomes = _outcomes_per_file(output.parent / "in", tokenizer_spec)
    expected = {name: _entry(lines) for name, lines in outcomes.items()}
    assert expected["meta_Automotive.jsonl"]["lines"] == len(GOOD) + len(BAD_LINES)
    assert expected["meta_Automotive.jsonl"]["quarantined"] == dict(sorted(Counter(BAD_LINES.values()).items()))
    assert all(entry["kept"] and entry["dropped"] for name, entry in expected.items() if "Toys" not in name)
    assert acc["files"] == expected
    assert acc["categories"] == {_category(name): entry for name, entry in expected.items()}
    assert {key: acc[key] for key in ("lines", KEPT, DROPPED, QUARANTINED)} == _entry(
        [outcome for lines in outcomes.values() for outcome in lines])
    written = Counter(row[2] for row in split_rows(str(output), "items"))  # the kept lines are the items written
    assert {_category(name): entry["kept"] for name, entry in expected.items() if entry["kept"]} == dict(written)


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
