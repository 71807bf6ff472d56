"""Similarity between one emotion distribution and every row of the catalog matrix.

A metric is prepared once per catalog (``prepare``: the per-row work that does not depend on the
query, such as row norms) and then scores a query against the whole prepared matrix in one
vectorised pass. ``top_k`` picks the best rows with ``np.argpartition`` and a deterministic order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

_EPS = np.float32(1e-12)
_TINY = np.finfo(np.float32).tiny
_DOT_COLUMNS = 16384
_LN2 = float(np.log(2.0))


class Metric(Protocol):
    """A similarity metric: higher is more similar, 1.0 is identical."""

    name: str

    def prepare(self, matrix: np.ndarray) -> np.ndarray:
        """Per-catalog preprocessing of the float32 [n, d] matrix (done once per catalog)."""
        ...

    def __call__(self, query: np.ndarray, prepared: np.ndarray) -> np.ndarray:
        """Similarity of the [d] query to every prepared row, float32 [n]."""
        ...


@dataclass(frozen=True)
class Cosine:
    """Cosine similarity; rows are L2-normalised once so a query costs one vector-matrix product.

    The prepared matrix is stored transposed ([d, n], C-contiguous): ``q @ prepared`` then streams
    seven contiguous columns, about 3x faster than ``matrix @ q`` on a tall [n, 7] matrix.
    """

    name: str = "cosine"

    def prepare(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return np.ascontiguousarray((matrix / np.maximum(norms, _EPS)).T)

    def __call__(self, query: np.ndarray, prepared: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        q = q / max(float(np.linalg.norm(q)), float(_EPS))
        out = np.empty(prepared.shape[1], dtype=np.float32)
        # Column blocks small enough that BLAS stays on one thread: on a busy 2-vCPU machine its
        # threads wait on each other (5-8 ms instead of ~2 ms at 1,000,000 songs).
        for start in range(0, out.size, _DOT_COLUMNS):
            stop = start + _DOT_COLUMNS
            np.dot(q, prepared[:, start:stop], out=out[start:stop])
        return out


@dataclass(frozen=True)
class JensenShannon:
    """1 - Jensen–Shannon distance (base 2, so in [0, 1]) between probability distributions.

    ``prepare`` stores the rows normalised to sum 1, transposed ([d, n]), with each row's entropy as
    an extra last line, so a query only needs the entropy of the mixtures:
    JSD(p, q) = H((p + q) / 2) - (H(p) + H(q)) / 2.
    """

    name: str = "jensen_shannon"

    def prepare(self, matrix: np.ndarray) -> np.ndarray:
        rows = _as_distributions(np.asarray(matrix, dtype=np.float32))
        return np.ascontiguousarray(np.vstack([rows.T, _entropy(rows.T)[None, :]]), dtype=np.float32)

    def __call__(self, query: np.ndarray, prepared: np.ndarray) -> np.ndarray:
        p = _as_distributions(np.asarray(query, dtype=np.float32)[None, :])[0]
        columns, row_entropy = prepared[:-1], prepared[-1]
        mixture = (columns + p[:, None]) * np.float32(0.5)
        jsd = _entropy(mixture) - (row_entropy + _entropy(p[:, None])[0]) * np.float32(0.5)
        # Rounding can make jsd a hair negative for identical rows.
        distance = np.sqrt(np.clip(jsd / np.float32(_LN2), 0.0, 1.0))
        return np.float32(1.0) - distance


def _as_distributions(rows: np.ndarray) -> np.ndarray:
    rows = np.clip(rows, 0.0, None)
    return rows / np.maximum(rows.sum(axis=1, keepdims=True), _EPS)


def _entropy(columns: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each column of a [d, n] array of distributions; 0 log 0 = 0."""
    return -(columns * np.log(np.maximum(columns, _TINY))).sum(axis=0, dtype=np.float32)


METRICS: dict[str, Metric] = {metric.name: metric for metric in (Cosine(), JensenShannon())}
DEFAULT_METRIC = "cosine"


def get_metric(name: str = DEFAULT_METRIC) -> Metric:
    """The metric registered under ``name``; ValueError naming the known ones otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown similarity metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


# top_k narrows the search to the best blocks of this many rows when k blocks are a small part of
# the array (see _kth_largest): 3x faster at 7,500 songs, 10x at 1,000,000.
_BLOCK = 256


def top_k(similarities: np.ndarray, k: int, exclude_mask: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest similarities, best first; rows flagged in ``exclude_mask`` never appear.

    Ties are broken by the lower index (the catalog is sorted by song_id, so that is song_id order),
    whatever ``argpartition`` happened to pick: every row tied with the k-th value is a candidate and
    the candidates are sorted by (similarity desc, index asc). Rows with a NaN similarity never appear.
    """
    scores = np.asarray(similarities, dtype=np.float32)
    invalid = np.isnan(scores)
    if exclude_mask is not None:
        invalid |= np.asarray(exclude_mask, dtype=bool)
    if invalid.any():
        scores = np.where(invalid, -np.inf, scores)
    k = min(int(k), int(scores.size - np.count_nonzero(invalid)))
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k < scores.size:
        # Everything tied with the k-th value competes, not just the rows argpartition happened to keep.
        candidates = np.flatnonzero(scores >= _kth_largest(scores, k))
    else:
        candidates = np.flatnonzero(~invalid)
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return candidates[order]


def _kth_largest(scores: np.ndarray, k: int) -> np.float32:
    """The k-th largest value of ``scores`` (1 <= k < size), by argpartition.

    On large arrays the k blocks of _BLOCK rows with the highest maxima are gathered first: every
    top-k value lies in one of them or those k blocks already hold k values at least as large, so
    the k-th largest of the gathered values is exact, and argpartition runs on k * _BLOCK values.
    """
    if k * _BLOCK * 4 < scores.size:
        starts = np.arange(0, scores.size, _BLOCK)
        block_max = np.maximum.reduceat(scores, starts)
        best_blocks = np.argpartition(block_max, block_max.size - k)[block_max.size - k :]
        scores = np.concatenate([scores[b * _BLOCK : (b + 1) * _BLOCK] for b in best_blocks])
    kth = scores.size - k
    return scores[np.argpartition(scores, kth)[kth]]
