"""The course's scoring of price predictions, as pure functions of true and predicted prices.

Average absolute error in dollars, RMSLE, and the share of "hits": an error
under $40 or under 20% of the true price (green). Orange is otherwise an error
under $80 or under 40%; red is the rest. Every edge is strict: an error of
exactly $40 (and at least 20%) is orange, exactly 20% (and at least $40) too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GREEN, ORANGE, RED = "green", "orange", "red"
BANDS = (GREEN, ORANGE, RED)
# (dollars, share of the true price): an error below either limit is in the band.
LIMITS = {GREEN: (40.0, 0.2), ORANGE: (80.0, 0.4)}
BAND_RULES = {
    GREEN: "error < $40 or < 20% of the true price (a hit)",
    ORANGE: "otherwise error < $80 or < 40%",
    RED: "the rest",
}


def _arrays(truths: Sequence[float], predictions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truths, dtype=float)
    predicted = np.asarray(predictions, dtype=float)
    if truth.shape != predicted.shape:
        raise ValueError(f"{len(truth)} true prices but {len(predicted)} predictions")
    return truth, predicted


def _within(errors: np.ndarray, truth: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    dollars, share = limits
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(truth > 0, errors / truth, np.inf)  # prices are positive; guard the division anyway
    return (errors < dollars) | (relative < share)


def band_labels(truths: Sequence[float], predictions: Sequence[float]) -> list[str]:
    """Each prediction's colour band."""
    truth, predicted = _arrays(truths, predictions)
    errors = np.abs(predicted - truth)
    green = _within(errors, truth, LIMITS[GREEN])
    orange = ~green & _within(errors, truth, LIMITS[ORANGE])
    return [GREEN if g else ORANGE if o else RED for g, o in zip(green, orange)]


def rmsle(truths: Sequence[float], predictions: Sequence[float]) -> float:
    """Root mean squared log error, log1p of the truth and of the prediction floored at 0."""
    truth, predicted = _arrays(truths, predictions)
    if not len(truth):
        return 0.0
    return float(np.sqrt(np.mean((np.log1p(truth) - np.log1p(np.maximum(predicted, 0.0))) ** 2)))


def score(truths: Sequence[float], predictions: Sequence[float]) -> dict:
    """Count, average absolute error, RMSLE, hit rate and the rows in each band."""
    truth, predicted = _arrays(truths, predictions)
    labels = band_labels(truth, predicted)
    counts = {name: labels.count(name) for name in BANDS}
    count = len(truth)
    return {
        "count": count,
        "average_error": float(np.mean(np.abs(predicted - truth))) if count else 0.0,
        "rmsle": rmsle(truth, predicted),
        "hit_rate": counts[GREEN] / count if count else 0.0,
        "bands": counts,
    }


def score_by_category(truths: Sequence[float], predictions: Sequence[float], categories: Sequence[str]) -> dict:
    """``score`` for each category, categories in name order."""
    truth, predicted = _arrays(truths, predictions)
    names = np.asarray(categories, dtype=object)
    return {name: score(truth[names == name], predicted[names == name]) for name in sorted(set(categories))}
