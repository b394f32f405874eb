"""MinHash signatures and LSH band keys of item texts, as pure numpy functions (no Spark).

An item's text is the prompt without its question and price lines. Its
shingles are the overlapping runs of ``ngram`` words (lowercased, split at
whitespace and ASCII punctuation); a text shorter than ``ngram`` words is one shingle. Two items are near
duplicates when the Jaccard similarity of their shingle sets reaches the
threshold; the share of equal signature values estimates that similarity.

Each signature value is the minimum over the shingles of one seeded
multiply-shift hash, ``(a * x + b) mod 2**64 >> 32``, of the shingle's 64-bit
hash ``x``: the top 32 bits of a 2-universal family, so equal values are rare
unless the shingles agree. Band keys hash ``rows`` consecutive values.
"""

from __future__ import annotations

import math
import re
import string

import numpy as np

from pricecurate.rules.recipe import COURSE_2024, Recipe

try:  # the C kernel (setup.py builds it when a compiler is there): words, shingles and minimums in one pass
    from pricecurate.pipeline.dedup._signing import signatures as _native_signatures
except ImportError:
    _native_signatures = None

# Words are what is left between whitespace once ASCII punctuation is blanked out: a third of a
# regular expression's time, the same words as \w+ on nearly every text.
_BLANK_PUNCTUATION = str.maketrans({mark: " " for mark in string.punctuation})
# ASCII capitals lowercased and ASCII punctuation blanked, byte by byte.
_LOWER_AND_BLANK_BYTES = bytes(32 if chr(i) in string.punctuation else ord(chr(i).lower()) if i < 128 else i
                               for i in range(256))
# The whitespace str.split splits at beyond ASCII: NEL, no-break and the other Unicode spaces (tests/test_minhash.py
# checks the list against every code point).
_UNICODE_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
# Byte + 1, or 0 for the ASCII whitespace str.split splits at: a word's bytes are its non-zero run.
_BYTE_VALUE = np.array([0 if chr(i).isspace() else i + 1 for i in range(128)] + list(range(129, 257)), np.uint64)
_U64 = np.uint64
_BYTE_PRIME = _U64(0x100000001B3)  # odd, so invertible modulo 2**64
_BYTE_PRIME_INVERSE = _U64(pow(0x100000001B3, -1, 1 << 64))
_SHINGLE_PRIME = _U64(1099511628211)  # FNV's 64-bit prime: order matters inside a shingle
_CHUNK_ITEMS = 32  # items min-hashed together: the (perm x shingle) block stays in cache
_BLOCK_ITEMS = 1024  # items whose bytes are split and hashed together: a few MB of arrays


def item_text(prompt: str, rules: Recipe = COURSE_2024) -> str:
    """The prompt without the question line and the price line: what near-duplicates are judged on."""
    head = f"{rules.question}\n\n"
    start = len(head) if prompt.startswith(head) else 0
    end = prompt.rfind(f"\n\n{rules.price_prefix}")
    return prompt[start: end if end >= start else len(prompt)]


def words(text: str) -> list[str]:
    return text.lower().translate(_BLANK_PUNCTUATION).split()


