"""The job with a tokenizer of the user's own, offline: a folder with tokenizer.json, and a budget of its own."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from conftest import SHARED, require_shared
from helpers import manifest, split_rows
from tokenizer_fixtures import derive_tiktoken_merges, train_byte_level_bpe, train_wordpiece

from pricecurate.config import load_config
from pricecurate.pipeline.job import run_job
from pricecurate.rules import recipe
from pricecurate.rules.lines import KEPT, build_items
from pricecurate.tokenizer.engine import build_codec

# A 3,000-token vocabulary spends about 1.5 tokens where Llama 3.1 spends one, so the budget is raised.
BUDGET = ["recipe.min_tokens=200", "recipe.max_tokens=260", "recipe.ceiling_chars=2000"]


def _real_lines() -> list[str]:
    require_shared()
    return [line for path in sorted((SHARED / "data" / "real").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _training_texts() -> list[str]:
    require_shared()
    records = [json.loads(line) for path in sorted((SHARED / "data").glob("*/*.jsonl"))
               for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [r["title"] for r in records] + [p.text for p in map(recipe.prepare, records)
                                            if isinstance(p, recipe.Candidate)]


@pytest.fixture(scope="module")
def tokenizer_folders(tmp_path_factory):
    """A tiktoken-exact byte-level BPE (no space clean-up) and a WordPiece (with it), each saved as a folder."""
    texts = _training_texts()
    root = tmp_path_factory.mktemp("tokenizers")
    folders = {}
    for name, tokenizer, clean_up in (("bpe", derive_tiktoken_merges(train_byte_level_bpe(texts, 3000)), False),
                                      ("wordpiece", train_wordpiece(texts, 3000), True)):
        folder = root / name
        folder.mkdir()
        tokenizer.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps({"clean_up_tokenization_spaces": clean_up}))
        folders[name] = folder
    return folders


@pytest.mark.parametrize("name, engine, clean_up", [("bpe", "tiktoken", False), ("wordpiece", "tokenizers", True)])
def test_the_job_runs_with_a_tokenizer_folder(spark, tmp_path, tokenizer_folders, name, engine, clean_up):
    folder = tokenizer_folders[name]
    config = load_config("conf/course.yaml", ["categories=all", "split.train=300", "split.test=20",
                                              f"tokenizer={folder}", *BUDGET])
    output = str(tmp_path / "out")
    result = run_job(spark, config, str(SHARED / "data" / "real"), output)
    info = manifest(output)
    assert info == result.manifest
    file_text = (folder / "tokenizer.json").read_text(encoding="utf-8")
    assert info["tokenizer"]["name"] == str(folder)
    assert info["tokenizer"]["sha256"] == hashlib.sha256(file_text.encode("utf-8")).hexdigest()
    assert (info["tokenizer"]["engine"], info["tokenizer"]["clean_up_spaces"]) == (engine, clean_up)
    assert info["recipe"]["changes"] == {"ceiling_chars": 2000, "min_tokens": 200, "max_tokens": 260}
    card = open(f"{output}/README.md", encoding="utf-8").read()
    assert f"`{folder}` tokenizer" in card and info["tokenizer"]["sha256"][:16] in card
    assert "cut to 260 tokens" in card

    # The items are exactly what the pure rules make with this tokenizer, on either engine.
    lines = _real_lines()
    for codec_engine in ("tokenizers", engine):
        codec = build_codec(file_text, codec_engine, clean_up)
        expected = Counter((o.prompt, o.token_count) for o in build_items(lines, codec, rules=config.recipe)
                           if o.status == KEPT)
        assert Counter((r[0], r[5]) for r in split_rows(output, "items")) == expected, codec_engine
    assert 0 < info["accounting"]["kept"] == sum(expected.values())
    assert info["accounting"]["dropped"].get(recipe.TOO_FEW_TOKENS, 0) > 0
