"""LSH candidates and their agreement in numpy: what ``near.candidate_pairs`` and ``near.score_pairs`` compute
with Spark's joins, for items whose signatures fit on the driver. Pure numpy: no Spark here."""

from __future__ import annotations

import numpy as np

AGREEMENT_CHUNK = 65_536  # pairs compared at once (two gathered signature blocks of 32 MB each at 128 values)


def candidate_pairs(ids: np.ndarray, keys: np.ndarray, all_pairs_up_to: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows (i, j) with ``ids[i] < ids[j]`` that share a band bucket, each pair once, and the number of star buckets.

    ``keys`` holds each row's bucket in each band (rows × bands). As in Spark: a bucket of two is its pair; a
    bucket of up to ``all_pairs_up_to`` members gives every pair in it; a larger one (a star bucket) pairs each
    member with its smallest id only. Pairs come in (i, j) order, sorted; ``ids`` must be distinct.
    """
    by_id = np.argsort(ids, kind="stable")
    firsts, seconds, star_buckets = [], [], 0
    for band in range(keys.shape[1]):
        column = keys[by_id, band]
        order = np.argsort(column, kind="stable")  # stable: a bucket's rows stay in id order
        rows, sorted_keys = by_id[order], column[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(rows)])
        twos = starts[sizes == 2]
        firsts.append(rows[twos])
        seconds.append(rows[twos + 1])
        for start, size in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist()):
            members = rows[start:start + size]
            if size > all_pairs_up_to:
                star_buckets += 1
                firsts.append(np.full(size - 1, members[0]))
                seconds.append(members[1:])
            else:
                left, right = np.triu_indices(size, 1)
                firsts.append(members[left])
                seconds.append(members[right])
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0
    # One number per pair (rows < len(ids), so it fits in 64 bits for any count the driver holds): distinct pairs.
    count = np.int64(len(ids))
    pairs = np.unique(np.concatenate(firsts).astype(np.int64) * count + np.concatenate(seconds))
    return pairs // count, pairs % count, star_buckets


def agreement(signatures: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = AGREEMENT_CHUNK) -> np.ndarray:
    """How many signature positions rows ``left[k]`` and ``right[k]`` agree on, for each k."""
    agree = np.empty(len(left), np.int32)
    for start in range(0, len(left), chunk):
        part = slice(start, start + chunk)
        agree[part] = (signatures[left[part]] == signatures[right[part]]).sum(axis=1)
    return agree
