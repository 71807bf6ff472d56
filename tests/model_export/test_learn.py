"""The loop's learning rule on small synthetic feedback (model_export.learn): no torch, no stack."""

from __future__ import annotations

import numpy as np
import pytest

from model_export.learn import (
    LearnConfig,
    joint_inference,
    joint_vectors,
    keep_sharpness,
    lyric_examples,
    moved_songs,
    posterior_vector,
    posterior_vectors,
    reread,
    rule_vectors,
    song_evidence,
    text_examples,
)
from moodtune.labels import LABEL_INDEX, LABELS

CFG = LearnConfig(rule="additive", need_like=True)


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


def test_reread_puts_the_texts_in_the_new_models_terms_and_keeps_rows_without_text() -> None:
    rows = [
        {**row("s1", True, joy=1.0), "text": "비가 와"},
        {**row("s1", True, rid="r2", joy=1.0), "text": "비가 와"},
        {**row("s2", False, rid="r3", anger=1.0), "text": None},
    ]
    calls: list[list[str]] = []

    def predict(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([vec(sadness=0.8, neutral=0.2)] * len(texts))

    out = reread(rows, predict)
    assert calls == [["비가 와"]]  # each distinct text read once
    assert out[0]["scores"]["sadness"] == pytest.approx(0.8) and out[0]["scores"]["joy"] == 0.0
    assert out[2]["scores"] == rows[2]["scores"]  # no text: the served reading stays
    assert rows[0]["scores"]["joy"] == 1.0  # the input rows are not changed
    ev = song_evidence(out)["s1"]
    assert ev.likes[LABEL_INDEX["sadness"]] == pytest.approx(1.6)


def test_dislike_only_songs_become_examples_unless_a_like_is_required() -> None:
    rows = [row("s1", False, rid=f"r{i}", joy=1.0) for i in range(3)]
    ev = song_evidence(rows)
    chunks, priors = {"s1": ["가사 한 줄"]}, {"s1": PRIOR}
    assert lyric_examples(chunks, priors, ev, LearnConfig(need_like=True)) == []
    (example,) = lyric_examples(chunks, priors, ev, LearnConfig())
    assert example.soft is not None and example.soft[LABEL_INDEX["joy"]] < PRIOR[LABEL_INDEX["joy"]]


SAD_SONG = vec(sadness=0.9, fear=0.05, joy=0.05)
OPEN = vec(joy=0.4, sadness=0.3, fear=0.3)  # a song the lyrics leave open


def test_the_joint_rule_reads_a_misread_text_from_its_other_answers() -> None:
    priors = {"a": SAD_SONG, "b": SAD_SONG, "x": OPEN}
    # the model read these texts as fear, but each liked two songs everyone agrees are sad, and x
    rows = [row(song, True, rid=f"r{i}", fear=0.7, sadness=0.3) for i in range(3) for song in ("a", "b", "x")]
    joint = joint_vectors(priors, rows, LearnConfig(rule="joint"), strength=2.0)
    bayes = rule_vectors(priors, rows, LearnConfig(rule="bayes"), strength=2.0)
    sad, fear = LABEL_INDEX["sadness"], LABEL_INDEX["fear"]
    assert joint["x"][sad] > joint["x"][fear]  # the texts were sad: x is sad
    assert bayes["x"][fear] > bayes["x"][sad]  # trusting the reading: x would be fear
    assert joint["a"].argmax() == sad


def test_the_joint_rule_moves_away_on_dislikes_keeps_the_prior_and_ignores_row_order() -> None:
    priors = {"s1": PRIOR, "s2": OPEN}
    rows = [row("s1", False, rid=f"r{i}", joy=0.9, neutral=0.1) for i in range(3)]
    cfg = LearnConfig(rule="joint")
    out = joint_vectors(priors, rows, cfg, strength=2.0)
    joy = LABEL_INDEX["joy"]
    assert out["s1"][joy] < PRIOR[joy]
    np.testing.assert_allclose(out["s2"], OPEN, atol=1e-6)  # no answers: the prior
    np.testing.assert_allclose(joint_vectors(priors, [], cfg, 2.0)["s1"], PRIOR, atol=1e-6)
    again = joint_vectors(priors, list(reversed(rows)), cfg, strength=2.0)
    np.testing.assert_array_equal(out["s1"], again["s1"])
    # rows of songs outside the catalog or without a usable answer are left out
    noisy = [*rows, row("gone", True, joy=1.0), {**row("s2", True, joy=1.0), "scores": None}]
    np.testing.assert_array_equal(joint_vectors(priors, noisy, cfg, 2.0)["s2"], out["s2"])


def test_keep_sharpness_keeps_the_feelings_order_at_the_lyrics_peak() -> None:
    prior = vec(joy=0.4, sadness=0.35, neutral=0.25)
    sharp = vec(sadness=0.9, joy=0.06, neutral=0.04)
    kept = keep_sharpness(prior, sharp)
    assert kept.max() == pytest.approx(prior.max(), abs=1e-4)  # as peaked as the lyrics, no more
    assert list(np.argsort(-kept)) == list(np.argsort(-sharp))  # the feedback's order of feelings
    broad = vec(sadness=0.3, joy=0.25, neutral=0.25, fear=0.2)
    np.testing.assert_allclose(keep_sharpness(prior, broad), broad, atol=1e-6)  # never sharpened
    cfg = LearnConfig(rule="joint")
    rows = [row("s1", True, rid=f"r{i}", sadness=1.0) for i in range(20)]
    served = rule_vectors({"s1": prior}, rows, cfg, 2.0)["s1"]
    raw = rule_vectors({"s1": prior}, rows, LearnConfig(rule="joint", keep_sharpness=False), 2.0)["s1"]
    assert served.argmax() == raw.argmax() == LABEL_INDEX["sadness"]
    assert raw.max() > 0.8 and served.max() == pytest.approx(prior.max(), abs=1e-4)


JOY_SONG = vec(joy=0.9, surprise=0.05, neutral=0.05)


def texted(song: str, satisfied: bool, rid: str, text: str, **scores: float) -> dict:
    return {**row(song, satisfied, rid, **scores), "text": text}


def test_a_text_the_model_misread_is_labelled_by_what_its_user_liked() -> None:
    priors = {"sad1": SAD_SONG, "sad2": SAD_SONG, "joy1": JOY_SONG}
    cfg = LearnConfig(rule="joint", text_weight=1.0)
    # read as joy; its users liked both sad songs and disliked the joyful one, twice over
    misread = [
        texted(song, song != "joy1", f"m{i}", "비 온다", joy=0.7, sadness=0.3)
        for i in range(2)
        for song in ("sad1", "sad2", "joy1")
    ]
    # read as joy and liked for joy: the answers confirm the reading
    confirmed = [texted("joy1", True, "c1", "신난다", joy=0.8, surprise=0.2)]

    def texts(rows: list[dict], cfg: LearnConfig) -> list:
        return text_examples(joint_inference(priors, rows, cfg), cfg)

    out = {e.text: e for e in texts(misread + confirmed, cfg)}
    sad, joy = LABEL_INDEX["sadness"], LABEL_INDEX["joy"]
    assert out["비 온다"].label == "sadness" and out["비 온다"].soft[sad] > 0.9
    assert out["비 온다"].weight == pytest.approx(6 / 8)  # six answers against a prior worth two
    assert "신난다" not in out  # one answer: fewer than min_answers
    one = {e.text: e for e in texts(confirmed, LearnConfig(rule="joint", min_answers=1))}
    assert one["신난다"].label == "joy" and one["신난다"].soft[joy] > 0.8
    # rows without text (an export that leaves texts out) give no text examples, and order is irrelevant
    assert texts([{k: v for k, v in r.items() if k != "text"} for r in misread], cfg) == []
    assert texts(list(reversed(misread)), cfg) == texts(misread, cfg)
