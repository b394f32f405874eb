"""Raw lines in, one outcome per line out: kept (with its prompt), dropped or quarantined.

Pure Python over a batch of lines, so the token rules run as batch calls; the
Spark plumbing that feeds Arrow batches in lives in ``pricecurate.pipeline.arrow_rules``.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import orjson

from pricecurate.rules import recipe

KEPT = "kept"
DROPPED = "dropped"
QUARANTINED = "quarantined"

# Quarantine reasons: the line is not a record the recipe can read.
EMPTY_LINE = "empty_line"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
INVALID_UNICODE = "invalid_unicode"  # a lone surrogate escape, which no tokenizer can encode
NOT_AN_OBJECT = "not_an_object"
TOO_LARGE = "too_large"
TOO_DEEP = "too_deep"  # arrays and objects nested deeper than MAX_DEPTH

RAW_SNIPPET_CHARS = 4096
_ABSENT = object()
DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024
# The deepest nesting of arrays and objects the rules follow. The standard library's parser (for lines orjson
# refuses) and json.dumps (the recipe's details text) recurse once per level, within Python's limit of 1,000
# frames shared with the Spark worker's own; orjson's limit, 1,024, is past it. Half the limit leaves room.
MAX_DEPTH = 512


class Outcome(NamedTuple):
    """What the rules made of one line (a named tuple: every line gets one, and a tuple is quick to make)."""

    status: str
    reason: str | None = None
    parent_asin: str | None = None
    title: str | None = None
    price: float | None = None
    prompt: str | None = None
    token_count: int | None = None
    raw: str | None = None  # the line, cut short, for quarantined lines only



def quarantine(reason: str, line: str) -> Outcome:
    return Outcome(QUARANTINED, reason, raw=line[:RAW_SNIPPET_CHARS])


def _joined(value) -> str | None:
    """The strings of a JSON list joined, or None when ``value`` is not a list of strings (one C-level pass: join
    refuses anything but strings, and a JSON parser makes no subclass of str)."""
    if type(value) is not list:
        return None
    try:
        return "".join(value)
    except TypeError:
        return None


def schema_problem(record: dict) -> tuple[str | None, bool]:
    """Why a decoded record cannot go through the recipe (None when it can), and whether the texts the recipe
    tokenizes (title, description, features) are all ASCII when it can, found on the way."""
    ascii_texts = True
    for field in ("title", "parent_asin"):
        value = record.get(field, _ABSENT)
        if value is _ABSENT:
            return f"missing_field:{field}", False
        if type(value) is not str:
            return f"bad_type:{field}", False
    for field in ("description", "features"):
        value = record.get(field)
        if value is not None:
            joined = _joined(value)
            if joined is None:
                return f"bad_type:{field}", False
            ascii_texts = ascii_texts and joined.isascii()
    details = record.get("details")
    if details is not None and type(details) is not dict:
        return "bad_type:details", False
    if type(record.get("price")) in (dict, list):
        return "bad_type:price", False
    return None, ascii_texts and record["title"].isascii()


# Each byte's part in nesting: +1 opens an array or object, -1 closes one, 2 is a quote, 0 anything else.
_NESTING = np.zeros(256, np.int8)
_NESTING[list(b"[{")] = 1
_NESTING[list(b"]}")] = -1
_NESTING[ord('"')] = 2


def too_deep(raw: bytes | str) -> bool:
    """True when the line's arrays and objects nest deeper than ``MAX_DEPTH``, decided without parsing it.

    A line with no more opening brackets than that cannot be too deep, so most lines cost two counts. Asked
    only of lines orjson refuses and of records whose details hold arrays or objects: orjson reads the rest
    without recursing, and nothing after it recurses into them.
    """
    opening = ("[", "{") if isinstance(raw, str) else (b"[", b"{")
    if raw.count(opening[0]) + raw.count(opening[1]) <= MAX_DEPTH:
        return False
    return nesting(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw) > MAX_DEPTH


def nesting(data: bytes) -> int:
    """How deep brackets outside strings nest, in array operations linear in the line (a regular expression
    for strings could backtrack on a line of unclosed quotes).

    Escaped backslashes, then escaped quotes, are blanked first, so every quote left opens or closes a
    string. Past the point where the line stops being JSON the count may run high, never low where a
    parser would still be reading: a line it calls too deep is one no parser should recurse into.
    """
    kinds = _NESTING[np.frombuffer(data.replace(b"\\\\", b"__").replace(b'\\"', b"__"), np.uint8)]
    kinds = kinds[kinds != 0]
    in_string = np.cumsum(kinds == 2, dtype=np.int32) & 1
    steps = np.where((kinds != 2) & (in_string == 0), kinds, 0)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _parse_bytes(raw: bytes, max_record_bytes: int) -> object:
    """The JSON value of a raw line, or the Outcome that quarantines it."""
    if len(raw) > max_record_bytes:
        # Checked before decoding, so a huge line costs no more than its bytes.
        return quarantine(TOO_LARGE, raw[:RAW_SNIPPET_CHARS].decode("utf-8", "replace"))
    try:
        # orjson reads the bytes directly and checks UTF-8 on the way; whatever
        # it refuses (bad bytes, NaN, huge numbers, lone surrogates...) takes the
        # standard library's path below, which decides like the reference did.
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return quarantine(INVALID_UTF8, raw.decode("utf-8", "replace"))
    return _parse_text(line, max_record_bytes)


def _parse_text(line: str, max_record_bytes: int) -> object:
    if len(line) > max_record_bytes or len(line.encode("utf-8", "surrogatepass")) > max_record_bytes:
        return quarantine(TOO_LARGE, line)
    if not line.strip():
        return quarantine(EMPTY_LINE, line)
    if too_deep(line):  # before the standard library's parser, which recurses once per level
        return quarantine(TOO_DEEP, line)
    try:
        return json.loads(line)
    except ValueError:
        return quarantine(INVALID_JSON, line)


def decode_line(raw: bytes | str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict | Outcome:
    """Parse one raw line (bytes as read, or text) into a record, or say why it is quarantined."""
    record = _parse_bytes(raw, max_record_bytes) if isinstance(raw, bytes) else _parse_text(raw, max_record_bytes)
    if isinstance(record, Outcome):
        return record
    reason, ascii_texts = (NOT_AN_OBJECT, False) if not isinstance(record, dict) else schema_problem(record)
    if reason is None and not _flat(record.get("details")) and too_deep(raw):
        # orjson read it (at most 1,024 levels), but the recipe's json.dumps of the details recurses.
        reason = TOO_DEEP
    if reason is None and not ascii_texts and not _encodable(record):
        reason = INVALID_UNICODE
    if reason:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return quarantine(reason, text)
    return record


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat(details: dict | None) -> bool:
    """True when the details hold no array or object, as nearly all do: then nothing in them nests."""
    return not details or _SCALARS.issuperset(map(type, details.values()))


def _encodable(record: dict) -> bool:
    """True unless a text the recipe tokenizes holds a lone surrogate (only JSON escapes make one); asked only when
    one of them is not ASCII (ASCII text holds none)."""
    try:
        for text in [record["title"], *(record.get("description") or []), *(record.get("features") or [])]:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def build_items(
    lines: list[bytes] | list[str], codec, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    rules: recipe.Recipe = recipe.COURSE_2024,
) -> list[Outcome]:
    """Apply the recipe with ``rules``' parameters to a batch of raw lines; the result is aligned with ``lines``.

    ``codec`` encodes and truncate-decodes batches (``pricecurate.tokenizer.engine.build_codec``).
    """
    outcomes: list[Outcome | None] = [None] * len(lines)
    waiting: list[tuple[int, dict, recipe.Candidate]] = []
    for index, line in enumerate(lines):
        record = decode_line(line, max_record_bytes)
        if isinstance(record, Outcome):
            outcomes[index] = record
            continue
        prepared = recipe.prepare(record, rules)
        if isinstance(prepared, recipe.Drop):
            outcomes[index] = Outcome(
                DROPPED, prepared.reason, record["parent_asin"], record["title"], prepared.price
            )
        else:
            waiting.append((index, record, prepared))

    token_ids = codec.encode([candidate.text for _, _, candidate in waiting])
    long_enough = [
        (entry, ids[: rules.max_tokens])
        for entry, ids in zip(waiting, token_ids)
        if recipe.has_enough_tokens(len(ids), rules)
    ]
    for index, record, candidate in waiting:
        outcomes[index] = Outcome(
            DROPPED, recipe.TOO_FEW_TOKENS, record["parent_asin"], record["title"], candidate.price
        )
    texts = codec.decode([ids for _, ids in long_enough])
    prompts = [recipe.make_prompt(text, entry[2].price, rules) for (entry, _), text in zip(long_enough, texts)]
    # The prompt quotes the text's first tokens: the codec may count from them instead of encoding it all again.
    start = recipe.text_start(rules)
    counts = codec.count_prompts(prompts, [recipe.Quote(start, len(text), entry[2].text, ids)
                                           for (entry, ids), text in zip(long_enough, texts)])
    for ((index, record, candidate), _), prompt, count in zip(long_enough, prompts, counts):
        outcomes[index] = Outcome(KEPT, None, record["parent_asin"], record["title"], candidate.price, prompt, count)
    return outcomes  # type: ignore[return-value]
