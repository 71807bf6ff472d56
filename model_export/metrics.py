"""Metrics that training, export and the demo report share: accuracy, macro-F1, confusions, parity."""

from __future__ import annotations

from typing import Any

import numpy as np

from moodtune.labels import LABELS, NUM_LABELS


def classification_metrics(gold: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix (rows gold, columns predicted)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(range(NUM_LABELS))
    per_class = f1_score(gold, pred, labels=labels, average=None, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "macro_f1": round(float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_class_f1": {LABELS[i]: round(float(f), 4) for i, f in enumerate(per_class)},
        "confusion_matrix": confusion_matrix(gold, pred, labels=labels).tolist(),
    }


def top_confusions(confusion: list[list[int]], k: int = 5) -> list[str]:
    """The k largest off-diagonal cells as 'gold→predicted: n'."""
    cells = [
        (n, LABELS[g], LABELS[p])
        for g, row in enumerate(confusion)
        for p, n in enumerate(row)
        if g != p and n
    ]
    return [f"{g}→{p}: {n}" for n, g, p in sorted(cells, reverse=True)[:k]]


def parity(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and absolute probability differences of ``other`` against ``reference``."""
    diff = np.abs(reference - other)
    return {
        "top1_agreement": round(float((reference.argmax(1) == other.argmax(1)).mean()), 6),
        "max_abs_diff": round(float(diff.max()), 6),
        "mean_abs_diff": round(float(diff.mean()), 6),
    }


def accuracy(probs: np.ndarray, gold: np.ndarray) -> float:
    return round(float((probs.argmax(1) == gold).mean()), 6)


def macro_f1(probs: np.ndarray, gold: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    pred = probs.argmax(1)
    return round(
        float(f1_score(gold, pred, labels=list(range(NUM_LABELS)), average="macro", zero_division=0)), 6
    )
