"""A text with two feelings: a small model that reads both, and songs that reflect both.

The model is a toy ONNX graph built for the test (model_export.toy.keyword_weights): it reads joy
from 행복 and sadness from 슬픔, so "행복한데 슬픔" comes out mixed. Through the real runtime
(tokenizers + onnxruntime), distribution mode must then find the bittersweet songs, while dominant
mode (the original method) can only offer songs of the one top label.
"""

from __future__ import annotations

import numpy as np
import pytest

from model_export.toy import build_toy_bundle
from moodtune.catalog.songs import Catalog, ScoredSong
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.labels import LABELS
from moodtune.recommend.ranking import recommend


def _v(**probs: float) -> tuple[float, ...]:
    vector = np.array([probs.get(label, 0.01) for label in LABELS])
    return tuple(float(x) for x in vector / vector.sum())


SONGS = [
    *(ScoredSong(f"joy-{i}", f"Sun {i}", f"J{i}", _v(joy=0.9 - i * 0.05)) for i in range(3)),
    *(ScoredSong(f"sad-{i}", f"Rain {i}", f"S{i}", _v(sadness=0.9 - i * 0.05)) for i in range(3)),
    *(ScoredSong(f"bit-{i}", f"Dusk {i}", f"B{i}", _v(joy=0.45 - i * 0.02, sadness=0.45)) for i in range(3)),
    ScoredSong("fear-0", "Night", "F", _v(fear=0.9)),
]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> EmotionClassifier:
    bundle = build_toy_bundle(
        tmp_path_factory.mktemp("mixed") / "bundle", keywords={"행복": "joy", "슬픔": "sadness"}
    )
    return EmotionClassifier.from_bundle(bundle, threads=1)


def test_the_small_model_reads_both_feelings(classifier) -> None:
    scores = dict(zip(LABELS, classifier.predict_one("행복 슬픔").tolist(), strict=True))
    assert scores["joy"] > 0.3 and scores["sadness"] > 0.3
    assert sorted(scores, key=scores.get)[-2:] in (["joy", "sadness"], ["sadness", "joy"])


def test_distribution_mode_reflects_both_feelings_and_dominant_mode_cannot(classifier) -> None:
    catalog = Catalog("toy", tuple(SONGS))
    scores = classifier.predict_one("행복 슬픔")
    plain = {"mmr_lambda": 1.0, "artist_spread": False}  # the ranking itself, before diversity
    by_distribution = recommend(catalog, scores, limit=3, mode="distribution", **plain)
    by_dominant = recommend(catalog, scores, limit=3, mode="dominant", **plain)
    assert [m.song.song_id for m in by_distribution] == ["bit-0", "bit-1", "bit-2"]
    assert [m.song.song_id for m in by_distribution] != [m.song.song_id for m in by_dominant]
    top = LABELS[int(np.argmax(scores))]
    assert all(m.song.dominant == top for m in by_dominant)
    # the explanation names both shared feelings
    assert set(by_distribution[0].explanation.shared) == {"joy", "sadness"}


def test_a_single_feeling_text_still_gets_its_own_songs(classifier) -> None:
    catalog = Catalog("toy", tuple(SONGS))
    matches = recommend(
        catalog, classifier.predict_one("행복 행복"), limit=3, mmr_lambda=1.0, artist_spread=False
    )
    assert {m.song.song_id for m in matches} == {"joy-0", "joy-1", "joy-2"}
