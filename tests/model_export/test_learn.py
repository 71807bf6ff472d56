"""The loop's learning rule on small synthetic feedback (model_export.learn): no torch, no stack."""

from __future__ import annotations

import numpy as np
import pytest

from model_export.learn import (
    LearnConfig,
    lyric_examples,
    moved_songs,
    posterior_vector,
    posterior_vectors,
    song_evidence,
)
from moodtune.labels import LABEL_INDEX, LABELS

CFG = LearnConfig(rule="additive")


def dist(**probs: float) -> dict[str, float]:
    return {label: probs.get(label, 0.0) for label in LABELS}


def vec(**probs: float) -> np.ndarray:
    v = np.array([probs.get(label, 0.0) for label in LABELS])
    return v / v.sum()


PRIOR = vec(joy=0.5, sadness=0.2, neutral=0.3)


def row(song: str, satisfied: bool, rid: str = "r1", **scores: float) -> dict:
    return {"recommendation_id": rid, "song_id": song, "satisfied": satisfied, "scores": dist(**scores)}


def test_a_song_liked_for_sadness_moves_toward_sadness() -> None:
    ev = song_evidence([row("s1", True, sadness=0.9, neutral=0.1)])
    q = posterior_vector(PRIOR, ev["s1"], CFG.strength, CFG.against, CFG.floor)
    assert q[LABEL_INDEX["sadness"]] > PRIOR[LABEL_INDEX["sadness"]]
    assert q.sum() == pytest.approx(1.0, abs=1e-6)
    # Two more likes for sadness make it the song's dominant feeling.
    ev = song_evidence([row("s1", True, f"r{i}", sadness=0.9, neutral=0.1) for i in range(3)])
    q = posterior_vector(PRIOR, ev["s1"], CFG.strength, CFG.against, CFG.floor)
    assert LABELS[int(np.argmax(q))] == "sadness"


def test_a_song_disliked_for_joy_moves_away_from_joy() -> None:
    ev = song_evidence([row("s1", False, joy=0.8, surprise=0.2)])
    q = posterior_vector(PRIOR, ev["s1"], CFG.strength, CFG.against, CFG.floor)
    assert q[LABEL_INDEX["joy"]] < PRIOR[LABEL_INDEX["joy"]]
    assert np.all(q > 0)  # never below the floor
    # Many dislikes bottom out at the floor instead of going negative.
    ev = song_evidence([row("s1", False, f"r{i}", joy=1.0) for i in range(50)])
    q = posterior_vector(PRIOR, ev["s1"], CFG.strength, CFG.against, CFG.floor)
    assert 0 < q[LABEL_INDEX["joy"]] < 0.05


def test_the_prior_holds_without_feedback() -> None:
    priors = {"s1": PRIOR, "s2": vec(anger=0.6, fear=0.4)}
    out = posterior_vectors(priors, song_evidence([row("s2", True, anger=1.0)]), CFG)
    np.testing.assert_allclose(out["s1"], PRIOR, atol=1e-6)
    assert moved_songs(priors, out) == {"dominant_changed": 0, "moved": 1}


def test_rows_without_usable_scores_are_skipped_and_order_does_not_matter() -> None:
    rows = [
        row("s1", True, "a", sadness=1.0),
        {"song_id": "s1", "satisfied": True, "scores": "bad"},
        {"song_id": "s1", "satisfied": "yes", "scores": dist(joy=1.0)},
        row("s1", False, "b", joy=0.7, anger=0.3),
    ]
    ev = song_evidence(rows)["s1"]
    assert (ev.n_likes, ev.n_dislikes) == (1, 1)
    again = song_evidence(list(reversed(rows)))["s1"]
    np.testing.assert_array_equal(ev.likes, again.likes)
    np.testing.assert_array_equal(ev.dislikes, again.dislikes)


def test_lyric_examples_are_soft_weighted_and_need_answers_and_a_like() -> None:
    chunks = {"s1": ["첫 줄 둘째 줄", "셋째 줄 넷째 줄"], "s2": ["가사"], "s3": ["가사"]}
    priors = {"s1": PRIOR, "s2": PRIOR, "s3": PRIOR}
    rows = [row("s1", True, f"r{i}", sadness=0.9, neutral=0.1) for i in range(3)]
    rows += [row("s2", True, "x", sadness=1.0)]  # one answer: too little
    rows += [row("s3", False, f"y{i}", joy=1.0) for i in range(3)]  # only dislikes: no target
    examples = lyric_examples(chunks, priors, song_evidence(rows), CFG)
    assert [e.text for e in examples] == chunks["s1"]
    e = examples[0]
    assert e.label == "sadness" and e.soft is not None
    assert e.weight == pytest.approx(3 / (3 + CFG.strength))
    assert e.soft[LABEL_INDEX["sadness"]] > e.soft[LABEL_INDEX["joy"]]


def test_the_bayes_rule_moves_the_same_ways_and_discounts_noise() -> None:
    from dataclasses import replace

    bayes = replace(CFG, rule="bayes")
    liked = posterior_vectors({"s": PRIOR}, song_evidence([row("s", True, sadness=0.9, neutral=0.1)]), bayes)[
        "s"
    ]
    assert liked[LABEL_INDEX["sadness"]] > PRIOR[LABEL_INDEX["sadness"]]
    disliked = posterior_vectors({"s": PRIOR}, song_evidence([row("s", False, joy=0.9, neutral=0.1)]), bayes)[
        "s"
    ]
    assert disliked[LABEL_INDEX["joy"]] < PRIOR[LABEL_INDEX["joy"]]
    np.testing.assert_allclose(posterior_vectors({"s": PRIOR}, {}, bayes)["s"], PRIOR, atol=1e-6)
    # One like among four dislikes for sadness: the like reads as noise, sadness still falls.
    rows = [row("s", True, "a", sadness=1.0)] + [row("s", False, f"b{i}", sadness=1.0) for i in range(4)]
    mixed = posterior_vectors({"s": vec(sadness=0.5, anger=0.5)}, song_evidence(rows), bayes)["s"]
    assert mixed[LABEL_INDEX["sadness"]] < 0.5