def shingles(text: str, ngram: int) -> set[str]:
    """The shingle set, spelled out: the definition the hashed path follows (and tests compare with)."""
    tokens = words(text)
    if len(tokens) < ngram:
        return {" ".join(tokens)}
    return {" ".join(tokens[i: i + ngram]) for i in range(len(tokens) - ngram + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser (splitmix64): spreads the shingle polynomial's bits."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _batch_bytes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts lowercased, punctuation blanked, as one byte array, and each text's first byte.

    Texts are joined by a newline, so no word runs from one into the next. A
    text with non-ASCII characters is lowercased by Python and has its Unicode
    whitespace turned into spaces (bytes split only at ASCII whitespace,
    ``str.split`` at all); an ASCII text is lowercased by the byte table, as
    ``str.lower`` would (half the time of this step on real prompts).
    """
    parts = []
    for text in texts:
        if not text.isascii():
            text = text.lower()
            if _UNICODE_SPACE.search(text):
                text = _UNICODE_SPACE.sub(" ", text)
        parts.append(text.encode("utf-8"))
    starts = np.zeros(len(parts), np.int64)
    if parts:
        starts[1:] = np.cumsum([len(part) + 1 for part in parts[:-1]])
    data = b"\n".join(parts).translate(_LOWER_AND_BLANK_BYTES)
    return np.frombuffer(data, np.uint8), starts


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every word (as ``words`` splits them) of every text, flat, and each text's word count.

    Computed on the bytes of the whole batch at once: a word's hash is a
    polynomial of its bytes, summed per word with ``reduceat`` and finalised,
    so it depends on the word alone, never on where it stands.
    """
    data, text_starts = _batch_bytes(texts)
    values = _BYTE_VALUE[data]  # 0 for whitespace
    inside = values != 0
    first = np.flatnonzero(inside[1:] & ~inside[:-1]) + 1
    past = np.flatnonzero(inside[:-1] & ~inside[1:]) + 1
    if len(data) and inside[0]:
        first = np.concatenate(([0], first))
    if len(data) and inside[-1]:
        past = np.append(past, len(data))
    lengths = np.bincount(np.searchsorted(text_starts, first, side="right") - 1, minlength=len(texts))
    if not len(first):
        return np.zeros(0, _U64), lengths.astype(np.int64)
    # byte i adds (byte + 1) * P**i; a word's sum times P**-first is the same wherever it stands.
    powers, inverse = _powers(len(data))
    with np.errstate(over="ignore"):
        values *= powers
        sums = np.add.reduceat(values, first)
        hashes = _mix(sums * inverse[first] ^ (past - first).astype(_U64))
    return hashes, lengths.astype(np.int64)


_POWERS: list[np.ndarray] = []


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i modulo 2**64 for i < ``length``, computed once per process and grown on demand."""
    if not _POWERS or len(_POWERS[0]) < length:
        size = max(length, 1 << 20)
        with np.errstate(over="ignore"):
            forward = np.cumprod(np.full(size, _BYTE_PRIME, _U64), dtype=_U64) * _BYTE_PRIME_INVERSE
            backward = np.cumprod(np.full(size, _BYTE_PRIME_INVERSE, _U64), dtype=_U64) * _BYTE_PRIME
        _POWERS[:] = [forward, backward]
    return _POWERS[0][:length], _POWERS[1][:length]


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every text's shingles, flat, and each text's offset into them.

    A shingle's hash depends only on its words, so equal shingles hash equally
    in any text, batch or process.
    """
    flat, lengths = word_hashes(texts)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    counts = np.maximum(lengths - ngram + 1, 1)  # a short text is one shingle of all its words
    total = int(counts.sum())
    # Shingle j of text i starts at word starts[i] + j and takes min(ngram, length) words.
    first = np.repeat(starts, counts) + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    width = np.repeat(np.minimum(lengths, ngram), counts)
    hashes = np.zeros(total, _U64)
    with np.errstate(over="ignore"):
        for k in range(ngram):
            inside = width > k
            hashes[inside] = hashes[inside] * _SHINGLE_PRIME + flat[first[inside] + k]
        hashes = _mix(hashes ^ width.astype(_U64))
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return hashes, offsets


def permutations(seed: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded multipliers (odd) and offsets of the ``num_perm`` hash functions."""
    rng = np.random.default_rng([int(seed), 0x6E656172])  # "near"
    a = rng.integers(0, 1 << 64, size=num_perm, dtype=_U64) | _U64(1)
    b = rng.integers(0, 1 << 64, size=num_perm, dtype=_U64)
    return a, b


def signatures(texts: list[str], ngram: int, num_perm: int, seed: int, native: bool = True) -> np.ndarray:
    """One row of ``num_perm`` uint32 MinHash values per text; ``native``: from the C kernel when it is built
    (the same values as the numpy path, which defines them)."""
    a, b = permutations(seed, num_perm)
    out = np.empty((len(texts), num_perm), np.uint32)
    for start in range(0, len(texts), _BLOCK_ITEMS):
        block = texts[start: start + _BLOCK_ITEMS]
        if native and _native_signatures is not None:
            _native_signatures(*_batch_bytes(block), ngram, a, b, out[start: start + len(block)])
        else:
            out[start: start + len(block)] = _min_hashes(shingle_hashes(block, ngram), a, b)
    return out


def _min_hashes(shingled: tuple[np.ndarray, np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hashes, offsets = shingled
    out = np.empty((len(offsets), len(a)), np.uint32)
    bounds = np.append(offsets, len(hashes))
    # One (perm x shingle) buffer for every chunk: a new one each time is a few MB of fresh pages to fault in,
    # which took 40% of the min-hashing (15 -> 9 us an item on real prompts, the same values).
    buffer = np.empty((len(a), 0), _U64)
    with np.errstate(over="ignore"):
        for lo in range(0, len(offsets), _CHUNK_ITEMS):
            hi = min(lo + _CHUNK_ITEMS, len(offsets))
            block = hashes[bounds[lo]: bounds[hi]]
            if buffer.shape[1] < len(block):
                buffer = np.empty((len(a), 2 * len(block)), _U64)
            values = np.multiply(a[:, None], block[None, :], out=buffer[:, : len(block)])
            values += b[:, None]
            # The top 32 bits of the smallest value are the smallest top 32 bits: shifted after the minimum.
            lowest = np.minimum.reduceat(values, offsets[lo:hi] - bounds[lo], axis=1).T
            out[lo:hi] = lowest >> _U64(32)
    return out


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One signed 64-bit key per (text, band): equal keys mean ``rows`` equal values in that band."""
    if bands * rows > sigs.shape[1]:
        raise ValueError(f"{bands} bands of {rows} rows need {bands * rows} values, signatures have {sigs.shape[1]}")
    cells = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(_U64)
    keys = np.zeros((len(sigs), bands), _U64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys = _mix(keys * _SHINGLE_PRIME + cells[:, :, r])
    return keys.view(np.int64)


def estimated_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def signature_std(similarity: float, num_perm: int) -> float:
    """Standard deviation of the estimate: each value agrees with chance ``similarity``."""
    return math.sqrt(similarity * (1 - similarity) / num_perm)
