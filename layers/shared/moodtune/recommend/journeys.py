"""Mood journeys (the iso principle): meet the listener in the mood of the text, then step toward a target.

Music therapy's iso principle (Altshuler, 1948) starts with music that matches how the listener
feels and moves it step by step toward how they want to feel. Here both ends are distributions over
the seven emotions, in the same space as every song:

- **waypoints** interpolate in probability space, ``w_i = (1 - a_i) p + a_i t`` with ``a_i`` evenly
  spaced from 0 (the text ``p``) to 1 (the target ``t``); every waypoint is itself a distribution;
- each **step** is the unused song most similar to its waypoint (the request's metric) whose artist
  is not the previous step's and whose distance to the target (1 - similarity) is at most the
  previous step's plus ``tolerance``: progress toward the target never goes back by more than that;
- step 0's waypoint is the text itself, so the first song is the plain ranking's best;
- **unreachable** targets: when no song is within ``REACH`` of the target, the journey heads for the
  song nearest the target (the catalog's frontier) instead, with fewer steps, in proportion to the
  part of the way the catalog covers, and says ``reachable = False``;
- a target whose top emotion is the text's is a **stay** journey: songs that keep the mood.

Pure numpy; the catalog's matrices are prepared per metric at load time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from moodtune.catalog.songs import Catalog, ScoredSong
from moodtune.errors import UnprocessableRequest
from moodtune.labels import LABEL_INDEX, LABELS, NUM_LABELS
from moodtune.similarity import DEFAULT_METRIC, get_metric, top_k

LENGTH_MIN, LENGTH_MAX, LENGTH_DEFAULT = 3, 12, 6
# How far (in 1 - similarity) one step may move away from the target: rounding-level slack that
# lets a close-by song through rather than a far one (`python -m model_export.demo_report
# --journeys`: every step within it by construction, 95-97% strictly closer).
TOLERANCE = 0.02
# A target is reachable when some song is at least this similar to it (per metric): on the demo
# catalog, the nearest song of each one-hot target scores 0.96-0.99 cosine and 0.55-0.68 for
# 1 - Jensen-Shannon distance; a song below these has another emotion on top.
REACH = {"cosine": 0.85, "jensen_shannon": 0.5}
# The search looks at the best songs near each waypoint, keeping the best partial journeys; the whole
# catalog only when none of them keeps the rules.
_CANDIDATES = 24
_BEAM = 6
# The first song may be any of the waypoint's best within this share of the best one's similarity.
FIRST_MIN = 0.97
# What a journey promises of its first song: at least this share of the plain ranking's best.
FIRST_RATIO = 0.9
SUM_TOLERANCE = 0.01


@dataclass(frozen=True)
class JourneyStep:
    """One song of a journey: its waypoint, its similarity to it and to the target."""

    song: ScoredSong
    waypoint: tuple[float, ...]
    similarity: float
    target_similarity: float


@dataclass(frozen=True)
class Journey:
    """The songs in order from the text's mood toward the target, and how the path went."""

    target: tuple[float, ...]
    steps: tuple[JourneyStep, ...]
    reachable: bool
    stay: bool
    tolerance: float
    largest_step: float
    metric: str

    @property
    def progress_kept(self) -> list[bool]:
        """For each step after the first: its distance to the target did not grow beyond the tolerance."""
        d = [1.0 - s.target_similarity for s in self.steps]
        return [b <= a + self.tolerance + 1e-9 for a, b in itertools.pairwise(d)]


