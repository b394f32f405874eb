"""How well near-duplicate groups match exact Jaccard similarity: a planted corpus and the scoring.

``planted_records`` writes product records whose texts are variants of a few
base texts: copies with 1 to 40 words replaced (similarities from about 0.95
down to about 0.2) and chains (A, B = A with a few words replaced, C = B with a
few other words replaced), so there are pairs on both sides of the threshold
and pairs that only a transitive chain connects. The similarities themselves
are measured afterwards, exactly, on the prompts the item rules made.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from pricecurate.pipeline.dedup.minhash import jaccard, shingles

SIMILARITY_BANDS = ((0.9, 1.0), (0.8, 0.9), (0.7, 0.8), (0.5, 0.7), (0.0, 0.5))
REPLACED_WORDS = (1, 2, 3, 4, 5, 6, 8, 12, 20, 40)  # per variant; each changes up to ngram shingles
_EDITABLE = 90  # words from the start of the text: the prompt keeps about the first 150

_CONSONANTS = "bcdfghklmnprstvz"
_VOWELS = "aeiou"


def _vocabulary() -> list[str]:
    """Short made-up words (consonant-vowel-consonant), mostly one token each."""
    return [a + v + b for a in _CONSONANTS for v in _VOWELS for b in _CONSONANTS]


def _replace(words: list[str], count: int, rng: random.Random, vocabulary: list[str], region: range) -> list[str]:
    """``words`` with ``count`` words in ``region`` replaced, at least four apart so each touches its own shingles."""
    slots = list(region)[::4]
    changed = list(words)
    for position in rng.sample(slots, min(count, len(slots))):
        changed[position] = rng.choice([w for w in vocabulary[:60] if w != words[position]])
    return changed


def _record(asin: str, words: list[str], price: float) -> dict:
    return {
        "parent_asin": asin,
        "title": " ".join(words[:8]) + f" {asin}",  # never an exact duplicate title
        "description": [" ".join(words[8:])],
        "features": [],
        "details": {},
        "price": f"{price:.2f}",
        "main_category": "Planted",
    }


def planted_records(bases: int = 40, seed: int = 0, words: int = 220) -> list[dict]:
    """Records for one category file: ``bases`` families of variants, in a shuffled order."""
    rng = random.Random(f"planted:{seed}")
    vocabulary = _vocabulary()
    records = []
    for family in range(bases):
        base = [rng.choice(vocabulary) for _ in range(words)]
        members = [base]
        members += [_replace(base, k, rng, vocabulary, range(_EDITABLE)) for k in REPLACED_WORDS]
        first = _replace(base, 3, rng, vocabulary, range(0, _EDITABLE // 2))
        members += [first, _replace(first, 3, rng, vocabulary, range(_EDITABLE // 2, _EDITABLE))]
        for index, text in enumerate(members):
            price = round(rng.uniform(5, 400), 2)
            records.append(_record(f"P{seed:02d}{family:04d}{index:03d}", text, price))
    rng.shuffle(records)
    return records


def write_planted(path: str | Path, bases: int = 40, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in planted_records(bases, seed):
            handle.write(json.dumps(record) + "\n")
    return path


def similar_pairs(texts: list[str], ngram: int, at_least: float = 0.0) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every pair of texts sharing a shingle (all other pairs are 0), at or above ``at_least``."""
    sets = [shingles(text, ngram) for text in texts]
    postings: dict[str, list[int]] = defaultdict(list)
    for index, grams in enumerate(sets):
        for gram in grams:
            postings[gram].append(index)
    pairs = {pair for members in postings.values() for pair in itertools.combinations(members, 2)}
    scored = {pair: jaccard(sets[pair[0]], sets[pair[1]]) for pair in pairs}
    return {pair: value for pair, value in scored.items() if value >= at_least}


def grouped_pairs(labels: Mapping[int, object]) -> set[tuple[int, int]]:
    """Pairs of text indexes that share a group label."""
    members: dict[object, list[int]] = defaultdict(list)
    for index, label in labels.items():
        members[label].append(index)
    return {pair for group in members.values() for pair in itertools.combinations(sorted(group), 2)}


def band_of(similarity: float, bands: Iterable[tuple[float, float]] = SIMILARITY_BANDS) -> tuple[float, float]:
    for low, high in bands:
        if low <= similarity <= high:
            return low, high
    raise ValueError(similarity)


def score(texts: list[str], labels: Mapping[int, object], ngram: int, threshold: float) -> dict:
    """Per similarity band: pairs, pairs grouped, their share; and overall precision at the threshold.

    ``labels`` maps text index to group for grouped texts only. A pair of the
    band at or above the threshold that is grouped counts for recall; a pair
    below it that is grouped is a chance merge (through a chain or an error).
    """
    exact = similar_pairs(texts, ngram)
    grouped = grouped_pairs(labels)
    sets = None
    rows = {band: {"pairs": 0, "grouped": 0} for band in SIMILARITY_BANDS}
    lowest = 1.0
    for pair in grouped:
        if pair not in exact:  # no shingle in common
            sets = sets or [shingles(text, ngram) for text in texts]
            exact[pair] = jaccard(sets[pair[0]], sets[pair[1]])
        lowest = min(lowest, exact[pair])
    for pair, value in exact.items():
        if value == 0.0 and pair not in grouped:
            continue
        row = rows[band_of(value)]
        row["pairs"] += 1
        row["grouped"] += pair in grouped
    for row in rows.values():
        row["share"] = row["grouped"] / row["pairs"] if row["pairs"] else None
    above = sum(1 for pair in grouped if exact[pair] >= threshold)
    return {
        "bands": [{"low": low, "high": high, **rows[(low, high)]} for low, high in SIMILARITY_BANDS],
        "grouped_pairs": len(grouped),
        "precision": above / len(grouped) if grouped else None,
        "lowest_grouped": lowest if grouped else None,
    }
