"""The item rules of recipe ``course-2024`` as pure functions.

Nothing here knows about Spark or about a particular tokenizer: the token-level
steps receive token ids and return strings, so the rules can be tested line by
line against the reference outputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

RECIPE_NAME = "course-2024"

MIN_PRICE = 0.5
MAX_PRICE = 999.49
MIN_CHARS = 300
CEILING_CHARS = 1120
MIN_TOKENS = 150
MAX_TOKENS = 160

QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"

# Deleted from the details text, in this order (order matters: "Number of"
# must go before "Number").
DETAIL_REMOVALS = (
    '"Batteries Included?": "No"',
    '"Batteries Included?": "Yes"',
    '"Batteries Required?": "No"',
    '"Batteries Required?": "Yes"',
    "By Manufacturer",
    "Item",
    "Date First",
    "Package",
    ":",
    "Number of",
    "Best Sellers",
    "Number",
    "Product ",
)

# What the Hugging Face tokenizer does to decoded text when
# clean_up_tokenization_spaces is on, in its order.
DECODE_CLEANUPS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)

_JUNK_RUN = re.compile(r'[:\[\]"{}【】\s]+')
_ASCII_DIGIT = re.compile("[0-9]").search

# Drop reasons, in the order the rules apply.
NO_PRICE = "no_price"
UNPARSABLE_PRICE = "unparsable_price"
PRICE_OUT_OF_RANGE = "price_out_of_range"
TOO_FEW_CHARS = "too_few_chars"
TOO_FEW_TOKENS = "too_few_tokens"
DROP_REASONS = (NO_PRICE, UNPARSABLE_PRICE, PRICE_OUT_OF_RANGE, TOO_FEW_CHARS, TOO_FEW_TOKENS)


@dataclass(frozen=True)
class Drop:
    """A record the recipe skips, and why. ``price`` is set once it parsed in range."""

    reason: str
    price: float | None = None


@dataclass(frozen=True)
class Candidate:
    """A record that passed the character rules and now awaits the token rules."""

    price: float
    text: str  # scrubbed title + "\n" + scrubbed contents, before truncation


def presented_price(record: dict) -> str:
    """The price as the dataset's loading script presented it: ``str()`` of the JSON value."""
    return str(record.get("price"))


def presented_details(record: dict) -> str | None:
    """The details as the loading script presented them: ``json.dumps`` with default arguments."""
    if "details" not in record:
        return None
    return json.dumps(record["details"])


def parse_price(record: dict) -> float | Drop:
    """Rule 1 on the presented price text.

    A JSON null (presented as "None") or an empty text is a missing price; any
    other text ``float()`` rejects, the string "None" included, is unparsable.
    """
    price_text = presented_price(record)
    if not price_text or record.get("price") is None:
        return Drop(NO_PRICE)
    try:
        price = float(price_text)
    except ValueError:
        return Drop(UNPARSABLE_PRICE)
    if not MIN_PRICE <= price <= MAX_PRICE:
        return Drop(PRICE_OUT_OF_RANGE)
    return price


def assemble_contents(description: list[str], features: list[str], details_text: str | None) -> str:
    """Rule 2: description, features and the pruned details text, each ending in a newline."""
    contents = "\n".join(description)
    if contents:
        contents += "\n"
    joined_features = "\n".join(features)
    if joined_features:
        contents += joined_features + "\n"
    if details_text:
        for removal in DETAIL_REMOVALS:
            details_text = details_text.replace(removal, "")
        contents += details_text + "\n"
    return contents


def scrub(text: str) -> str:
    """Rule 4: collapse junk characters, tidy commas, drop long words that contain digits."""
    text = _JUNK_RUN.sub(" ", text).strip()
    text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
    words = text.split(" ")
    # Cheap tests first: most long words are plain letters, and in ASCII the
    # only characters isdigit() accepts are 0-9, which a C-level regex finds.
    kept = [
        word
        for word in words
        if len(word) < 7
        or word.isalpha()
        or (not _ASCII_DIGIT(word) if word.isascii() else not any(char.isdigit() for char in word))
    ]
    return " ".join(kept)


def clean_up_decoded(text: str) -> str:
    """The spacing clean-up the Hugging Face Llama 3.1 tokenizer applies after decoding."""
    for before, after in DECODE_CLEANUPS:
        text = text.replace(before, after)
    return text


def make_prompt(text: str, price: float) -> str:
    """Rule 6: the training prompt, price rounded half to even."""
    return f"{QUESTION}\n\n{text}\n\n{PRICE_PREFIX}{round(price)}.00"


def make_test_prompt(prompt: str) -> str:
    """The prompt up to and including the first occurrence of the price prefix."""
    return prompt.split(PRICE_PREFIX)[0] + PRICE_PREFIX


def price_slot(price: float) -> int:
    """The whole-dollar slot used for balancing (Python rounding, as in the prompt)."""
    return round(price)


def prepare(record: dict) -> Candidate | Drop:
    """Rules 1-4 for one decoded record (a dict with the dataset's 2023 schema)."""
    price = parse_price(record)
    if isinstance(price, Drop):
        return price
    contents = assemble_contents(
        record.get("description") or [],
        record.get("features") or [],
        presented_details(record),
    )
    if len(contents) <= MIN_CHARS:
        return Drop(TOO_FEW_CHARS, price)
    contents = contents[:CEILING_CHARS]
    return Candidate(price, f"{scrub(record['title'])}\n{scrub(contents)}")


def has_enough_tokens(token_count: int) -> bool:
    """Rule 5's threshold on the untruncated text."""
    return token_count > MIN_TOKENS
