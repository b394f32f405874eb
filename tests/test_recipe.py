"""The item rules, one at a time, on small hand-made inputs."""

from __future__ import annotations

import json

import pytest

from pricecurate.rules import recipe
from pricecurate.rules.recipe import Candidate, Drop
from tests.conftest import require_kernel
from tests.helpers import shared_records


@pytest.mark.parametrize(
    "record, expected",
    [
        ({}, Drop(recipe.NO_PRICE)),
        ({"price": None}, Drop(recipe.NO_PRICE)),
        ({"price": ""}, Drop(recipe.NO_PRICE)),
        ({"price": "None"}, Drop(recipe.UNPARSABLE_PRICE)),
        ({"price": "$12.99"}, Drop(recipe.UNPARSABLE_PRICE)),
        ({"price": True}, Drop(recipe.UNPARSABLE_PRICE)),
        ({"price": "nan"}, Drop(recipe.PRICE_OUT_OF_RANGE)),
        ({"price": 0.49}, Drop(recipe.PRICE_OUT_OF_RANGE)),
        ({"price": 999.5}, Drop(recipe.PRICE_OUT_OF_RANGE)),
        ({"price": 0.5}, 0.5),
        ({"price": 999.49}, 999.49),
        ({"price": " 7.5 "}, 7.5),
        ({"price": 25}, 25.0),
        ({"price": "1_0"}, 10.0),  # Python's float() accepts it, so the recipe does
    ],
)
def test_parse_price(record, expected):
    assert recipe.parse_price(record) == expected


def test_details_are_presented_as_python_json_dumps():
    record = json.loads('{"details": {"Größe": "L", "Best Sellers Rank": {"Toys": 5}}}')
    assert recipe.presented_details(record) == '{"Gr\\u00f6\\u00dfe": "L", "Best Sellers Rank": {"Toys": 5}}'
    assert recipe.presented_details({}) is None


def test_contents_order_and_removals():
    details = json.dumps({"Item Weight": "2 pounds", "Batteries Required?": "No", "Product Dimensions": "1 x 2"})
    contents = recipe.assemble_contents(["Desc one", "Desc two"], ["Feat"], details)
    # "Item", ":" and "Product " are deleted; the whole batteries pair goes first.
    assert contents == 'Desc one\nDesc two\nFeat\n{" Weight" "2 pounds", , "Dimensions" "1 x 2"}\n'
    assert recipe.assemble_contents([], [], None) == ""
    assert recipe.assemble_contents([], ["a"], "") == "a\n"


def test_scrub_collapses_junk_and_drops_part_numbers():
    assert recipe.scrub('  Big [lamp] {"x": 1}  ,, 【Top】 ') == "Big lamp x 1, Top"
    assert recipe.scrub("a , b ,,, c") == "a, b, c"
    assert recipe.scrub("W10195039 AB12345 1/2-inch abc123 x86_64-linux") == "abc123"
    # Unicode digits count as digits; a no-break space is whitespace.
    assert recipe.scrub("１２３４５６７ part\u00a0ok") == "part ok"


def test_junk_collapsed_as_the_rule_states_it():
    """scrub's first step splits on whitespace instead of running _JUNK_RUN: the same text for every whitespace
    character Python knows, every junk character, and runs of them."""
    import random

    spaces = [chr(code) for code in range(0x3100) if chr(code).isspace()]
    alphabet = spaces + list(':[]"{}【】') + ["a", "B7", "é", "日", ",", "."]
    rng = random.Random(4)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert " ".join(text.translate(recipe._JUNK_AS_SPACE).split()) == recipe._JUNK_RUN.sub(" ", text).strip()


def _scrub_as_stated(text: str) -> str:
    """Rule 4 spelled out, one step at a time, as the reference recipe states it."""
    text = recipe._JUNK_RUN.sub(" ", text).strip()
    text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
    return " ".join(word for word in text.split(" ")
                    if len(word) < 7 or word.isalpha() or not any(char.isdigit() for char in word))


def test_scrub_is_the_rule_as_stated_on_ascii_and_other_texts():
    """scrub takes a faster path for ASCII texts (bytes, one regular expression): the same text as the rule spelled
    out, for every ASCII whitespace and separator character, junk, commas, digits and long words."""
    import random

    ascii_pieces = [chr(code) for code in range(128) if chr(code).isspace()] + list(':[]"{},,,.') + [
        "a", "B", "7", "x86_64", "abc1234", "abcdefg", "1/2-inch", "W10195039", ",", " ", "  "]
    other_pieces = ["é", "日", "２", "٣", "²", "\u00a0", "【", "】", "\u2003"]
    rng = random.Random(26)
    for round_ in range(6000):
        pieces = ascii_pieces + (other_pieces if round_ % 3 == 0 else [])
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        assert recipe.scrub(text) == _scrub_as_stated(text), repr(text)


