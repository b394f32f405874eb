"""The tiktoken engine gives the Hugging Face engine's ids and decoded text, exactly: on generated and awkward
text everywhere, and on every real record of ../shared (required in CI)."""

from __future__ import annotations

import json
import time

import pytest
from conftest import SHARED, SHARED_SETS, load_golden, require_shared

from pricecurate.rules import recipe
from pricecurate.rules.categories import CATEGORIES
from pricecurate.sample import generate_records
from pricecurate.tokenizer.codec import Codec
from pricecurate.tokenizer.engine import build_codec, choose_engine
from pricecurate.tokenizer.tiktoken_codec import TiktokenCodec, UnsupportedTokenizer, tiktoken_mismatch

AWKWARD = [
    "Price is $12 – café ① ² 日本語のテキスト 😀👍🏽 \u00a0 \t tabs\r\nand\u2028separators",
    "special <|begin_of_text|> inside, and <|eot_id|> too",
    "   leading spaces and trailing   ",
    "",
]


@pytest.fixture(scope="module")
def engines(tokenizer_spec):
    return build_codec(tokenizer_spec.json, "tiktoken"), build_codec(tokenizer_spec.json, "tokenizers")


def texts_of(records: list[dict]) -> list[str]:
    """What the rules tokenize: each title, and each text the rules build from a record."""
    prepared = [p.text for p in map(recipe.prepare, records) if isinstance(p, recipe.Candidate)]
    return [r["title"] for r in records] + prepared


