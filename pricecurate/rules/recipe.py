"""The item rules of recipe ``course-2024`` as pure functions of a record and the recipe's parameters.

Nothing here knows about Spark or about a particular tokenizer: the token-level
steps receive token ids and return strings, so the rules can be tested line by
line against the reference outputs. The parameters (``Recipe``) are the
budget a user may change; ``COURSE_2024`` holds the course's values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import json.encoder as json_encoder
import re
from dataclasses import dataclass
from typing import NamedTuple

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
# The junk characters as spaces: splitting on whitespace then collapses what _JUNK_RUN matches (re's \s and
# str.split() agree on what whitespace is), faster than the substitution.
_JUNK_AS_SPACE = str.maketrans(dict.fromkeys(':[]"{}【】', " "))
# The same for ASCII text, on its bytes (a third faster): bytes.split() leaves out the four ASCII separators
# \x1c-\x1f that str.split() splits at, so they become spaces too.
_JUNK_AS_SPACE_BYTES = bytes.maketrans(b':[]"{}\x1c\x1d\x1e\x1f', b" " * 10)
# In ASCII text (single spaces between words) a space and the word after it when the word is 7 characters or
# longer and holds a digit: what scrub's word filter drops, found by one C-level scan. Possessive: giving back
# non-digits can never let [0-9] match, and without the backtracking over every digitless word the scan takes a
# third less time (3.5-4.1 -> 2.3-2.5 us a text on the bench's and the shared records).
_LONG_WORD_WITH_DIGIT = re.compile(" (?=[^ ]{7})[^ 0-9]*+[0-9][^ ]*+")
# Any text clean_up_decoded replaces: without one, it leaves the text as it is.
_CLEAN_UP_NEEDED = re.compile("|".join(re.escape(before) for before, _ in DECODE_CLEANUPS)).search
_ASCII_DIGIT = re.compile("[0-9]").search

try:  # the C kernel of scrub (setup.py builds it when a compiler is there)
    from pricecurate.rules._scrub import scrub as _native_scrub
except ImportError:
    _native_scrub = None

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


# Drops without a price, made once: half of all records are one of these, and a frozen instance can be shared.
_NO_PRICE, _UNPARSABLE_PRICE, _PRICE_OUT_OF_RANGE = Drop(NO_PRICE), Drop(UNPARSABLE_PRICE), Drop(PRICE_OUT_OF_RANGE)


@dataclass(frozen=True)
class Candidate:
    """A record that passed the character rules and now awaits the token rules."""

    price: float
    text: str  # scrubbed title + "\n" + scrubbed contents, before truncation


@dataclass(frozen=True)
class Recipe:
    """The limits and wording the rules follow; ``base`` names the recipe they start from."""

    base: str = RECIPE_NAME
    min_price: float = MIN_PRICE
    max_price: float = MAX_PRICE
    min_chars: int = MIN_CHARS  # contents must be longer than this
    ceiling_chars: int = CEILING_CHARS  # contents are cut here before scrubbing
    min_tokens: int = MIN_TOKENS  # the text must have more tokens than this...
    max_tokens: int = MAX_TOKENS  # ...and is cut to this many
    question: str = QUESTION
    price_prefix: str = PRICE_PREFIX
    detail_removals: tuple[str, ...] = DETAIL_REMOVALS

    def parameters(self) -> dict:
        """Every parameter but the base's name, as plain JSON values."""
        tree = dataclasses.asdict(self)
        tree.pop("base")
        tree["detail_removals"] = list(self.detail_removals)
        return tree

    @property
    def digest(self) -> str:
        """A short hash of the parameters: equal digests, equal rules."""
        canonical = json.dumps(self.parameters(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    def changes(self) -> dict:
        """The parameters that differ from the base recipe's."""
        base = RECIPES[self.base].parameters()
        return {key: value for key, value in self.parameters().items() if base[key] != value}

    @property
    def label(self) -> str:
        """``course-2024``, or ``course-2024+<digest>`` when any parameter differs."""
        return self.base if not self.changes() else f"{self.base}+{self.digest}"

    @property
    def slots(self) -> tuple[int, int]:
        """The whole-dollar price slots balancing fills: $1 (or the rounded minimum) to the rounded maximum."""
        return max(1, round(self.min_price)), round(self.max_price)

    def describe(self) -> dict:
        """What the manifest records of the recipe."""
        return {"name": self.label, "base": self.base, "hash": self.digest,
                "changes": self.changes(), "parameters": self.parameters()}


COURSE_2024 = Recipe()
RECIPES = {RECIPE_NAME: COURSE_2024}


def from_manifest(manifest: dict) -> Recipe:
    """The recipe a dataset was built with, from its manifest (older manifests hold only the name)."""
    entry = manifest.get("recipe", RECIPE_NAME)
    if isinstance(entry, str):
        return RECIPES[entry]
    parameters = dict(entry["parameters"])
    parameters["detail_removals"] = tuple(parameters["detail_removals"])
    return Recipe(base=entry["base"], **parameters)


def in_words(rules: Recipe) -> list[str]:
    """The parameters as sentences, for the data card and the report."""
    low, high = rules.slots
    removals = ", ".join(f"`{removal}`" for removal in rules.detail_removals) or "nothing"
    return [
        f"Prices from ${rules.min_price:,.2f} to ${rules.max_price:,.2f}; balancing fills the whole-dollar slots "
        f"${low:,}–${high:,}.",
        f"The contents (description, features and details) must be longer than {rules.min_chars:,} characters and are "
        f"cut at {rules.ceiling_chars:,} characters before scrubbing.",
        f"Title and contents must make more than {rules.min_tokens:,} tokens and are cut to {rules.max_tokens:,} tokens.",
        f"Each prompt asks \"{rules.question}\" and ends with `{rules.price_prefix}<dollars>.00`.",
        f"Removed from the details text: {removals}.",
    ]
# Characters per Llama 3.1 token of recipe texts, median over the shared real records (1st percentile: 2.6).
CHARS_PER_TOKEN = 4.0


def problems(rules: Recipe) -> list[str]:
    """What makes the parameters unusable, one line each (empty when they are fine)."""
    found = []
    for name in ("min_price", "max_price", "ceiling_chars", "max_tokens"):
        if not getattr(rules, name) > 0:
            found.append(f"recipe.{name} must be > 0, got {getattr(rules, name)!r}")
    for name in ("min_chars", "min_tokens"):
        if getattr(rules, name) < 0:
            found.append(f"recipe.{name} must be >= 0, got {getattr(rules, name)!r}")
    for low, high in (("min_price", "max_price"), ("min_tokens", "max_tokens")):
        if getattr(rules, low) > getattr(rules, high):
            found.append(f"recipe.{low} ({getattr(rules, low)}) is above recipe.{high} ({getattr(rules, high)})")
    if not rules.question.strip():
        found.append("recipe.question is empty")
    if not rules.price_prefix.strip():
        found.append("recipe.price_prefix is empty")
    elif rules.price_prefix in rules.question:
        # The test prompt ends at the prefix's first occurrence: inside the question, it would cut the question.
        found.append(f"recipe.price_prefix {rules.price_prefix!r} occurs in recipe.question; test prompts would stop there")
    if any(not removal for removal in rules.detail_removals):
        found.append("recipe.detail_removals has an empty entry")
    return found


def warnings(rules: Recipe) -> list[str]:
    """Settings that work but probably not as meant."""
    found = []
    if rules.ceiling_chars < rules.min_tokens * CHARS_PER_TOKEN:
        found.append(
            f"recipe.ceiling_chars {rules.ceiling_chars} is small for recipe.min_tokens {rules.min_tokens}: at about "
            f"{CHARS_PER_TOKEN:g} characters a token, most texts cut there stay under the minimum and are dropped; "
            f"use at least {int(rules.min_tokens * CHARS_PER_TOKEN)}"
        )
    return found


def presented_price(record: dict) -> str:
    """The price as the dataset's loading script presented it: ``str()`` of the JSON value."""
    return str(record.get("price"))


def _json_dumps_as_default():
    """``json.dumps`` with its default arguments: the C encoder it uses, made once instead of once per call (a
    details dict in 1.7 us instead of 2.9), or ``json.dumps`` itself where Python has no C encoder. No check for
    cycles, which a parsed JSON value cannot hold."""
    if json_encoder.c_make_encoder is None:
        return json.dumps
    try:
        encode = json_encoder.c_make_encoder(None, json.JSONEncoder().default, json_encoder.encode_basestring_ascii,
                                             None, ": ", ", ", False, False, True)
    except TypeError:  # a Python whose C encoder takes other arguments
        return json.dumps
    return lambda value: "".join(encode(value, 0))


_DUMPS = _json_dumps_as_default()


def presented_details(record: dict) -> str | None:
    """The details as the loading script presented them: ``json.dumps`` with default arguments."""
    if "details" not in record:
        return None
    return _DUMPS(record["details"])


def parse_price(record: dict, rules: Recipe = COURSE_2024) -> float | Drop:
    """Rule 1 on the presented price text.

    A JSON null (presented as "None") or an empty text is a missing price; any
    other text ``float()`` rejects, the string "None" included, is unparsable.
    """
    value = record.get("price")
    if type(value) is float:  # most prices: str() of a float reads back as that float, so no text is made
        price = value
    else:
        price_text = presented_price(record)
        if not price_text or value is None:
            return _NO_PRICE
        try:
            price = float(price_text)
        except ValueError:
            return _UNPARSABLE_PRICE
    if not rules.min_price <= price <= rules.max_price:
        return _PRICE_OUT_OF_RANGE
    return price


def assemble_contents(
    description: list[str], features: list[str], details_text: str | None, removals: tuple[str, ...] = DETAIL_REMOVALS
) -> str:
    """Rule 2: description, features and the pruned details text, each ending in a newline."""
    contents = "\n".join(description)
    if contents:
        contents += "\n"
    joined_features = "\n".join(features)
    if joined_features:
        contents += joined_features + "\n"
    if details_text:
        for removal in removals:
            details_text = details_text.replace(removal, "")
        contents += details_text + "\n"
    return contents


def scrub(text: str) -> str:
    """Rule 4: collapse junk characters, tidy commas, drop long words that contain digits (by the C kernel
    ``_scrub.c`` when it is built: the same text, under a third of the time on real records)."""
    return (_native_scrub or scrub_in_python)(text)


def scrub_in_python(text: str) -> str:
    """``scrub`` in Python: what the C kernel must return (the tests hold the two to each other)."""
    if text.isascii():  # nearly every text: the same steps on bytes and by one regular expression
        text = b" ".join(text.encode("ascii").translate(_JUNK_AS_SPACE_BYTES).split()).decode("ascii")
        text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
        return _LONG_WORD_WITH_DIGIT.sub("", " " + text)[1:]
    text = " ".join(text.translate(_JUNK_AS_SPACE).split())  # = _JUNK_RUN.sub(" ", text).strip()
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
    if not _CLEAN_UP_NEEDED(text):
        return text
    for before, after in DECODE_CLEANUPS:
        text = text.replace(before, after)
    return text


def make_prompt(text: str, price: float, rules: Recipe = COURSE_2024) -> str:
    """Rule 6: the training prompt, price rounded half to even."""
    return f"{rules.question}\n\n{text}\n\n{rules.price_prefix}{round(price)}.00"


def text_start(rules: Recipe = COURSE_2024) -> int:
    """Where ``make_prompt`` puts the text in the prompt."""
    return len(rules.question) + 2


class Quote(NamedTuple):
    """Where a prompt quotes a text: ``prompt[start:start + length]`` is ``tokens`` decoded, and ``tokens`` are
    the first tokens of ``source`` (what a tokenizer needs to count the prompt from them)."""

    start: int
    length: int
    source: str
    tokens: list[int]


def make_test_prompt(prompt: str, rules: Recipe = COURSE_2024) -> str:
    """The prompt up to and including the first occurrence of the price prefix."""
    return prompt.split(rules.price_prefix)[0] + rules.price_prefix


def price_slot(price: float) -> int:
    """The whole-dollar slot used for balancing (Python rounding, as in the prompt)."""
    return round(price)


def prepare(record: dict, rules: Recipe = COURSE_2024) -> Candidate | Drop:
    """Rules 1-4 for one decoded record (a dict with the dataset's 2023 schema)."""
    price = parse_price(record, rules)
    if isinstance(price, Drop):
        return price
    contents = assemble_contents(
        record.get("description") or [],
        record.get("features") or [],
        presented_details(record),
        rules.detail_removals,
    )
    if len(contents) <= rules.min_chars:
        return Drop(TOO_FEW_CHARS, price)
    contents = contents[: rules.ceiling_chars]
    return Candidate(price, f"{scrub(record['title'])}\n{scrub(contents)}")


def has_enough_tokens(token_count: int, rules: Recipe = COURSE_2024) -> bool:
    """Rule 5's threshold on the untruncated text."""
    return token_count > rules.min_tokens
