"""Request models: strict types, unknown fields refused, text measured as sent and trimmed to non-empty."""

import re
import sys
import unicodedata

import pytest
from pydantic import ValidationError

from moodtune.emotion.text import normalize_text
from moodtune.http.schemas import (
    EXCLUDE_MAX,
    TEXT_MAX_CHARS,
    TRIMMED_CHARS,
    EmotionRequest,
    FeedbackRequest,
    HealthResponse,
    RecommendationRequest,
)


def _error_types(model: type, data: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [(e["loc"], e["type"]) for e in info.value.errors()]


def test_defaults_and_normalisation() -> None:
    decomposed = unicodedata.normalize("NFD", "  오늘   너무\t우울해 ㅠㅠ  ")
    request = RecommendationRequest.model_validate({"text": decomposed})
    assert request.text == "오늘 너무 우울해 ㅠㅠ"  # NFC, whitespace collapsed, trimmed, ㅠ kept
    assert (request.limit, request.mode, request.exclude) == (5, "distribution", [])


def test_text_length_is_measured_as_sent_like_the_documents_max_length() -> None:
    assert len(EmotionRequest.model_validate({"text": "가" * TEXT_MAX_CHARS}).text) == TEXT_MAX_CHARS
    assert _error_types(EmotionRequest, {"text": "  " + "가" * (TEXT_MAX_CHARS - 3) + "\n "}) == [
        (("text",), "text_too_long")
    ]
    assert _error_types(EmotionRequest, {"text": "가" * (TEXT_MAX_CHARS + 1)}) == [
        (("text",), "text_too_long")
    ]
    assert _error_types(EmotionRequest, {"text": " \u3000\n\u200b "}) == [(("text",), "text_empty")]


def test_the_trimmed_characters_are_every_character_normalize_text_drops() -> None:
    trimmed = {c for c in map(chr, range(sys.maxunicode + 1)) if normalize_text(c) == ""}
    assert trimmed == set(TRIMMED_CHARS)


@pytest.mark.parametrize("text", [" ", "\x85", "\x1d", "\u200b\ufeff", " \u3000\n\u2060 ", "\x1c\u2028"])
def test_the_documents_pattern_refuses_exactly_the_texts_that_trim_to_nothing(text: str) -> None:
    schema = EmotionRequest.model_json_schema()["properties"]["text"]
    assert re.search(schema["pattern"], text) is None
    assert _error_types(EmotionRequest, {"text": text}) == [(("text",), "text_empty")]
    assert re.search(schema["pattern"], text + "가") and EmotionRequest.model_validate({"text": text + "가"})


@pytest.mark.parametrize(("sent", "read"), [(17.0, 17), (1e1, 10), (20.0, 20)])
def test_an_integral_limit_written_as_a_float_is_an_integer_as_json_schema_says(sent, read) -> None:
    assert RecommendationRequest.model_validate({"text": "a", "limit": sent}).limit == read


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, [(("text",), "missing")]),
        ({"text": 42}, [(("text",), "string_type")]),
        ({"text": ["a"]}, [(("text",), "string_type")]),
        ({"text": "\ud800"}, [(("text",), "text_unicode")]),
        ({"text": "a", "limit": "5"}, [(("limit",), "int_type")]),
        ({"text": "a", "limit": 5.5}, [(("limit",), "int_type")]),
        ({"text": "a", "limit": float("inf")}, [(("limit",), "int_type")]),
        ({"text": "a", "limit": 1e300}, [(("limit",), "less_than_equal")]),
        ({"text": "a", "limit": True}, [(("limit",), "int_type")]),
        ({"text": "a", "limit": 0}, [(("limit",), "greater_than_equal")]),
        ({"text": "a", "limit": 21}, [(("limit",), "less_than_equal")]),
        ({"text": "a", "mode": "Dominant"}, [(("mode",), "literal_error")]),
        ({"text": "a", "exclude": "s1"}, [(("exclude",), "list_type")]),
        ({"text": "a", "exclude": [1]}, [(("exclude", 0), "string_type")]),
        ({"text": "a", "exclude": [""]}, [(("exclude", 0), "string_too_short")]),
        ({"text": "a", "exclude": ["s"] * (EXCLUDE_MAX + 1)}, [(("exclude",), "too_long")]),
        ({"text": "a", "metric": "cosine"}, [(("metric",), "extra_forbidden")]),
    ],
)
def test_recommendation_request_refuses(data: dict, expected: list) -> None:
    assert _error_types(RecommendationRequest, data) == expected


def test_recommendation_request_accepts_the_limits() -> None:
    request = RecommendationRequest.model_validate(
        {"text": "a", "limit": 20, "mode": "dominant", "exclude": ["s"] * EXCLUDE_MAX}
    )
    assert (request.limit, request.mode, len(request.exclude)) == (20, "dominant", EXCLUDE_MAX)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"song_id": "s1"}, [(("satisfied",), "missing")]),
        ({"song_id": "s1", "satisfied": "true"}, [(("satisfied",), "bool_type")]),
        ({"song_id": "s1", "satisfied": 1}, [(("satisfied",), "bool_type")]),
        ({"song_id": 7, "satisfied": True}, [(("song_id",), "string_type")]),
        ({"song_id": "s1", "satisfied": True, "rating": 5}, [(("rating",), "extra_forbidden")]),
    ],
)
def test_feedback_request_is_strict(data: dict, expected: list) -> None:
    assert _error_types(FeedbackRequest, data) == expected


def test_feedback_request_accepts_booleans() -> None:
    assert FeedbackRequest.model_validate({"song_id": "s1", "satisfied": False}).satisfied is False


def test_json_schema_documents_the_text_limits() -> None:
    text = RecommendationRequest.model_json_schema()["properties"]["text"]
    assert (text["minLength"], text["maxLength"]) == (1, TEXT_MAX_CHARS)
    assert RecommendationRequest.model_json_schema()["additionalProperties"] is False


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (FeedbackRequest, {"song_id": "s\ud800", "satisfied": True}, ("song_id",)),
        (FeedbackRequest, {"song_id": "\udfff" * 200, "satisfied": True}, ("song_id",)),  # before length
        (RecommendationRequest, {"text": "a", "exclude": ["ok", "\udc00"]}, ("exclude", 1)),
    ],
)
def test_song_ids_with_lone_surrogates_are_refused_like_text(model: type, data: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    [error] = info.value.errors()
    assert error["loc"] == loc and error["type"] == "string_unicode"
    assert error["msg"] == "contains invalid Unicode (lone surrogates)"


def test_song_id_length_messages_are_unchanged() -> None:
    with pytest.raises(ValidationError) as info:
        FeedbackRequest.model_validate({"song_id": "x" * 129, "satisfied": True})
    assert info.value.errors()[0]["msg"] == "String should have at most 128 characters"


def test_health_is_ok_or_degraded_only() -> None:
    for status in ("ok", "degraded"):
        assert HealthResponse(status=status, model_version="m", catalog_size=0).status == status
    with pytest.raises(ValidationError):
        HealthResponse(status="broken", model_version="m", catalog_size=0)


def test_a_requests_repr_never_shows_the_users_text() -> None:
    request = RecommendationRequest.model_validate({"text": "아무도 모르는 비밀", "exclude": ["s1"]})
    for shown in (repr(request), str(request), f"{request}", repr([request])):
        assert "비밀" not in shown and "s1" not in shown
        assert "RecommendationRequest(text, limit, mode, exclude)" in shown
