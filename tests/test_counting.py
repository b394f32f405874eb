"""Counting a prompt's tokens from the quoted text's tokens gives exactly what encoding the prompt gives."""

from __future__ import annotations

import random
import re

import pytest

from pricecurate.rules import recipe
from pricecurate.rules.recipe import Quote
from pricecurate.tokenizer.counting import known_middle
from pricecurate.tokenizer.engine import build_codec

PIECES = [
    "word", "Words", "it's", "don't", "we've", "a", "I", "x1234567", "2024", "12.5", "$19.99", "(note)", "co-op",
    ".", ",", "?", "!", "'", " ' ", "'s", "n't", "...", "--", "&", "<|begin_of_text|>", "<|eot_id|>", "<|x|>",
    "café", "naïve", "日本語", "テキスト", "😀", "👍🏽", "①", "²", "\u00a0", "\t", "\n", "\r\n", "\u2028", "  ", "   ",
]


def awkward_text(rng: random.Random) -> str:
    """Words and punctuation with mostly single spaces, now and then odd whitespace or characters."""
    parts = []
    for _ in range(rng.randint(1, 160)):
        parts.append(rng.choice(PIECES))
        parts.append(" " if rng.random() < 0.8 else rng.choice(["", " ", "  ", "\n", "\u3000"]))
    return "".join(parts)


@pytest.fixture(scope="module")
def llama(tokenizer_spec):
    """Both engines: the tiktoken one counts from the quote, the tokenizers one encodes every prompt."""
    return build_codec(tokenizer_spec.json, "tiktoken"), build_codec(tokenizer_spec.json, "tokenizers")


def quoted(codec, text: str, keep: int, price: float = 12.0):
    """A prompt as the rules make it: the text's first ``keep`` tokens decoded, between question and price."""
    ids = codec.encode([text])[0][:keep]
    decoded = codec.decode([ids])[0]
    prompt = recipe.make_prompt(decoded, price)
    return prompt, Quote(recipe.text_start(), len(decoded), text, ids)


def test_counts_equal_a_full_encode_on_awkward_texts(llama):
    fast, reference = llama
    rng = random.Random(5)
    prompts, quotes = [], []
    for _ in range(600):
        text = awkward_text(rng)
        prompt, quote = quoted(fast, text, rng.choice([1, 2, 7, 40, 160, 400]), rng.choice([0.5, 12.5, 999.49]))
        prompts.append(prompt)
        quotes.append(quote)
    expected = [len(ids) for ids in reference.encode(prompts)]
    assert fast.count_prompts(prompts, quotes) == expected
    assert reference.count_prompts(prompts, quotes) == expected
    # Both ways of counting are covered: from the quote (where the shortcut holds) and by a full encode (added
    # tokens, clean-up that changed the quote, no two boundaries).
    counted = sum(known_middle(p, q, fast._token_bytes) is not None for p, q in zip(prompts, quotes))
    assert 25 < counted < len(prompts) - 25


def test_counts_equal_a_full_encode_on_recipe_texts(llama):
    """Texts the recipe makes (scrubbed: single spaces), cut at 160 tokens as the rules cut them."""
    from pricecurate.sample import generate_records

    fast, reference = llama
    prompts, quotes = [], []
    for record in generate_records("Electronics", 300, seed=3):
        prepared = recipe.prepare(record)
        if isinstance(prepared, recipe.Candidate):
            prompt, quote = quoted(fast, prepared.text, recipe.MAX_TOKENS, prepared.price)
            prompts.append(prompt)
            quotes.append(quote)
    assert len(prompts) > 50
    assert fast.count_prompts(prompts, quotes) == [len(ids) for ids in reference.encode(prompts)]
    assert all(known_middle(p, q, fast._token_bytes) is not None for p, q in zip(prompts, quotes))


def test_a_space_after_a_non_space_splits_the_encoding_in_two(llama):
    """The property the shortcut rests on, for Llama 3's split pattern, with both engines."""
    rng = random.Random(9)
    for codec in llama:
        for _ in range(150):
            text = awkward_text(rng)
            if "<|" in text:
                continue
            cuts = [m.start() for m in re.finditer(r"(?<=\S) ", text)]
            for cut in rng.sample(cuts, min(3, len(cuts))):
                assert codec.encode([text])[0] == codec.encode([text[:cut]])[0] + codec.encode([text[cut:]])[0]


def test_spaces_inside_whitespace_runs_are_not_boundaries(llama):
    """A space after whitespace may sit inside a piece (a run ending in a newline, or at the end): the count
    must not split there."""
    fast, reference = llama
    texts = ["alpha beta \t \n \t \ngamma", "alpha beta gamma \t \n  \n", "alpha beta   \u3000 \n delta",
             "one two" + " \t \n" * 5 + "three", "x y" + "  " * 10,
             # Counted wrongly if any space could split (found by a random search with that rule dropped):
             "abab\n.w  \xa0  éw\xa0 \xa0\n", "\n12.\xa012.  \t\t \n", "ab \u3000é  \t\t \n"]
    prompts, quotes = zip(*(quoted(fast, text, 400) for text in texts))
    assert fast.count_prompts(list(prompts), list(quotes)) == [len(ids) for ids in reference.encode(list(prompts))]
    assert fast.encode(["a   "])[0] != fast.encode(["a "])[0] + fast.encode(["  "])[0]  # why the rule needs it


def test_no_shortcut_where_the_quote_differs_from_its_source(llama):
    fast, _ = llama
    text = "alpha beta gamma delta epsilon"
    ids = fast.encode([text])[0]
    prompt = recipe.make_prompt("alpha beta gamma delta epsilon", 3.0)
    assert known_middle(prompt, Quote(recipe.text_start(), len(text), text, ids), fast._token_bytes) is not None
    changed = recipe.make_prompt("alpha beta gamma delta epsilon".replace("gamma", "gamme"), 3.0)
    assert known_middle(changed, Quote(recipe.text_start(), len(text), text, ids), fast._token_bytes) is None
    one_word = "alphabet"
    quote = Quote(recipe.text_start(), 8, one_word, fast.encode([one_word])[0])
    assert known_middle(recipe.make_prompt(one_word, 3.0), quote, fast._token_bytes) is None


def test_text_start_is_where_make_prompt_puts_the_text():
    rules = recipe.Recipe(question="What is it worth?")
    prompt = recipe.make_prompt("some text", 5.0, rules)
    assert prompt[recipe.text_start(rules):].startswith("some text\n\n")