def target_distribution(target: str | Mapping[str, float], field: str = "target") -> np.ndarray:
    """A target as a float [7] distribution: a label is all of its probability; a mapping names some
    labels (the rest are 0), with probabilities >= 0 summing to 1 within ``SUM_TOLERANCE``
    (normalised to sum exactly 1). ``UnprocessableRequest`` on ``field`` otherwise."""
    vector = np.zeros(NUM_LABELS, dtype=np.float32)
    if isinstance(target, str):
        if target not in LABEL_INDEX:
            raise UnprocessableRequest(field, f"unknown emotion {target!r}; known: {', '.join(LABELS)}")
        vector[LABEL_INDEX[target]] = 1.0
        return vector
    for label, p in target.items():
        if label not in LABEL_INDEX:
            raise UnprocessableRequest(field, f"unknown emotion {label!r}; known: {', '.join(LABELS)}")
        if not math.isfinite(p) or p < 0:
            raise UnprocessableRequest(field, f"probability of {label} must be a number >= 0")
        vector[LABEL_INDEX[label]] = p
    total = float(vector.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise UnprocessableRequest(
            field, f"target probabilities sum to {total:.4f}, not 1 (within {SUM_TOLERANCE})", "target_sum"
        )
    return vector / np.float32(total)


def plan_journey(
    catalog: Catalog,
    text_scores: np.ndarray,
    target: np.ndarray,
    *,
    length: int = LENGTH_DEFAULT,
    exclude: Iterable[str] = (),
    metric: str = DEFAULT_METRIC,
    tolerance: float = TOLERANCE,
) -> Journey:
    """A journey of ``length`` songs from ``text_scores`` toward ``target`` (both float [7]).

    Raises ``UnprocessableRequest`` (field ``length`` or ``exclude``) when the catalog, or what
    ``exclude`` leaves of it, has fewer songs than ``length``.
    """
    if not LENGTH_MIN <= length <= LENGTH_MAX:
        raise UnprocessableRequest("length", f"length must lie between {LENGTH_MIN} and {LENGTH_MAX}")
    start = np.asarray(text_scores, dtype=np.float32)
    goal = np.asarray(target, dtype=np.float32)
    if start.shape != (NUM_LABELS,) or goal.shape != (NUM_LABELS,):
        raise ValueError(f"text_scores and target must have shape ({NUM_LABELS},)")
    n = len(catalog)
    if n < length:
        raise UnprocessableRequest(
            "length", f"the catalog has {n} songs; a journey of {length} needs {length}", "too_few_songs"
        )
    exclude = tuple(exclude)
    used = catalog.mask(exclude) if exclude else np.zeros(n, dtype=bool)
    available = n - int(np.count_nonzero(used))
    if available < length:
        raise UnprocessableRequest(
            "exclude",
            f"exclude leaves {available} songs; a journey of {length} needs at least {length}",
            "too_few_songs",
        )
    sim = get_metric(metric)
    prepared = catalog.prepared(sim)
    to_target = _similarity_to(sim, prepared, goal)
    reach = REACH.get(sim.name, REACH["cosine"])
    frontier = int(np.argmax(np.where(used, -np.inf, to_target) if exclude else to_target))
    reachable = bool(to_target[frontier] >= reach)
    end, steps_wanted = goal, length
    if not reachable:
        start_distance = 1.0 - float(sim(goal, sim.prepare(start[None, :]))[0])
        progress = (
            (start_distance - (1.0 - float(to_target[frontier]))) / start_distance
            if start_distance > 0
            else 0.0
        )
        steps_wanted = max(1, min(length - 1, round(length * progress)))
        end = catalog.matrix[frontier]
    alphas = np.linspace(0.0, 1.0, steps_wanted) if steps_wanted > 1 else np.zeros(1)
    stay = int(np.argmax(goal)) == int(np.argmax(start))
    waypoints = [((1.0 - a) * start + a * end).astype(np.float32) for a in alphas]
    ways = _Waypoints(sim, prepared, start, end, alphas, to_target if end is goal else None, used)
    # A stay journey's songs are all near the target already: the progress rule is moot there.
    limit = math.inf if stay else tolerance
    steps_order = list(range(len(alphas)))
    picks = _search(ways, steps_order, used, catalog.artists, to_target, limit)
    if len(picks) < len(alphas):
        # Forward, the path can reach the target's neighbourhood early and find nothing left for the
        # last steps. Backward from the target (distance may only shrink by the tolerance looking
        # back) it cannot; kept when its first song is still as close to the text as promised.
        backward = _search(ways, steps_order[::-1], used, catalog.artists, -to_target, limit)[::-1]
        best_first = ways.candidates(0)[1][0] if len(ways.candidates(0)[0]) else 0.0
        if len(backward) > len(picks) and ways.value(0, backward[0]) >= FIRST_RATIO * best_first:
            picks = backward
    steps = [
        JourneyStep(
            song=catalog.songs[row],
            waypoint=tuple(round(float(x), 6) for x in waypoints[i]),
            similarity=round(ways.value(i, row), 6),
            target_similarity=round(float(to_target[row]), 6),
        )
        for i, row in enumerate(picks)
    ]
    largest = max(
        (1.0 - float(sim(catalog.matrix[a], prepared[:, [b]])[0]) for a, b in itertools.pairwise(picks)),
        default=0.0,
    )
    return Journey(
        target=tuple(round(float(x), 6) for x in goal),
        steps=tuple(steps),
        reachable=reachable,
        stay=stay,
        tolerance=tolerance,
        largest_step=round(max(largest, 0.0), 6),
        metric=sim.name,
    )


def _similarity_to(sim: Any, prepared: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``sim(vector, prepared)``; for cosine and a one-emotion target (a label), the prepared matrix
    already holds it: row j of the L2-normalised, transposed matrix is every song's cosine with e_j."""
    nonzero = np.flatnonzero(vector)
    if sim.name == "cosine" and nonzero.size == 1:
        return prepared[int(nonzero[0])]
    return sim(vector, prepared)


class _Waypoints:
    """Every waypoint's best unused songs (``candidates``), a song's similarity to a waypoint
    (``value``) and, only when the search needs it, a waypoint's similarity to every song (``full``).

    Cosine is linear in the query before its norm: cos(s, w) = (x |p| cos(s, p) + y |e| cos(s, e)) / |w|
    for w = x p + y e, so two dot products over the catalog (one when the end's is known; none for a
    label, whose cosines are a row of the prepared matrix) and a scaled sum per waypoint give every
    waypoint. (Bounding blocks of songs by their best cosine to each end was tried and read nearly
    every block: on a spread-out catalog every block has some song near each end.) Other metrics:
    one full pass each.
    """

    def __init__(
        self,
        sim: Any,
        prepared: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        alphas: np.ndarray,
        to_end: np.ndarray | None,
        used: np.ndarray,
    ) -> None:
        self.sim, self.prepared, self.used = sim, prepared, used
        self.vectors = [((1.0 - a) * start + a * end).astype(np.float32) for a in alphas]
        self._full: dict[int, np.ndarray] = {}
        self._candidates: dict[int, tuple[list[int], list[float]]] = {}
        if sim.name != "cosine":
            self._full = {i: sim(w, prepared) for i, w in enumerate(self.vectors)}
            self.linear = None
            return
        to_start = sim(start, prepared)
        to_end = sim(end, prepared) if to_end is None else to_end
        n_start, n_end = float(np.linalg.norm(start)), float(np.linalg.norm(end))
        coefficients = []
        for a in alphas:
            n_w = max(float(np.linalg.norm((1.0 - a) * start + a * end)), 1e-12)
            coefficients.append(((1.0 - a) * n_start / n_w, a * n_end / n_w))
        self.linear = (to_start, to_end, coefficients)

    def value(self, i: int, row: int) -> float:
        """Similarity of song ``row`` to waypoint ``i``."""
        if self.linear is None:
            return float(self._full[i][row])
        to_start, to_end, coefficients = self.linear
        x, y = coefficients[i]
        return float(np.float32(x) * to_start[row] + np.float32(y) * to_end[row])

    def full(self, i: int) -> np.ndarray:
        """Waypoint ``i``'s similarity to every song (cached)."""
        if i not in self._full:
            to_start, to_end, coefficients = self.linear  # type: ignore[misc]
            x, y = coefficients[i]
            self._full[i] = to_start * np.float32(x) + to_end * np.float32(y)
        return self._full[i]

    def candidates(self, i: int) -> tuple[list[int], list[float]]:
        """The ``_CANDIDATES`` best unused songs for waypoint ``i``, best first (ties: lower row)."""
        if i not in self._candidates:
            rows = top_k(self.full(i), _CANDIDATES, self.used)
            values = self.full(i)[rows]
            self._candidates[i] = (rows.tolist(), values.tolist())
        return self._candidates[i]


def _search(
    ways: _Waypoints,
    order: list[int],
    used: np.ndarray,
    artists: np.ndarray,
    closeness: np.ndarray,
    tolerance: float,
) -> list[int]:
    """Rows of the songs, one per waypoint in ``order``: a beam search for the highest total
    similarity to the waypoints under the rules (no song twice, no artist twice in a row, closeness
    to the target, i.e. similarity, at least the previous step's - ``tolerance``). Greedy choices can
    paint themselves into a corner (a song near the target early leaves nothing for the later
    steps); the beam keeps alternatives. Ends early when no song keeps the rules."""
    first_rows, first_values = ways.candidates(order[0])
    if not first_rows:
        return []
    best = first_values[0]
    beams: list[tuple[float, tuple[int, ...]]] = [
        (v, (r,))
        for r, v in zip(first_rows[:_BEAM], first_values[:_BEAM], strict=False)
        if v >= FIRST_MIN * best
    ]
    for i in order[1:]:
        rows, row_sims = ways.candidates(i)
        row_artists = artists[rows].tolist() if rows else []
        row_close = closeness[rows].tolist() if rows else []
        grown: list[tuple[float, tuple[int, ...]]] = []
        for score, path in beams:
            last = path[-1]
            artist, limit = int(artists[last]), float(closeness[last]) - tolerance
            for row, s, a, c in zip(rows, row_sims, row_artists, row_close, strict=True):
                if a != artist and c >= limit and row not in path:
                    grown.append((score + s, (*path, row)))
        if not grown:  # nothing near the waypoint keeps the rules: look through the whole catalog
            step_sims = ways.full(i)
            for score, path in beams:
                last = path[-1]
                allowed = ~used & (artists != artists[last]) & (closeness >= closeness[last] - tolerance)
                allowed[list(path)] = False
                if allowed.any():
                    row = int(top_k(step_sims, 1, ~allowed)[0])
                    grown.append((score + float(step_sims[row]), (*path, row)))
            if not grown:
                break
        # (-score, path): the best total first, ties to the lower rows; tuples compare natively.
        beams = [(-neg, path) for neg, path in heapq.nsmallest(_BEAM, ((-sc, pa) for sc, pa in grown))]
    return list(beams[0][1])
