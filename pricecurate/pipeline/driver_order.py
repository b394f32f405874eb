"""Balancing's cuts and the split's ranks computed on the driver, when the kept items fit there.

The distributed plans (``balance.plan_balance``, ``spark.order_stats.ranked``)
never gather the items: each makes two passes of histograms and bucket rows,
seven and six Spark jobs on a small input, each with its fixed cost. Up to
``DRIVER_ITEMS`` items, their keys, tie-break and group columns (about 60 bytes
an item) reach the driver in one job instead and are ranked here with numpy,
to the same plans: the same cuts, counts and order (tested against the
distributed plans). Pure numpy: no Spark here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

DRIVER_ITEMS = 2_000_000  # kept items ranked on the driver at most (about 120 MB of keys there)


def sort_order(primary: Sequence[np.ndarray], ties: Sequence[np.ndarray]) -> np.ndarray:
    """The permutation that sorts by the ``primary`` numeric columns, then by the ``ties`` (compared as Python
    values: str by code point, as Spark orders UTF-8 bytes), all ascending."""
    order = np.lexsort(tuple(reversed(primary)))
    if len(order) < 2 or not ties:
        return order
    same = np.ones(len(order) - 1, dtype=bool)
    for column in primary:
        ranked = column[order]
        same &= ranked[1:] == ranked[:-1]
    if not same.any():
        return order
    # Runs of equal primaries (rare: one product in two categories, or a hash collision) sorted by the ties.
    starts = np.flatnonzero(np.r_[True, ~same])
    lengths = np.diff(np.r_[starts, len(order)])
    for start, length in zip(starts[lengths > 1], lengths[lengths > 1]):
        run = order[start:start + length]
        order[start:start + length] = sorted(run, key=lambda index: tuple(tie[index] for tie in ties))
    return order


def python_value(value):
    """A numpy scalar as the Python value Spark's rows carry (int, float or str)."""
    return value.item() if isinstance(value, np.generic) else value


def slot_cuts(slot: np.ndarray, key: np.ndarray, ties: Sequence[np.ndarray], slot_cap: int,
              keep_all_from: int) -> tuple[list[tuple], dict[int, int], np.ndarray]:
    """Balancing's plan from every in-range item's slot, sampling key and tie-break: the cut (slot, key, *ties) of
    each over-full slot below ``keep_all_from`` (its ``slot_cap``-th item by key descending, then the ties
    ascending), the items each slot keeps, and which items are kept."""
    order = sort_order([slot, -key], ties)
    slots = slot[order]
    starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]]) if len(order) else np.array([], dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)  # 0-based, inside the slot
    kept = np.zeros(len(order), dtype=bool)
    kept[order] = (rank < slot_cap) | (slots >= keep_all_from)
    cuts, by_slot = [], {}
    for start, size in zip(starts, sizes):
        value = int(slots[start])
        if value >= keep_all_from or size <= slot_cap:
            by_slot[value] = int(size)
            continue
        by_slot[value] = slot_cap
        last = order[start + slot_cap - 1]
        cuts.append((value, float(key[last]), *(python_value(tie[last]) for tie in ties)))
    return sorted(cuts), by_slot, kept


def ranks_in_order(key: np.ndarray, ties: Sequence[np.ndarray], groups: Sequence[np.ndarray],
                   ranks: Sequence[int]) -> tuple[dict[int, tuple], list[Counter], np.ndarray]:
    """What ``order_stats.ranked`` finds, from every item's key, ties and groups: the (key, *ties) at each 1-based
    rank, the items per group (a tuple of the ``groups`` values) in each stretch the ranks cut, and the order."""
    order = sort_order([key], ties)
    wanted = sorted(set(ranks))
    if wanted and wanted[-1] > len(order):
        raise ValueError(f"rank {wanted[-1]:,} is past the {len(order):,} items")
    cuts = {rank: (python_value(key[order[rank - 1]]), *(python_value(tie[order[rank - 1]]) for tie in ties))
            for rank in wanted}
    stretch = np.empty(len(order), dtype=np.int64)
    stretch[order] = np.searchsorted(np.asarray(wanted, dtype=np.int64), np.arange(1, len(order) + 1), side="left")
    # Each item's group as one code, counted per stretch with numpy rather than tuple by tuple.
    code, names = np.zeros(len(order), dtype=np.int64), []
    for column in groups:
        inverse, values = _codes(column)
        code = code * max(1, len(values)) + inverse
        names.append(values)
    stretches = [Counter() for _ in range(len(wanted) + 1)]
    width = int(code.max()) + 1 if len(code) else 1
    pairs, counts = np.unique(stretch * width + code, return_counts=True)
    for pair, count in zip(pairs, counts):
        index, group = divmod(int(pair), width)
        parts = []
        for values in reversed(names):
            group, inside = divmod(group, max(1, len(values)))
            parts.append(python_value(values[inside]))
        stretches[index][tuple(reversed(parts))] += int(count)
    return cuts, stretches, order


def _codes(column: np.ndarray) -> tuple[np.ndarray, list]:
    """Each value's code (its distinct values numbered in order of appearance), and the distinct values: a dict
    does it some ten times faster than ``np.unique`` on Python strings."""
    seen: dict = {}
    codes = np.fromiter((seen.setdefault(value, len(seen)) for value in column), dtype=np.int64, count=len(column))
    return codes, list(seen)
