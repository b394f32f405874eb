"""The tiktoken engine's tables kept in the cache folder: the same codec, and a damaged file never used."""

from __future__ import annotations

import json

import pytest

from pricecurate.tokenizer import tables
from pricecurate.tokenizer.spec import load_spec
from pricecurate.tokenizer.tiktoken_codec import TiktokenCodec, _unicode_to_byte

TEXTS = ["Hello world, the price is $12.99!", "  spaces   and\ttabs\n\n", "<|begin_of_text|> an added token",
         "émoji 🎉 ünïcode ÅÆØ", "1234567 numbers 89", ""]


@pytest.fixture(scope="module")
def spec_json():
    return load_spec("llama-3.1-8b").json


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRICECURATE_CACHE", str(tmp_path))
    return tmp_path


def _same(kept: TiktokenCodec, built: TiktokenCodec) -> None:
    assert kept.encode(TEXTS) == built.encode(TEXTS)
    assert kept.decode(built.encode(TEXTS)) == built.decode(built.encode(TEXTS))
    assert kept._token_bytes == built._token_bytes and kept._added_ids == built._added_ids
    assert kept._splits_at_spaces and built._splits_at_spaces


def test_kept_tables_make_the_codec_the_json_makes(spec_json, cache):
    built = TiktokenCodec(spec_json, verified=False)  # checked and built from the JSON; nothing kept
    assert not (cache / tables.FOLDER).exists()
    first = TiktokenCodec(spec_json, verified=True)  # built from the JSON, then kept
    path = tables.path_for(spec_json)
    assert path.is_file() and not list(path.parent.glob(".*.tmp"))
    kept = tables.read(path)
    assert kept is not None and kept == tables.from_json(json.loads(spec_json), _unicode_to_byte())
    _same(TiktokenCodec(spec_json, verified=True), built)  # read back from the file
    _same(first, built)


@pytest.mark.parametrize("damage", ["cut", "grown", "version", "garbage"])
def test_a_damaged_file_is_ignored_and_written_again(spec_json, cache, damage):
    TiktokenCodec(spec_json, verified=True)
    path = tables.path_for(spec_json)
    content = path.read_bytes()
    if damage == "cut":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "grown":
        path.write_bytes(content + b"x")
    elif damage == "version":
        path.write_bytes(content.replace(b'"version": 1', b'"version": 0', 1))
    else:
        path.write_bytes(b"\x00\x01 not tables")
    assert tables.read(path) is None
    _same(TiktokenCodec(spec_json, verified=True), TiktokenCodec(spec_json, verified=False))
    assert path.read_bytes() == content  # rewritten whole


def test_a_read_only_cache_folder_only_costs_the_build(spec_json, cache):
    (cache / tables.FOLDER).write_text("a file where the folder would be")
    _same(TiktokenCodec(spec_json, verified=True), TiktokenCodec(spec_json, verified=False))
