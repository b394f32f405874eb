"""A prompt's token count from the tokens of the text it quotes, without encoding all of it again.

The recipe's prompt quotes the first tokens of a text, decoded, between a question and a price. Under a
pre-tokenizer that never lets a piece run on from a non-space character into a space (Llama 3's pattern: no
alternative matches a non-space followed by U+0020, and none looks behind), a space right after a non-space
character starts a piece whatever surrounds it, and the pieces on each side are those of each side alone.
Byte-pair merges stay within a piece. So between the first and the last such space of the quoted part the
prompt's tokens are the text's own, already counted; only the two ends need encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from pricecurate.rules.recipe import Quote

# Split patterns known to have that property (tests/test_counting.py checks it on every shared record and on
# generated texts against a full encode). Others are counted by encoding the whole prompt.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
SPACE_SPLIT_PATTERNS = frozenset({LLAMA3_PATTERN})


@dataclass(frozen=True)
class Known:
    """The prompt is ``prompt[:head_end]``, then ``middle`` tokens known from the source, then
    ``prompt[tail_start:]``, each encoded on its own."""

    head_end: int
    tail_start: int
    middle: int


def _first_boundary(text: str, low: int, high: int) -> int:
    """The first space in ``text[low:high]`` (low >= 1) right after a non-space character, or -1."""
    at = text.find(" ", low, high)
    while at != -1 and text[at - 1].isspace():
        at = text.find(" ", at + 1, high)
    return at


def _last_boundary(text: str, low: int, high: int) -> int:
    at = text.rfind(" ", low, high)
    while at != -1 and text[at - 1].isspace():
        at = text.rfind(" ", low, at)
    return at


def _byte_length(text: str, chars: int) -> int:
    return chars if text.isascii() else len(text[:chars].encode("utf-8"))


def known_middle(prompt: str, quote: Quote, token_bytes: list[int]) -> Known | None:
    """How to count ``prompt``'s tokens from the quote's (``token_bytes``: each token id's length in bytes),
    or None when the quoted part has no two boundaries or differs from its source before the last one (as when
    decoding cleaned up its spaces)."""
    source, tokens = quote.source, quote.tokens
    end = min(len(source), quote.length)
    first = _first_boundary(source, 1, end)
    last = _last_boundary(source, first + 1, end) if first != -1 else -1
    if last == -1 or not prompt.startswith(source[: last + 1], quote.start):
        return None
    first_bytes, last_bytes = _byte_length(source, first), _byte_length(source, last)
    try:
        total = sum(map(token_bytes.__getitem__, tokens))
    except IndexError:
        return None  # an added token's id: its text is not pieces of the split pattern
    before, covered = 0, 0
    while covered < first_bytes and before < len(tokens):
        covered += token_bytes[tokens[before]]
        before += 1
    after, rest = len(tokens), total - last_bytes
    while rest > 0 and after > before:
        after -= 1
        rest -= token_bytes[tokens[after]]
    if covered != first_bytes or rest != 0:
        return None  # a boundary inside a token: not this tokenizer's pieces (never seen; counted in full)
    return Known(quote.start + first, quote.start + last, after - before)