@pytest.fixture(scope="module")
def generated_texts() -> list[str]:
    return texts_of([r for c in CATEGORIES for r in generate_records(c, 120, seed=11)]) + AWKWARD


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """Every record of ../shared/data: skipped without it, failed in CI."""
    require_shared()
    records = []
    for path in sorted((SHARED / "data").glob("*/*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    # The golden files have one line per input record, counted by the reference: every record is here.
    assert len(records) == sum(len(load_golden(name)) for name in SHARED_SETS) > 12_000
    return texts_of(records)


def assert_same_ids_and_text(engines, texts: list[str]) -> None:
    fast, reference = engines
    assert isinstance(fast, TiktokenCodec) and isinstance(reference, Codec)
    fast_ids, reference_ids = fast.encode(texts), reference.encode(texts)
    assert fast_ids == reference_ids
    # Cuts at many lengths, including inside multi-byte characters.
    for cut in (1, 3, 7, 50, recipe.MAX_TOKENS):
        heads = [ids[:cut] for ids in reference_ids]
        assert fast.decode(heads) == reference.decode(heads), cut


def test_same_ids_and_decoded_text_on_generated_and_awkward_text(engines, generated_texts):
    assert_same_ids_and_text(engines, generated_texts)


def test_same_ids_and_decoded_text_on_every_real_record(engines, real_texts):
    assert_same_ids_and_text(engines, real_texts)


@pytest.mark.parametrize("corpus", ["generated_texts", "real_texts"])
def test_prompts_count_the_same(engines, corpus, request):
    fast, reference = engines
    prompts = [recipe.make_prompt(text, 19.5) for text in request.getfixturevalue(corpus)[::10]]  # from every file
    assert [len(i) for i in fast.encode(prompts)] == [len(i) for i in reference.encode(prompts)]


def test_llama_fits_tiktoken_exactly(tokenizer_spec):
    # Our derivation of merges from ranks is transformers' TikTokenConverter's, which built this tokenizer.
    assert tokenizer_spec.clean_up_spaces is True
    started = time.perf_counter()
    mismatch = tiktoken_mismatch(json.loads(tokenizer_spec.json))
    checked = time.perf_counter()
    assert mismatch is None
    engine, why = choose_engine(tokenizer_spec.json, "auto")
    assert (engine, why) == ("tiktoken", "tiktoken: byte-level BPE whose merges follow its ranks")
    print(f"\nLlama 3.1 exactness check: {checked - started:.2f} s (parse and check), "
          f"choose_engine {time.perf_counter() - checked:.2f} s")


@pytest.fixture(scope="module")
def llama_data(tokenizer_spec) -> dict:
    return json.loads(tokenizer_spec.json)


def reshaped(data: dict, model=None, pre_tokenizer_steps=None, **top) -> dict:
    """A changed copy that shares the unchanged parts (copying 128k tokens per case would be slow)."""
    changed = {**data, **top, "model": {**data["model"], **(model or {})}}
    if pre_tokenizer_steps:
        steps = data["pre_tokenizer"]["pretokenizers"]
        steps = [{**step, **pre_tokenizer_steps.get(i, {})} for i, step in enumerate(steps)]
        changed["pre_tokenizer"] = {**data["pre_tokenizer"], "pretokenizers": steps}
    return changed


def merges_swapped(data: dict) -> list:
    merges = list(data["model"]["merges"])
    merges[100], merges[101] = merges[101], merges[100]
    return merges


SHAPES = {
    "without ignore_merges": (lambda d: reshaped(d, model={"ignore_merges": False}), "BPE without ignore_merges"),
    "with a normalizer": (lambda d: reshaped(d, normalizer={"type": "NFC"}), "has a normalizer (NFC)"),
    "with a prefix space": (lambda d: reshaped(d, pre_tokenizer_steps={1: {"add_prefix_space": True}}),
                            "ByteLevel pre-tokenizer splits again or adds a prefix space"),
    "with an inverted split": (lambda d: reshaped(d, pre_tokenizer_steps={0: {"invert": True}}),
                               "Split pre-tokenizer is not an isolated, non-inverted regex"),
    "with another decoder": (lambda d: reshaped(d, decoder={"type": "Fuse"}), "decoder is Fuse, not ByteLevel"),
    "with byte fallback": (lambda d: reshaped(d, model={"byte_fallback": True}), "BPE with byte fallback"),
    "with merges out of rank order": (lambda d: reshaped(d, model={"merges": merges_swapped(d)}),
                                      "merges do not follow its ranks (merge 100 is"),
    "with a gap in the ids": (lambda d: reshaped(d, model={"vocab": {**d["model"]["vocab"], "!": 200000}}),
                              "vocab ids are not 0..n-1"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_other_tokenizer_shapes_are_not_for_tiktoken(llama_data, shape):
    change, reason = SHAPES[shape]
    assert reason in tiktoken_mismatch(change(llama_data))


def test_other_tokenizer_shapes_use_the_hugging_face_engine(llama_data):
    other = json.dumps(reshaped(llama_data, model={"ignore_merges": False}))
    assert choose_engine(other, "auto") == ("tokenizers", "tokenizers: BPE without ignore_merges")
    with pytest.raises(UnsupportedTokenizer, match="cannot reproduce this tokenizer: BPE without ignore_merges"):
        choose_engine(other, "tiktoken")
    with pytest.raises(UnsupportedTokenizer):
        TiktokenCodec(other)
    assert isinstance(build_codec(other, "auto"), Codec)


def test_the_engine_check_is_kept_per_tokenizer_on_this_machine(llama_data, tmp_path, monkeypatch):
    from pricecurate.tokenizer import engine, tiktoken_codec

    monkeypatch.setenv("PRICECURATE_CACHE", str(tmp_path))
    other = json.dumps(reshaped(llama_data, model={"ignore_merges": False}))
    engine._tiktoken_mismatch.cache_clear()
    assert choose_engine(other, "auto") == ("tokenizers", "tokenizers: BPE without ignore_merges")
    [kept] = (tmp_path / engine.CHECKS).iterdir()
    assert json.loads(kept.read_text()) == {"version": engine.CHECK_VERSION, "mismatch": "BPE without ignore_merges"}

    def not_again(data):
        raise AssertionError("checked again")

    monkeypatch.setattr(tiktoken_codec, "tiktoken_mismatch", not_again)
    engine._tiktoken_mismatch.cache_clear()
    assert choose_engine(other, "auto")[0] == "tokenizers"  # from the kept answer
    for damaged in ("", '{"version": 1, "mism', json.dumps({"version": 0, "mismatch": None})):
        kept.write_text(damaged)  # cut short, or from an older check: asked again
        engine._tiktoken_mismatch.cache_clear()
        with pytest.raises(AssertionError, match="checked again"):
            choose_engine(other, "auto")
    engine._tiktoken_mismatch.cache_clear()
