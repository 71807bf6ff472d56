"""Both recommendation modes, exclusion, limits, ties and explanations on a hand-made catalog."""

import numpy as np
import pytest

from moodtune.catalog.songs import Catalog, ScoredSong
from moodtune.labels import LABELS
from moodtune.recommend.ranking import explain, recommend, top_emotions


def _v(**probs: float) -> tuple[float, ...]:
    vector = np.array([probs.get(label, 0.0) for label in LABELS], np.float32)
    return tuple(float(x) for x in vector / vector.sum())


SONGS = [
    ScoredSong("s-sad-1", "Rain", "A", _v(sadness=0.7, fear=0.2, neutral=0.1)),
    ScoredSong("s-sad-2", "Tears", "A", _v(sadness=0.5, neutral=0.3, joy=0.2)),
    ScoredSong("s-joy-1", "Sun", "B", _v(joy=0.8, surprise=0.2)),
    ScoredSong("s-joy-2", "Party", "B", _v(joy=0.4, sadness=0.35, neutral=0.25)),
    ScoredSong("s-fear-1", "Night", "C", _v(fear=0.6, sadness=0.4)),
    ScoredSong("s-neu-1", "Tuesday", "C", _v(neutral=0.9, joy=0.1)),
]
TEXT = np.array(_v(sadness=0.6, fear=0.3, neutral=0.1), np.float32)
PLAIN = {"mmr_lambda": 1.0, "artist_spread": False}  # the plain ranking, without diversity


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(model_version="m1", songs=tuple(reversed(SONGS)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_distribution_mode_ranks_the_whole_catalog_by_cosine(catalog: Catalog) -> None:
    matches = recommend(catalog, TEXT, limit=len(SONGS), **PLAIN)
    expected = sorted(SONGS, key=lambda s: -_cosine(TEXT, np.array(s.vector)))
    assert [m.song.song_id for m in matches] == [s.song_id for s in expected]
    assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
    assert matches[0].similarity == pytest.approx(_cosine(TEXT, np.array(SONGS[0].vector)), abs=1e-5)


def test_dominant_mode_keeps_only_songs_of_the_texts_top_emotion(catalog: Catalog) -> None:
    matches = recommend(catalog, TEXT, limit=10, mode="dominant", **PLAIN)
    assert [m.song.song_id for m in matches] == ["s-sad-1", "s-sad-2"]
    assert all(m.song.dominant == "sadness" for m in matches)
    # distribution mode reaches songs of other dominant emotions that dominant mode never offers
    ids = {m.song.song_id for m in recommend(catalog, TEXT, limit=3)}
    assert "s-fear-1" in ids


def test_limit_and_exclude(catalog: Catalog) -> None:
    assert len(recommend(catalog, TEXT, limit=2)) == 2
    matches = recommend(catalog, TEXT, limit=3, exclude=["s-sad-1", "unknown-id"], **PLAIN)
    assert "s-sad-1" not in [m.song.song_id for m in matches]
    assert len(matches) == 3
    assert recommend(catalog, TEXT, limit=5, mode="dominant", exclude=["s-sad-1", "s-sad-2"]) == []


def test_ties_go_to_the_lower_song_id_whatever_the_input_order() -> None:
    twins = [ScoredSong(f"t-{c}", c, "x", _v(joy=0.5, neutral=0.5)) for c in "dcbae"]
    catalog = Catalog(model_version="m1", songs=tuple(twins))
    assert [m.song.song_id for m in recommend(catalog, TEXT, limit=3, **PLAIN)] == ["t-a", "t-b", "t-c"]


def test_jensen_shannon_is_pluggable(catalog: Catalog) -> None:
    matches = recommend(catalog, TEXT, limit=len(SONGS), metric="jensen_shannon", **PLAIN)
    assert len(matches) == len(SONGS)
    assert all(0.0 <= m.similarity <= 1.0 for m in matches)
    with pytest.raises(ValueError, match="unknown similarity metric"):
        recommend(catalog, TEXT, metric="nope")


def test_bad_arguments_and_empty_catalog(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        recommend(catalog, TEXT, mode="vibes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        recommend(catalog, TEXT[:3])
    assert recommend(Catalog(model_version="m1", songs=()), TEXT) == []


def test_explanation_names_top_emotions_and_what_is_shared(catalog: Catalog) -> None:
    match = recommend(catalog, TEXT, limit=1)[0]
    assert match.song.song_id == "s-sad-1"
    explanation = match.explanation.as_dict()
    assert explanation["song_top"] == [["sadness", 0.7], ["fear", 0.2], ["neutral", 0.1]]
    assert explanation["text_top"] == [["sadness", 0.6], ["fear", 0.3], ["neutral", 0.1]]
    assert explanation["shared"] == ["sadness", "fear", "neutral"]
    joy_song = next(m for m in recommend(catalog, TEXT, limit=6) if m.song.song_id == "s-joy-1")
    assert joy_song.explanation.song_top == (("joy", 0.8), ("surprise", 0.2))
    assert joy_song.explanation.shared == ()


def test_top_emotions_always_names_at_least_the_strongest() -> None:
    flat = np.full(7, 1 / 7, np.float32)
    assert top_emotions(flat) == (("joy", 0.143), ("sadness", 0.143), ("anger", 0.143))
    assert top_emotions(flat, min_p=0.5) == (("joy", 0.143),)
    assert explain(np.array(_v(joy=1.0)), np.array(_v(anger=1.0))).shared == ()


def test_the_default_list_spreads_artists_and_keeps_the_explanations(catalog: Catalog) -> None:
    plain = recommend(catalog, TEXT, limit=3, **PLAIN)
    diverse = recommend(catalog, TEXT, limit=3)
    artists = [m.song.artist for m in diverse]
    assert len(set(artists)) == 3  # A, B, C: three artists for three songs
    assert diverse[0].song.song_id == plain[0].song.song_id  # the best song still leads
    for match in diverse:  # explanations do not depend on the list
        assert match.explanation == explain(TEXT, match.song.vector)


def test_artists_repeat_only_when_the_catalog_cannot_fill_the_list(catalog: Catalog) -> None:
    everything = recommend(catalog, TEXT, limit=len(SONGS))
    assert len(everything) == len(SONGS)
    assert len({m.song.artist for m in everything[:3]}) == 3  # 3 artists, so repeats only after 3


def test_exploration_gives_the_last_slot_to_a_song_below_the_list(catalog: Catalog) -> None:
    import random

    plain = [m.song.song_id for m in recommend(catalog, TEXT, limit=3, **PLAIN)]
    rng = random.Random(0)
    for _ in range(20):
        explored = [m.song.song_id for m in recommend(catalog, TEXT, limit=3, explore=1.0, rng=rng, **PLAIN)]
        assert explored[:2] == plain[:2]
        assert explored[2] not in plain
    assert [m.song.song_id for m in recommend(catalog, TEXT, limit=3, explore=0.0, **PLAIN)] == plain


def test_an_exploration_window_draws_only_from_the_songs_ranked_best_below_the_list(
    catalog: Catalog,
) -> None:
    import random

    ranked = [m.song.song_id for m in recommend(catalog, TEXT, limit=len(SONGS), **PLAIN)]
    rng = random.Random(0)

    def last_slot(window: int) -> str:
        listed = recommend(catalog, TEXT, limit=2, explore=1.0, rng=rng, explore_window=window, **PLAIN)
        assert listed[0].song.song_id == ranked[0]
        return listed[-1].song.song_id

    assert {last_slot(1) for _ in range(10)} == {ranked[2]}  # the best song below a list of two
    assert {last_slot(2) for _ in range(40)} == set(ranked[2:4])
    assert {last_slot(0) for _ in range(80)} == set(ranked[2:])  # 0: all songs below the list
    # the window keeps the exclusions: with the 3rd-ranked song excluded the 4th is the best below
    excluded = recommend(
        catalog, TEXT, limit=2, exclude=[ranked[2]], explore=1.0, rng=rng, explore_window=1, **PLAIN
    )
    assert excluded[-1].song.song_id == ranked[3]


def test_exploration_keeps_exclusions_and_needs_two_slots(catalog: Catalog) -> None:
    import random

    rng = random.Random(1)
    everything_else = [s.song_id for s in SONGS if s.song_id not in ("s-sad-1", "s-fear-1", "s-neu-1")]
    for _ in range(20):
        ids = [
            m.song.song_id
            for m in recommend(catalog, TEXT, limit=2, exclude=everything_else, explore=1.0, rng=rng)
        ]
        assert set(ids) <= {"s-sad-1", "s-fear-1", "s-neu-1"}
    one = recommend(catalog, TEXT, limit=1, explore=1.0, rng=rng)
    assert [m.song.song_id for m in one] == [recommend(catalog, TEXT, limit=1)[0].song.song_id]
