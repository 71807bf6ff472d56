"""No answer can pass Lambda's 6 MB response payload (6,291,556 bytes), so none is ever cut off: every
answer is bounded by the request limits (20 songs at most) and the catalog's field limits (ingest).
The worst case is built here from those limits, with the characters JSON writes longest (a control
character is 6 bytes as ``\\u0001``; pydantic writes non-ASCII as UTF-8, at most 4 bytes a character)."""

from __future__ import annotations

from moodtune.catalog.ingest import CatalogSong
from moodtune.http.schemas import LIMIT_MAX, RecommendationResponse, SongResponse

LAMBDA_MAX_RESPONSE = 6 * 1024 * 1024 + 100
LABELS = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral")
CATALOG = CatalogSong.model_json_schema()["properties"]
TEXT_MAX = max(CATALOG["title"]["maxLength"], CATALOG["artist"]["maxLength"])
SONG_ID_MAX_CHARS = CATALOG["song_id"]["maxLength"]
WORST = "\x01"  # JSON's longest spelling of one character: \u0001


def _scores() -> dict[str, float]:
    return {label: 0.123456789012345 for label in LABELS}


def _song() -> dict:
    return {
        "song_id": WORST * SONG_ID_MAX_CHARS,
        "title": WORST * TEXT_MAX,
        "artist": WORST * TEXT_MAX,
        "dominant": "joy",
        "scores": _scores(),
    }


def test_the_largest_recommendation_is_far_under_lambdas_6_mb() -> None:
    explanation = {
        "song_top": [(label, 0.123456789) for label in LABELS],
        "text_top": [(label, 0.5) for label in LABELS],
        "shared": list(LABELS),
    }
    answer = RecommendationResponse.model_validate(
        {
            "recommendation_id": "x" * 22,
            "model_version": WORST * 200,
            "mode": "distribution",
            "emotion": {"dominant": "joy", "scores": _scores()},
            "songs": [{**_song(), "similarity": 0.99, "explanation": explanation} for _ in range(LIMIT_MAX)],
        }
    )
    size = len(answer.model_dump_json().encode())
    assert size < LAMBDA_MAX_RESPONSE / 50, size  # ~120 KB


def test_the_largest_song_is_far_under_lambdas_6_mb() -> None:
    answer = SongResponse.model_validate(
        {
            **_song(),
            "album": WORST * TEXT_MAX,
            "year": 2999,
            "genre": WORST * 100,
            "chunks": 10**6,
            "model_version": WORST * 200,
        }
    )
    assert len(answer.model_dump_json().encode()) < LAMBDA_MAX_RESPONSE / 500  # ~9 KB
