"""Calibration: temperature scaling and the figures that say whether probabilities can be trusted.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): one scalar
``T > 0`` divides the logits before the softmax. It is fit after training by minimising the negative
log-likelihood of the validation split, never the test split, and changes no prediction (the argmax
of ``z / T`` is the argmax of ``z``); it only makes the distribution as sharp as the model's accuracy
warrants. The runtime applies it (``moodtune.emotion.classifier``), so the INT8 graph is unchanged.

Figures, on hard labels (index arrays) or soft targets (rows of probabilities):

* **ECE** — expected calibration error over 10 equal-width bins of the top probability: the
  sample-weighted mean of |accuracy - mean confidence| per bin (Guo et al. 2017, eq. 3).
* **NLL** — mean negative log-likelihood of the target (cross-entropy for soft targets).
* **Brier** — mean squared distance between the probability vector and the target vector, summed
  over the seven labels (Brier 1950), so 0 is perfect and 2 is the worst.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from moodtune.labels import NUM_LABELS

T_MIN, T_MAX = 0.05, 20.0
CALIBRATION_FILE = "calibration.json"  # beside a checkpoint: what train/demo fit, read by export
ECE_BINS = 10


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def as_targets(gold: np.ndarray) -> np.ndarray:
    """Hard labels [n] -> one-hot [n, 7]; soft targets [n, 7] pass through (as float64)."""
    gold = np.asarray(gold)
    if gold.ndim == 1:
        return np.eye(NUM_LABELS)[gold.astype(np.int64)]
    return gold.astype(np.float64)


def nll(probs: np.ndarray, gold: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy against soft targets)."""
    targets = as_targets(gold)
    return float(-(targets * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1).mean())


def brier(probs: np.ndarray, gold: np.ndarray) -> float:
    """Mean squared error of the probability vector against the target vector, summed over labels."""
    return float(((np.asarray(probs, dtype=np.float64) - as_targets(gold)) ** 2).sum(axis=1).mean())


def ece(probs: np.ndarray, gold: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top probability in ``bins`` equal-width bins.

    With soft targets a prediction counts as right when its top label is the target's top label."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = as_targets(gold).argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The temperature that minimises the NLL of ``gold`` (hard or soft) under ``softmax(logits / T)``.

    The NLL is convex in 1/T, so a bounded golden-section search over log T finds the optimum; the
    result lies in [T_MIN, T_MAX]."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != NUM_LABELS or not len(logits):
        raise ValueError(f"logits must have shape [n, {NUM_LABELS}] with n > 0, got {logits.shape}")
    targets = as_targets(gold)

    def loss(log_t: float) -> float:
        return nll(softmax(logits, math.exp(log_t)), targets)

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(80):  # (hi - lo) shrinks by 0.618 each step: 80 steps reach ~1e-16
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return round(math.exp((lo + hi) / 2), 6)


def calibration_figures(logits: np.ndarray, gold: np.ndarray, temperature: float) -> dict[str, Any]:
    """ECE, NLL and Brier at T = 1 and at ``temperature``, with the mean top probability of each."""
    out: dict[str, Any] = {"n": len(logits)}
    for name, t in (("before", 1.0), ("after", temperature)):
        probs = softmax(logits, t)
        out[name] = {
            "temperature": round(float(t), 6),
            "ece": round(ece(probs, gold), 4),
            "nll": round(nll(probs, gold), 4),
            "brier": round(brier(probs, gold), 4),
            "mean_top_probability": round(float(probs.max(axis=1).mean()), 4),
        }
    return out


def mixed_figures(probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """How well distributions show two feelings at once, on texts whose target names two labels.

    ``both_top2``: share of texts whose two strongest labels are the target's two labels (in any
    order); ``second_mean``: mean probability of the intended feeling the model gives less to (the
    "second feeling"; for a 0.5/0.5 target neither is weaker by intent); ``first_mean``: the other."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if not len(probs):
        return {"n": 0, "both_top2": 0.0, "first_mean": 0.0, "second_mean": 0.0}
    intended = np.argsort(-targets, axis=1, kind="stable")[:, :2]
    rows = np.arange(len(probs))[:, None]
    pair = probs[rows, intended]  # [n, 2]: the model's probability of each intended feeling
    top2 = np.sort(np.argsort(-probs, axis=1, kind="stable")[:, :2], axis=1)
    both = (np.sort(intended, axis=1) == top2).all(axis=1)
    return {
        "n": len(probs),
        "both_top2": round(float(both.mean()), 4),
        "first_mean": round(float(pair.max(axis=1).mean()), 4),
        "second_mean": round(float(pair.min(axis=1).mean()), 4),
    }
