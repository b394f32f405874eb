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

import hashlib
import math
import string
from dataclasses import dataclass

import numpy as np

from pricecurate.recipe import PRICE_PREFIX, QUESTION

# Words are what is left between whitespace once ASCII punctuation is blanked out: a third of a
# regular expression's time, the same words as \w+ on nearly every text.
_BLANK_PUNCTUATION = str.maketrans({mark: " " for mark in string.punctuation})
_U64 = np.uint64
_SHINGLE_PRIME = _U64(1099511628211)  # FNV's 64-bit prime: order matters inside a shingle
_CHUNK_ITEMS = 64  # items hashed together: the (perm x shingle) block stays in cache
CANDIDATE_AT_THRESHOLD = 0.95  # least chance that a pair at the threshold shares a band


@dataclass(frozen=True)
class NearParams:
    """The settings of near-duplicate detection (config section ``near``)."""

    threshold: float = 0.8
    ngram: int = 3
    num_perm: int = 128
    bands: int = 0  # 0: derived from the threshold (``lsh_bands``)

    @property
    def lsh(self) -> tuple[int, int]:
        """(bands, rows per band)."""
        if self.bands:
            return self.bands, self.num_perm // self.bands
        return lsh_bands(self.threshold, self.num_perm)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that two items of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """The most rows per band (fewest chance candidates) that still catch a pair at the threshold.

    Candidates are verified by signature similarity afterwards, so a missed
    candidate is lost for good while a chance one only costs a comparison.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= CANDIDATE_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1


def item_text(prompt: str) -> str:
    """The prompt without the question line and the price line: what near-duplicates are judged on."""
    head = f"{QUESTION}\n\n"
    start = len(head) if prompt.startswith(head) else 0
    end = prompt.rfind(f"\n\n{PRICE_PREFIX}")
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


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every text's shingles, flat, and each text's offset into them.

    A shingle's hash depends only on its words, so equal shingles hash equally
    in any text, batch or process.
    """
    tokens: list[str] = []
    lengths = np.empty(len(texts), np.int64)
    for i, text in enumerate(texts):
        found = words(text)
        lengths[i] = len(found)
        tokens.extend(found)
    # Each distinct word is hashed once per batch; the lookups run in C.
    hashed = dict.fromkeys(tokens)
    for token in hashed:
        hashed[token] = _word_hash(token)
    flat = np.fromiter(map(hashed.__getitem__, tokens), dtype=_U64, count=len(tokens))
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


def signatures(texts: list[str], ngram: int, num_perm: int, seed: int) -> np.ndarray:
    """One row of ``num_perm`` uint32 MinHash values per text."""
    hashes, offsets = shingle_hashes(texts, ngram)
    a, b = permutations(seed, num_perm)
    out = np.empty((len(texts), num_perm), np.uint32)
    bounds = np.append(offsets, len(hashes))
    with np.errstate(over="ignore"):
        for lo in range(0, len(texts), _CHUNK_ITEMS):
            hi = min(lo + _CHUNK_ITEMS, len(texts))
            block = hashes[bounds[lo]: bounds[hi]]
            values = a[:, None] * block[None, :]
            values += b[:, None]
            values >>= _U64(32)
            out[lo:hi] = np.minimum.reduceat(values, offsets[lo:hi] - bounds[lo], axis=1).T
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
