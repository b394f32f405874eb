"""MinHash signatures and LSH bands, without Spark."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from devtools.near_quality import planted_records
from pricecurate import config as near_settings
from pricecurate.pipeline.dedup import minhash as mh
from pricecurate.rules.recipe import make_prompt
from tests.conftest import require_kernel
from tests.helpers import shared_records

TEXTS = [
    "Acme Steel Hammer 16 oz\nForged head, fibreglass handle, anti-vibration grip for framing work.",
    "Acme Steel Hammer 20 oz\nForged head, fibreglass handle, anti-vibration grip for framing work.",
    "Blue Cotton Beach Towel\nSoft and quick drying, 30 by 60 inches, machine washable.",
    "one two",
]


def test_item_text_drops_the_question_and_the_price_line():
    prompt = make_prompt("Acme Hammer\nA forged head.", 12.4)
    assert mh.item_text(prompt) == "Acme Hammer\nA forged head."
    assert mh.item_text(prompt.split("Price is $")[0] + "Price is $") == "Acme Hammer\nA forged head."


def test_shingles_are_lowercased_word_ngrams_and_short_texts_are_one_shingle():
    assert mh.shingles("The Big, big DOG barks", 3) == {"the big big", "big big dog", "big dog barks"}
    assert mh.shingles("one two", 3) == {"one two"}


def test_word_hashes_split_as_words_does_and_hash_each_word_alone():
    """The byte-level split of a batch gives ``words``'s words, whatever whitespace or script surrounds them."""
    texts = [
        "Caf\u00e9\u00a0CR\u00c8ME, br\u00fbl\u00e9e!\tTwo\u2009cups\u3000of \u0130stanbul tea",
        "one\x1ctwo\x1fthree\x0bfour\rfive\nsix", "", "   ", "!!! ...", "a", "tea cups of tea",
        "\u00c9cole (\u00e9cole) \u00c9COLE", "x" * 3000 + " y",
    ]
    hashes, lengths = mh.word_hashes(texts)
    spelled = [word for text in texts for word in mh.words(text)]
    assert lengths.tolist() == [len(mh.words(text)) for text in texts]
    assert len(hashes) == len(spelled)
    by_word = {}
    for word, value in zip(spelled, hashes.tolist()):
        assert by_word.setdefault(word, value) == value  # the same word hashes the same anywhere
    assert len(set(by_word.values())) == len(by_word)  # different words, different hashes
    assert mh.word_hashes(texts[::-1])[0].tolist() == [v for t in texts[::-1] for v in mh.word_hashes([t])[0].tolist()]


def test_hashed_shingles_are_the_spelled_out_shingles():
    """Same Jaccard from 64-bit shingle hashes as from the shingle strings, for every pair."""
    texts = [" ".join(r["description"]) for r in planted_records(bases=3)] + TEXTS
    hashes, offsets = mh.shingle_hashes(texts, 3)
    bounds = np.append(offsets, len(hashes))
    hashed = [set(hashes[bounds[i]: bounds[i + 1]].tolist()) for i in range(len(texts))]
    spelled = [mh.shingles(t, 3) for t in texts]
    assert [len(h) for h in hashed] == [len(s) for s in spelled]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            assert mh.jaccard(hashed[i], hashed[j]) == mh.jaccard(spelled[i], spelled[j])


def test_signatures_depend_on_the_text_and_the_seed_only():
    one = mh.signatures(TEXTS, 3, 64, seed=42)
    assert one.shape == (4, 64) and one.dtype == np.uint32
    alone = np.vstack([mh.signatures([t], 3, 64, seed=42) for t in TEXTS])
    reordered = mh.signatures(TEXTS[::-1], 3, 64, seed=42)[::-1]
    assert (one == alone).all() and (one == reordered).all()
    assert (mh.signatures(["x " + TEXTS[0]], 3, 64, 42) != one[0]).any()
    other_seed = mh.signatures(TEXTS, 3, 64, seed=7)
    assert (other_seed != one).mean() > 0.9


def test_signature_agreement_estimates_jaccard():
    texts = [" ".join(r["description"]) for r in planted_records(bases=4)]
    sigs = mh.signatures(texts, 3, 256, seed=1)
    sets = [mh.shingles(t, 3) for t in texts]
    checked = 0
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            exact = mh.jaccard(sets[i], sets[j])
            if exact < 0.1:
                continue
            estimate = mh.estimated_similarity(sigs[i], sigs[j])
            assert abs(estimate - exact) <= 5 * mh.signature_std(exact, 256) + 1e-9, (exact, estimate)
            checked += 1
    assert checked > 50


