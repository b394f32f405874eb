"""The tiktoken engine gives the Hugging Face engine's ids and decoded text, exactly."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED, in_ci, shared_available
from pricecurate import recipe
from pricecurate.categories import CATEGORIES
from pricecurate.sample import generate_records
from pricecurate.tiktoken_codec import TiktokenCodec, UnsupportedTokenizer
from pricecurate.tokenizer import Codec, build_codec

AWKWARD = [
    "Price is $12 – café ① ² 日本語のテキスト 😀👍🏽 \u00a0 \t tabs\r\nand\u2028separators",
    "special <|begin_of_text|> inside, and <|eot_id|> too",
    "   leading spaces and trailing   ",
    "",
]


@pytest.fixture(scope="module")
def engines(tokenizer_spec):
    return build_codec(tokenizer_spec.json, "tiktoken"), build_codec(tokenizer_spec.json, "tokenizers")


def corpus_texts() -> list[str]:
    records = [r for c in CATEGORIES for r in generate_records(c, 120, seed=11)]
    if shared_available() or in_ci():  # in CI a missing ../shared fails here rather than shrinking the corpus
        for path in sorted((SHARED / "data").glob("*/*.jsonl")):
            records += [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    texts = [record["title"] for record in records]
    texts += [p.text for p in map(recipe.prepare, records) if isinstance(p, recipe.Candidate)]
    return texts + AWKWARD


def test_same_ids_and_decoded_text_on_the_corpus(engines):
    fast, reference = engines
    assert isinstance(fast, TiktokenCodec) and isinstance(reference, Codec)
    texts = corpus_texts()
    assert len(texts) > 4000
    fast_ids, reference_ids = fast.encode(texts), reference.encode(texts)
    assert fast_ids == reference_ids
    # Cuts at many lengths, including inside multi-byte characters.
    for cut in (1, 3, 7, 50, recipe.MAX_TOKENS):
        heads = [ids[:cut] for ids in reference_ids]
        assert fast.decode(heads) == reference.decode(heads), cut


def test_prompts_count_the_same(engines):
    fast, reference = engines
    prompts = [recipe.make_prompt(text, 19.5) for text in corpus_texts()[:500]]
    assert [len(i) for i in fast.encode(prompts)] == [len(i) for i in reference.encode(prompts)]


def test_other_tokenizer_shapes_use_the_hugging_face_engine(tokenizer_spec):
    data = json.loads(tokenizer_spec.json)
    data["model"]["ignore_merges"] = False
    other = json.dumps(data)
    with pytest.raises(UnsupportedTokenizer):
        TiktokenCodec(other)
    assert isinstance(build_codec(other, "auto"), Codec)
    with pytest.raises(UnsupportedTokenizer):
        build_codec(other, "tiktoken")
