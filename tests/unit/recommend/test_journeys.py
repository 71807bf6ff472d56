"""Journey properties on small synthetic catalogs: monotone progress, no repeats, unreachable targets."""

import itertools

import numpy as np
import pytest

from moodtune.catalog.songs import Catalog, ScoredSong
from moodtune.errors import UnprocessableRequest
from moodtune.labels import LABEL_INDEX, LABELS, NUM_LABELS
from moodtune.recommend.journeys import TOLERANCE, plan_journey, target_distribution
from moodtune.recommend.ranking import recommend


def _catalog(n: int = 400, artists: int = 40, seed: int = 0, drop: str | None = None) -> Catalog:
    rng = np.random.default_rng(seed)
    vectors = rng.dirichlet(np.full(NUM_LABELS, 0.4), size=n)
    if drop is not None:  # no song leans to this emotion: it is unreachable
        vectors[:, LABEL_INDEX[drop]] *= 0.05
        vectors /= vectors.sum(axis=1, keepdims=True)
    songs = tuple(
        ScoredSong(f"s{i:04d}", f"title {i}", f"artist {i % artists}", tuple(map(float, v)))
        for i, v in enumerate(vectors)
    )
    return Catalog(model_version="m", songs=songs)


def _texts(k: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(NUM_LABELS, 0.3), size=k).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "jensen_shannon"])
def test_journeys_keep_their_rules(metric: str) -> None:
    catalog = _catalog()
    kept, total = 0, 0
    for text in _texts(15):
        for target in LABELS:
            goal = target_distribution(target)
            journey = plan_journey(catalog, text, goal, length=6, metric=metric)
            ids = [s.song.song_id for s in journey.steps]
            artists = [s.song.artist for s in journey.steps]
            assert len(ids) == len(set(ids))  # no song twice
            assert all(a != b for a, b in itertools.pairwise(artists))  # no artist twice in a row
            assert journey.reachable and len(ids) == 6
            best = recommend(catalog, text, limit=1, metric=metric, mmr_lambda=1.0, artist_spread=False)[0]
            assert journey.steps[0].similarity >= 0.9 * best.similarity
            if not journey.stay:
                # the last song is within the tolerance of the journey's nearest to the target
                nearest = max(s.target_similarity for s in journey.steps)
                assert journey.steps[-1].target_similarity >= nearest - TOLERANCE - 1e-6
                flags = journey.progress_kept
                kept, total = kept + sum(flags), total + len(flags)
    assert kept == total  # the rule holds on every step of every journey that moves


def test_waypoints_run_from_the_text_to_the_target() -> None:
    catalog = _catalog()
    text = _texts(1)[0]
    goal = target_distribution({"joy": 0.6, "neutral": 0.4})
    journey = plan_journey(catalog, text, goal, length=5)
    first, last = journey.steps[0].waypoint, journey.steps[-1].waypoint
    assert first == pytest.approx(tuple(float(x) for x in text), abs=1e-5)
    assert last == pytest.approx(tuple(float(x) for x in goal), abs=1e-5)
    assert all(sum(s.waypoint) == pytest.approx(1.0, abs=1e-4) for s in journey.steps)


def test_an_unreachable_target_says_so_with_a_shorter_journey() -> None:
    catalog = _catalog(drop="fear")
    text = target_distribution("joy")
    journey = plan_journey(catalog, text, target_distribution("fear"), length=8)
    assert not journey.reachable
    assert 1 <= len(journey.steps) < 8
    nearest = max(journey.steps, key=lambda s: s.target_similarity)
    assert nearest is journey.steps[-1]  # it ends at the catalog's frontier, not at a wrong song


def test_a_stay_journey_keeps_the_mood() -> None:
    catalog = _catalog()
    text = target_distribution({"sadness": 0.8, "fear": 0.2})
    journey = plan_journey(catalog, text, target_distribution("sadness"), length=6)
    assert journey.stay and len(journey.steps) == 6
    assert all(s.song.dominant == "sadness" for s in journey.steps)


def test_few_songs_or_a_long_exclude_is_refused_naming_the_field() -> None:
    catalog = _catalog(n=10, artists=5)
    text, goal = _texts(1)[0], target_distribution("joy")
    with pytest.raises(UnprocessableRequest) as raised:
        plan_journey(catalog, text, goal, length=12)
    assert raised.value.field == "length"
    with pytest.raises(UnprocessableRequest) as raised:
        plan_journey(catalog, text, goal, length=6, exclude=[f"s{i:04d}" for i in range(6)])
    assert raised.value.field == "exclude" and "leaves 4 songs" in str(raised.value)
    journey = plan_journey(catalog, text, goal, length=3, exclude=["s0000", "nope"])
    assert "s0000" not in {s.song.song_id for s in journey.steps}


def test_target_distribution_checks_its_input() -> None:
    assert target_distribution("joy").tolist() == [1.0, 0, 0, 0, 0, 0, 0]
    assert target_distribution({"joy": 0.5, "neutral": 0.505}).sum() == pytest.approx(1.0)
    for bad in ("happy", {"happy": 1.0}, {"joy": -0.1, "neutral": 1.1}, {"joy": 0.5}, {"joy": float("nan")}):
        with pytest.raises(UnprocessableRequest) as raised:
            target_distribution(bad)
        assert raised.value.field == "target"


def test_the_tolerance_is_stated() -> None:
    journey = plan_journey(_catalog(), _texts(1)[0], target_distribution("anger"))
    assert journey.tolerance == TOLERANCE and 0 <= journey.largest_step <= 1


@pytest.mark.parametrize("excluded", [0, 30])
def test_cosine_waypoints_from_two_passes_rank_as_one_pass_each(excluded: int) -> None:
    from moodtune.recommend.journeys import _CANDIDATES, _Waypoints
    from moodtune.similarity import get_metric, top_k

    catalog = _catalog(n=3000)
    cosine = get_metric("cosine")
    prepared = catalog.prepared(cosine)
    used = np.zeros(len(catalog), dtype=bool)
    used[:excluded] = True
    for seed in range(5):
        start = _texts(1, seed=seed)[0]
        end = target_distribution(LABELS[seed])
        alphas = np.linspace(0, 1, 6)
        ways = _Waypoints(cosine, prepared, start, end, alphas, None, used)
        for i, a in enumerate(alphas):
            direct = cosine(((1 - a) * start + a * end).astype(np.float32), prepared)
            assert np.allclose(ways.full(i), direct, atol=1e-5)
            rows, values = ways.candidates(i)
            expected = top_k(direct, _CANDIDATES, used)
            assert np.allclose(values, direct[expected], atol=1e-5)
            assert set(rows) == set(expected.tolist()) or np.allclose(
                sorted(values), sorted(direct[rows]), atol=1e-5
            )


def test_a_label_targets_cosine_comes_from_the_prepared_matrix() -> None:
    from moodtune.recommend.journeys import _similarity_to
    from moodtune.similarity import get_metric

    catalog = _catalog()
    cosine = get_metric("cosine")
    prepared = catalog.prepared(cosine)
    for label in LABELS:
        goal = target_distribution(label)
        assert np.allclose(_similarity_to(cosine, prepared, goal), cosine(goal, prepared), atol=1e-6)
