"""Recommendation: rank the catalog against a text's emotion distribution and explain each pick.

Two modes:

- ``distribution``: every song competes; similarity of the full 7-emotion distributions.
- ``dominant``: the original system's method; only songs whose dominant emotion equals the text's,
  ranked by cosine similarity.

In both, the list is then made diverse (``moodtune.recommend.diversity``): no artist twice unless the
catalog cannot fill the list, and MMR with ``mmr_lambda`` (1 = the plain ranking).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from moodtune.catalog.songs import Catalog, ScoredSong
from moodtune.labels import LABEL_INDEX, LABELS, NUM_LABELS
from moodtune.recommend.diversity import DEFAULT_MMR_LAMBDA, pool_size, rerank
from moodtune.similarity import DEFAULT_METRIC, get_metric, top_k

Mode = Literal["distribution", "dominant"]
MODES: tuple[str, ...] = ("distribution", "dominant")

# An explanation lists at most this many emotions per side, and only those worth naming.
EXPLAIN_TOP = 3
EXPLAIN_MIN_P = 0.1


@dataclass(frozen=True)
class Explanation:
    """Why a song was picked: its strongest emotions beside the text's, and the ones they share."""

    song_top: tuple[tuple[str, float], ...]
    text_top: tuple[tuple[str, float], ...]
    shared: tuple[str, ...]

    def as_dict(self) -> dict[str, list]:
        return {
            "song_top": [[label, p] for label, p in self.song_top],
            "text_top": [[label, p] for label, p in self.text_top],
            "shared": list(self.shared),
        }


@dataclass(frozen=True)
class Match:
    """One recommended song with its similarity to the text and the explanation."""

    song: ScoredSong
    similarity: float
    explanation: Explanation


def top_emotions(scores: Sequence[float], top: int = EXPLAIN_TOP, min_p: float = EXPLAIN_MIN_P) -> tuple:
    """The strongest labels of a distribution as (label, p rounded to 3 places), strongest first.

    Labels under ``min_p`` are left out, except that the strongest one is always named. Ties go to
    the lower label index. (Plain Python: for seven values it is faster than numpy's call overhead.)
    """
    values = [float(p) for p in scores]
    order = sorted(range(NUM_LABELS), key=lambda i: (-values[i], i))[:top]
    picked = tuple((LABELS[i], round(values[i], 3)) for i in order if values[i] >= min_p)
    return picked or ((LABELS[order[0]], round(values[order[0]], 3)),)


@lru_cache(maxsize=1 << 16)
def _song_top(vector: tuple[float, ...]) -> tuple:
    # A song's top emotions do not depend on the text: worked out once per song, not per request.
    return top_emotions(vector)


def explain(
    text_scores: Sequence[float], song_scores: Sequence[float], text_top: tuple | None = None
) -> Explanation:
    """Explanation for one song: top emotions of each side and the labels both sides name.

    ``text_top`` may be passed in when explaining many songs for the same text.
    """
    text_top = text_top if text_top is not None else top_emotions(text_scores)
    song_top = _song_top(song_scores) if isinstance(song_scores, tuple) else top_emotions(song_scores)
    song_labels = {label for label, _ in song_top}
    shared = tuple(label for label, _ in text_top if label in song_labels)
    return Explanation(song_top=song_top, text_top=text_top, shared=shared)


def recommend(
    catalog: Catalog,
    text_scores: np.ndarray,
    *,
    limit: int = 5,
    mode: Mode = "distribution",
    exclude: Iterable[str] = (),
    metric: str = DEFAULT_METRIC,
    mmr_lambda: float = DEFAULT_MMR_LAMBDA,
    artist_spread: bool = True,
    explore: float = 0.0,
    rng: random.Random | None = None,
    explore_window: int = 0,
) -> list[Match]:
    """The ``limit`` songs most similar to ``text_scores`` (float [7], label order), made diverse.

    ``exclude`` song ids never appear (unknown ids are ignored). In ``dominant`` mode only songs
    whose dominant emotion is the text's compete, so fewer than ``limit`` may come back. Ties go to
    the lower song_id. ``mmr_lambda=1, artist_spread=False`` is the plain ranking, best first.

    Exploration: with probability ``explore`` (drawn from ``rng``) and ``limit`` ≥ 2, the last slot
    goes to a song drawn uniformly from those ranked below the list (same exclusions), so that
    feedback reaches songs the model does not rank first (Jiang et al. 2019). 0 turns it off.
    ``explore_window`` > 0 draws only from the ``explore_window`` songs ranked best below the list
    (songs that still fit the text); 0 draws from all of them.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    scores = np.asarray(text_scores, dtype=np.float32)
    if scores.shape != (NUM_LABELS,):
        raise ValueError(f"text_scores must have shape ({NUM_LABELS},), got {scores.shape}")
    if len(catalog) == 0 or limit <= 0:
        return []
    similarity_metric = get_metric(metric)
    similarities = similarity_metric(scores, catalog.prepared(similarity_metric))
    exclude = tuple(exclude)
    excluded = catalog.mask(exclude) if exclude else None
    if mode == "dominant":
        other = catalog.dominant != LABEL_INDEX[dominant_label(scores)]
        excluded = other if excluded is None else excluded | other
    if mmr_lambda >= 1.0 and not artist_spread:
        rows = top_k(similarities, limit, excluded)
    else:
        available = len(catalog) - (int(np.count_nonzero(excluded)) if excluded is not None else 0)
        pool = top_k(similarities, pool_size(limit, available), excluded)
        picks = rerank(
            pool,
            similarities[pool],
            catalog.matrix[pool],
            catalog.artists[pool],
            limit,
            mmr_lambda=mmr_lambda,
            artist_spread=artist_spread,
            metric=similarity_metric,
        )
        rows = pool[picks]
    if explore > 0 and limit >= 2 and len(rows) == limit and (rng or random).random() < explore:
        allowed = np.ones(len(catalog), dtype=bool) if excluded is None else ~excluded
        allowed[np.asarray(rows)] = False
        # explore_window: the songs ranked best below the list only (those still fitting the text).
        below = top_k(similarities, explore_window, ~allowed) if explore_window else np.flatnonzero(allowed)
        if len(below):
            rows = [*rows[:-1], int(below[(rng or random).randrange(len(below))])]
    text_top = top_emotions(scores)
    return [
        Match(
            song=catalog.songs[i],
            similarity=round(float(similarities[i]), 6),
            explanation=explain(scores, catalog.songs[i].vector, text_top),
        )
        for i in rows
    ]


def dominant_label(scores: np.ndarray) -> str:
    """The label with the highest probability (lowest index on ties, like np.argmax)."""
    return LABELS[int(np.argmax(scores))]