def test_the_c_scrub_is_the_python_scrub_on_every_shared_record_and_generated_text():
    """The C kernel (``_scrub.c``) returns what ``scrub_in_python`` returns: the titles and contents of the shared
    records (as ``prepare`` gives them, in every script), and generated texts of every whitespace character,
    separators, junk, commas, letters and digits of several scripts, and a lone surrogate."""
    import random

    kernel = require_kernel(recipe._native_scrub, "_scrub")
    texts = [text for record in shared_records(10_000) if isinstance(record.get("title"), str)
             for text in (record["title"], _contents(record)) if text is not None]
    assert sum(not text.isascii() for text in texts) > 100
    rng = random.Random(4)
    alphabet = [chr(code) for code in range(0x3100) if chr(code).isspace()] + list(':[]"{}【】,,,.-/0123456789') + [
        "a", "B7", "x86", "abcdefg", "é", "日", "２", "٣", "²", "Ⅻ", "ß", "İ", "\U0001f600", "\ud800"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(20_000)]
    for text in texts:
        assert kernel(text) == recipe.scrub_in_python(text), repr(text)
    with pytest.raises(TypeError, match="str"):
        kernel(b"bytes")


def _contents(record: dict) -> str | None:
    try:
        return recipe.assemble_contents(record.get("description") or [], record.get("features") or [],
                                        recipe.presented_details(record))[: recipe.CEILING_CHARS]
    except TypeError:  # a record of the wrong shape (the edge set): the rules quarantine it before this
        return None


def test_clean_up_skips_only_texts_it_would_not_change():
    import random

    pieces = [before for before, _ in recipe.DECODE_CLEANUPS] + ["a", " ", "'", "n", "t", ".", "x y"]
    rng = random.Random(6)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        expected = text
        for before, after in recipe.DECODE_CLEANUPS:
            expected = expected.replace(before, after)
        assert recipe.clean_up_decoded(text) == expected


def test_clean_up_decoded_in_order():
    assert recipe.clean_up_decoded("it is n't , ok . yes ' s") == "it isn't, ok. yes's"


def test_prompt_rounds_half_to_even_and_test_prompt_cuts_at_first_prefix():
    assert recipe.make_prompt("t", 2.5).endswith("Price is $2.00")
    assert recipe.make_prompt("t", 3.5).endswith("Price is $4.00")
    prompt = recipe.make_prompt("Was Price is $9 now", 10.0)
    assert recipe.make_test_prompt(prompt) == "How much does this cost to the nearest dollar?\n\nWas Price is $"


def test_prepare_drops_short_contents_and_truncates_long_ones():
    # 299 characters plus the newline: exactly 300, which is not more than 300.
    short = {"price": 5.0, "title": "T", "parent_asin": "A", "description": ["x" * 299]}
    assert recipe.prepare(short) == Drop(recipe.TOO_FEW_CHARS, 5.0)
    just_enough = {**short, "description": ["x" * 300]}
    assert isinstance(recipe.prepare(just_enough), Candidate)
    long = {"price": 5.0, "title": "T", "parent_asin": "A", "description": ["word " * 400]}
    prepared = recipe.prepare(long)
    assert isinstance(prepared, Candidate)
    assert prepared.text.startswith("T\nword word")
    # 1,120 characters = 224 x "word ", scrubbed to 224 words joined by spaces.
    assert prepared.text == "T\n" + " ".join(["word"] * 224)


def test_details_are_presented_as_json_dumps_presents_them(monkeypatch):
    """The details text comes from the C encoder made once: the same text json.dumps gives, whatever the values;
    without the C encoder, json.dumps itself."""
    import json
    import random

    rng = random.Random(7)
    scalars = [None, True, False, 0, -1, 2**70, 1.5, -0.0, 1e300, float("nan"), float("inf"), float("-inf"), "",
               "plain", 'quote " and \\ backslash', "tab\tline\nend", "café 日本 \U0001f600", "\ud800 lone", "\x00\x1f"]

    def value(depth: int):
        kind = rng.random()
        if depth > 0 and kind < 0.2:
            return [value(depth - 1) for _ in range(rng.randint(0, 3))]
        if depth > 0 and kind < 0.4:
            return {rng.choice(["Brand", "Item Weight", "日", "a\"b", ""]) + str(i): value(depth - 1)
                    for i in range(rng.randint(0, 3))}
        return rng.choice(scalars)

    for _ in range(3000):
        details = value(4)
        assert recipe.presented_details({"details": details}) == json.dumps(details)
    deep = "x"
    for _ in range(255):  # 510 levels, as deep as the rules let a record's details nest (lines.MAX_DEPTH)
        deep = {"k": [deep]}
    assert recipe.presented_details({"details": deep}) == json.dumps(deep)
    assert recipe.presented_details({}) is None

    monkeypatch.setattr(recipe.json_encoder, "c_make_encoder", None)
    assert recipe._json_dumps_as_default() is json.dumps

    def other_signature(*args):
        raise TypeError("make_encoder() takes other arguments")

    monkeypatch.setattr(recipe.json_encoder, "c_make_encoder", other_signature)
    assert recipe._json_dumps_as_default() is json.dumps
