"""Any tokenizer, offline: tokenizers trained here, loaded from files and folders, on the engine that fits.

tiktoken must be chosen only where it gives exactly the Hugging Face engine's
ids and decoded text; these tokenizers are small enough to train in a second.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import SHARED, in_ci, require_shared, shared_available
from tokenizer_fixtures import (
    END_OF_TEXT,
    byte_level_bpe,
    derive_tiktoken_merges,
    train_byte_level_bpe,
    train_wordpiece,
)

from pricecurate.rules import recipe
from pricecurate.rules.categories import CATEGORIES
from pricecurate.sample import generate_records
from pricecurate.tokenizer import tiktoken_codec
from pricecurate.tokenizer.codec import Codec
from pricecurate.tokenizer.engine import build_codec, choose_engine, codec_for
from pricecurate.tokenizer.spec import load_spec
from pricecurate.tokenizer.tiktoken_codec import (
    TiktokenCodec,
    UnsupportedTokenizer,
    rank_derived_merges,
    tiktoken_mismatch,
)

VOCAB_SIZE = 3000
CUTS = (1, 3, 7, 50, 160)
AWKWARD = [
    f"special {END_OF_TEXT} inside, and{END_OF_TEXT}glued",
    END_OF_TEXT,
    "日本語のテキスト 中文 한국어",
    "emoji 😀👍🏽 and a family 👨‍👩‍👧",
    "windows\r\nline\r\n\r\nends",
    "line\u2028separator\u2029paragraph",
    "   leading and trailing spaces   ",
    " \t\n ",
    "it is n't , ok . yes ' s",  # what the clean-up changes
    "",
]


def corpus_records() -> list[dict]:
    """The shared records; generated ones only where ../shared is absent outside CI."""
    if not (shared_available() or in_ci()):
        return [r for c in CATEGORIES for r in generate_records(c, 120, seed=11)]
    require_shared()  # in CI a missing ../shared fails here
    records = []
    for path in sorted((SHARED / "data").glob("*/*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return records


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    records = corpus_records()
    texts = [record["title"] for record in records if isinstance(record.get("title"), str)]
    texts += [p.text for p in map(recipe.prepare, records) if isinstance(p, recipe.Candidate)]
    assert len(texts) > 2000
    return texts


@pytest.fixture(scope="module")
def trained_bpe(corpus):
    return train_byte_level_bpe(corpus, VOCAB_SIZE)


@pytest.fixture(scope="module")
def rank_ordered_bpe(trained_bpe):
    return derive_tiktoken_merges(trained_bpe)


@pytest.fixture(scope="module")
def wordpiece(corpus):
    return train_wordpiece(corpus, VOCAB_SIZE)


def test_trained_merges_are_not_tiktoken_so_the_hugging_face_engine_runs_them(trained_bpe):
    spec_json = trained_bpe.to_str()
    engine, why = choose_engine(spec_json, "auto")
    print(f"trained byte-level BPE: {why}")
    # The trainer keeps one merge per learned token, in learning order; tiktoken's ranks imply every split.
    assert engine == "tokenizers" and "merges do not follow its ranks" in why
    with pytest.raises(UnsupportedTokenizer, match="merges do not follow"):
        choose_engine(spec_json, "tiktoken")
    with pytest.raises(UnsupportedTokenizer):
        build_codec(spec_json, "tiktoken")
    assert isinstance(build_codec(spec_json, "auto"), Codec)


def pieces(codec, text: str) -> list[str]:
    return codec.decode([[token_id] for token_id in codec.encode([text])[0]])


def test_tiktoken_differs_where_merges_do_not_follow_the_ranks(monkeypatch):
    # "bc" ranks before "ab", and "abc" is made only from "ab" + "c": in "abcd" the Hugging Face engine
    # makes "bc" and stops, while tiktoken joins "a" + "bc" because "abc" is a token.
    # (The trained tokenizer above gives tiktoken's ids on the corpus all the same, but nothing proves it.)
    trainer_style = byte_level_bpe([("b", "c"), ("a", "b"), ("ab", "c")])
    spec_json = trainer_style.to_str()
    assert choose_engine(spec_json) == ("tokenizers", "tokenizers: its merges do not follow its ranks "
                                        "(merge 2 is 'ab c', the ranks give 'a bc')")
    assert pieces(build_codec(spec_json, "tokenizers"), "abcd") == ["a", "bc", "d"]
    monkeypatch.setattr(tiktoken_codec, "tiktoken_mismatch", lambda data: None)
    assert pieces(build_codec(spec_json, "tiktoken"), "abcd") == ["abc", "d"]
    monkeypatch.undo()
    rank_ordered = derive_tiktoken_merges(trainer_style).to_str()
    assert choose_engine(rank_ordered)[0] == "tiktoken"
    assert pieces(build_codec(rank_ordered, "tokenizers"), "abcd") == ["abc", "d"]


def test_rank_ordered_merges_choose_tiktoken(rank_ordered_bpe):
    spec_json = rank_ordered_bpe.to_str()
    engine, why = choose_engine(spec_json, "auto")
    print(f"same vocab, merges derived from its ranks: {why}")
    assert engine == "tiktoken" and choose_engine(spec_json, "tiktoken")[0] == "tiktoken"
    assert choose_engine(spec_json, "tokenizers") == ("tokenizers", "tokenizers: requested")
    assert isinstance(build_codec(spec_json, "auto"), TiktokenCodec)


def test_the_library_derives_the_merges_the_fixture_derives(rank_ordered_bpe):
    model = json.loads(rank_ordered_bpe.to_str())["model"]
    tokens = sorted(model["vocab"], key=model["vocab"].get)
    assert rank_derived_merges(tokens, model["vocab"]) == model["merges"]
    assert len(model["merges"]) > VOCAB_SIZE - 257  # more than one merge for some tokens


def test_merges_written_as_strings_are_read_too(rank_ordered_bpe):
    data = json.loads(rank_ordered_bpe.to_str())
    data["model"]["merges"] = [" ".join(merge) for merge in data["model"]["merges"]]
    assert tiktoken_mismatch(data) is None
    data["model"]["merges"][10:12] = data["model"]["merges"][11:9:-1]
    assert "merge 10 is" in tiktoken_mismatch(data)


@pytest.mark.parametrize("clean_up_spaces", [True, False])
def test_both_engines_give_the_same_ids_and_text(rank_ordered_bpe, corpus, clean_up_spaces):
    spec_json = rank_ordered_bpe.to_str()
    fast = build_codec(spec_json, "tiktoken", clean_up_spaces)
    reference = build_codec(spec_json, "tokenizers", clean_up_spaces)
    assert isinstance(fast, TiktokenCodec) and isinstance(reference, Codec)
    texts = corpus + AWKWARD
    fast_ids, reference_ids = fast.encode(texts), reference.encode(texts)
    assert fast_ids == reference_ids
    assert reference_ids[texts.index(END_OF_TEXT)] == [rank_ordered_bpe.token_to_id(END_OF_TEXT)]
    for cut in CUTS:  # including cuts inside multi-byte characters
        heads = [ids[:cut] for ids in reference_ids]
        assert fast.decode(heads) == reference.decode(heads), cut


@pytest.mark.parametrize("engine", ["tiktoken", "tokenizers"])
def test_decoding_cleans_up_spaces_only_when_the_tokenizer_says_so(rank_ordered_bpe, engine):
    spec_json = rank_ordered_bpe.to_str()
    sha256 = "test-" + engine
    cleaned, kept = codec_for(spec_json, sha256, engine, True), codec_for(spec_json, sha256, engine, False)
    assert cleaned is not kept  # the worker cache keys on the setting
    ids = kept.encode(["it is n't , ok ."])
    assert cleaned.decode(ids) == ["it isn't, ok."]
    assert kept.decode(ids) == ["it is n't , ok ."]


def test_a_word_piece_tokenizer_runs_on_the_hugging_face_engine(wordpiece):
    spec_json = wordpiece.to_str()
    engine, why = choose_engine(spec_json, "auto")
    print(f"WordPiece: {why}")
    assert (engine, why) == ("tokenizers", "tokenizers: has a normalizer (BertNormalizer)")
    with pytest.raises(UnsupportedTokenizer, match="normalizer"):
        choose_engine(spec_json, "tiktoken")
    codec = build_codec(spec_json, "auto")
    assert isinstance(codec, Codec)
    ids = codec.encode(["Price of the Kitchen Set", ""])
    assert len(ids[0]) >= 5 and ids[1] == []
    assert codec.decode(ids) == ["price of the kitchen set", ""]


def test_unknown_engine_is_refused(wordpiece):
    with pytest.raises(ValueError, match="unknown tokenizer engine"):
        choose_engine(wordpiece.to_str(), "fastest")


def test_saved_truncation_and_padding_are_ignored(trained_bpe):
    # transformers ignores them unless asked; the recipe counts and cuts tokens itself.
    data = json.loads(trained_bpe.to_str())
    data["truncation"] = {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0}
    data["padding"] = {"strategy": {"Fixed": 64}, "direction": "Right", "pad_to_multiple_of": None,
                       "pad_id": 0, "pad_type_id": 0, "pad_token": END_OF_TEXT}
    text = "a title that is longer than four tokens"
    assert build_codec(json.dumps(data), "tokenizers").encode([text]) == build_codec(
        trained_bpe.to_str(), "tokenizers").encode([text])


# load_spec: files and folders, offline.


def write_config(folder, **settings) -> None:
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "X", **settings}), encoding="utf-8")


@pytest.mark.parametrize("config, clean_up_spaces", [
    ({"clean_up_tokenization_spaces": True}, True),
    ({"clean_up_tokenization_spaces": False}, False),
    ({}, False),  # transformers' default when the key is absent
    (None, False),  # no tokenizer_config.json at all
])
def test_a_folder_with_tokenizer_json(tmp_path, trained_bpe, config, clean_up_spaces):
    trained_bpe.save(str(tmp_path / "tokenizer.json"))
    if config is not None:
        write_config(tmp_path, **config)
    spec = load_spec(str(tmp_path))
    assert spec.name == str(tmp_path)
    assert spec.json == (tmp_path / "tokenizer.json").read_text(encoding="utf-8")
    assert spec.clean_up_spaces is clean_up_spaces
    assert spec.identity() == {"name": str(tmp_path), "sha256": spec.sha256, "clean_up_spaces": clean_up_spaces}


def test_a_folder_written_by_save_pretrained(tmp_path, trained_bpe):
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=trained_bpe, clean_up_tokenization_spaces=True).save_pretrained(
        str(tmp_path)
    )
    spec = load_spec(str(tmp_path))
    assert spec.clean_up_spaces is True
    assert build_codec(spec.json).encode(["a title"]) == build_codec(trained_bpe.to_str()).encode(["a title"])


def test_a_single_file_of_any_name(tmp_path, trained_bpe):
    path = tmp_path / "my.json"
    trained_bpe.save(str(path))
    spec = load_spec(str(path))
    assert (spec.name, spec.clean_up_spaces) == (str(path), False)
    assert spec.json == path.read_text(encoding="utf-8")
    write_config(tmp_path, clean_up_tokenization_spaces=True)  # honoured beside a file too
    assert load_spec(str(path)).clean_up_spaces is True


def one_line_error(call, *args) -> str:
    with pytest.raises(ValueError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 700, message
    return message


def test_a_file_that_is_not_a_tokenizer(tmp_path):
    cases = (("notes.json", b'{"hello": 1}'), ("broken.json", b"{not json"), ("tokenizer.txt", b""),
             ("latin1.json", '{"caf\u00e9": 1}'.encode("latin-1")))
    for name, content in cases:
        path = tmp_path / name
        path.write_bytes(content)
        message = one_line_error(load_spec, str(path))
        assert str(path) in message and "is not a tokenizer JSON file" in message


def test_a_missing_path(tmp_path):
    missing = str(tmp_path / "no-such-tokenizer")
    message = one_line_error(load_spec, missing)
    assert missing in message and "no such file or folder" in message


@pytest.fixture
def hub_offline(monkeypatch):
    """Any attempt to reach the Hub fails at once instead of retrying for most of a minute."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_a_folder_without_tokenizer_json(tmp_path, hub_offline):
    write_config(tmp_path, clean_up_tokenization_spaces=True)
    started = time.monotonic()
    message = one_line_error(load_spec, str(tmp_path))
    assert time.monotonic() - started < 30
    assert str(tmp_path) in message and "has no tokenizer.json" in message and "save_pretrained" in message


def test_a_folder_transformers_can_convert(tmp_path, wordpiece, hub_offline):
    # A slow (vocab.txt) BERT tokenizer: transformers builds the fast one locally, as before.
    vocab = sorted(wordpiece.get_vocab().items(), key=lambda item: item[1])
    (tmp_path / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "clean_up_tokenization_spaces": True}), encoding="utf-8"
    )
    spec = load_spec(str(tmp_path))
    assert spec.clean_up_spaces is True
    assert choose_engine(spec.json)[0] == "tokenizers"
    assert build_codec(spec.json).decode(build_codec(spec.json).encode(["The Kitchen"])) == ["the kitchen"]


def test_an_unreachable_hub_id(hub_offline):
    message = one_line_error(load_spec, "no-such-org/no-such-tokenizer")
    assert "no-such-org/no-such-tokenizer" in message and "Hub may be unreachable" in message
    assert "save_pretrained" in message