def test_lsh_bands_are_derived_from_the_threshold():
    for threshold in (0.5, 0.7, 0.8, 0.9, 0.95):
        for num_perm in (64, 128, 256):
            bands, rows = near_settings.lsh_bands(threshold, num_perm)
            assert bands * rows <= num_perm
            assert near_settings.candidate_probability(threshold, bands, rows) >= near_settings.CANDIDATE_AT_THRESHOLD
            more_rows = num_perm // (rows + 1)
            assert near_settings.candidate_probability(threshold, more_rows, rows + 1) < near_settings.CANDIDATE_AT_THRESHOLD
    assert near_settings.NearParams().lsh == (18, 7)
    assert near_settings.NearParams(bands=16).lsh == (16, 8)
    high, low = near_settings.lsh_bands(0.9, 128), near_settings.lsh_bands(0.6, 128)
    assert high[1] > low[1]  # a higher threshold asks more values per band


def test_band_keys_equal_exactly_where_a_band_agrees():
    sigs = np.arange(24, dtype=np.uint32).reshape(2, 12)
    sigs[1] = sigs[0]
    sigs[1, 5] += 1  # band 1 of 3 (rows 4..7) differs
    keys = mh.band_keys(sigs, 3, 4)
    assert keys.dtype == np.int64 and keys.shape == (2, 3)
    assert [keys[0, b] == keys[1, b] for b in range(3)] == [True, False, True]
    with pytest.raises(ValueError, match="need 16 values"):
        mh.band_keys(sigs, 4, 4)


TRICKY = [
    "Caf\u00e9\u00a0CR\u00c8ME, br\u00fbl\u00e9e!\tTwo\u2009cups\u3000of \u0130stanbul tea",
    "one\x1ctwo\x1fthree\x0bfour\rfive\nsix", "", "   ", "!!! ...", "a",
    "\u03a3\u039f\u03a3 \u039f\u0394\u039f\u03a3\u03a3",
    "x\x85y\u2028z\u205fw", "\U0001F600 EMOJI\u00a0Test", "K\u212a\u0130\u1e9e", "x" * 5000, "one two",
]


def _native_kernel():
    return require_kernel(mh._native_signatures, "_signing")


def _record_texts(limit: int = 4000) -> list[str]:
    """Titles with descriptions and features of the shared records (all scripts and edge cases), or none."""
    return ["\n".join(str(part) for part in [record.get("title"), *(record.get("description") or []),
                                             *(record.get("features") or [])])
            for record in shared_records(limit)]


@pytest.mark.parametrize("ngram,num_perm,seed", [(3, 128, 42), (2, 64, 7), (5, 256, 1), (1, 32, 3)])
def test_the_c_kernel_signs_as_the_numpy_path_does(ngram, num_perm, seed):
    """Same values, bit for bit, on planted near-duplicates, edge texts and the shared real records, across
    batch blocks (more texts than one block)."""
    _native_kernel()
    texts = TRICKY + [" ".join(r["description"]) for r in planted_records(bases=4)] + _record_texts()
    texts = texts * (1 + mh._BLOCK_ITEMS // len(texts))
    native = mh.signatures(texts, ngram, num_perm, seed)
    assert (native == mh.signatures(texts, ngram, num_perm, seed, native=False)).all()


def test_the_c_kernel_refuses_arrays_that_do_not_fit():
    kernel = _native_kernel()
    data, starts = mh._batch_bytes(["one two three"])
    a, b = mh.permutations(1, 8)
    with pytest.raises(ValueError, match="do not fit"):
        kernel(data, starts, 3, a, b, np.empty((1, 4), np.uint32))
    with pytest.raises(ValueError, match="ngram"):
        kernel(data, starts, 0, a, b, np.empty((1, 8), np.uint32))


def test_unicode_spaces_are_every_non_ascii_character_str_split_splits_at():
    spaces = "".join(c for c in map(chr, range(128, sys.maxunicode + 1)) if c.isspace())
    assert mh._UNICODE_SPACE.sub("", spaces) == ""
    assert len(mh._UNICODE_SPACE.findall(spaces)) == len(spaces)
    assert not mh._UNICODE_SPACE.search("".join(c for c in map(chr, range(sys.maxunicode + 1))
                                                if not c.isspace() and not 0xD800 <= ord(c) <= 0xDFFF))
