"""moodtune.http.resolver helpers: the JSON body decoder, the error answer, OpenAPI responses, logs."""

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from moodtune.http.resolver import (
    ERROR_DOCS,
    _json_loads,
    error_response,
    log_json,
    log_message,
    route_responses,
)
from moodtune.http.schemas import HealthResponse


def test_every_json_failure_is_a_json_decode_error() -> None:
    assert _json_loads('{"a": [1, 2.5, "가"]}') == {"a": [1, 2.5, "가"]}
    limit = sys.get_int_max_str_digits()
    body = '{"text": "a", "limit": ' + "9" * (limit + 1) + "}"
    with pytest.raises(ValueError) as plain:
        json.loads(body)  # what Powertools would call: a plain ValueError, which it does not catch
    assert not isinstance(plain.value, json.JSONDecodeError)
    with pytest.raises(json.JSONDecodeError) as info:
        _json_loads(body)
    assert info.value.pos == body.index("9") and f"more than {limit} digits" in info.value.msg
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        _json_loads('{"a": }')


def test_an_error_answer_survives_lone_surrogates_in_what_it_quotes() -> None:
    answer = error_response(
        404, "no route GET /v1/songs/\ud800", [{"loc": ["body", "x"], "type": "t", "msg": "m"}]
    )
    assert json.loads(answer.body)["message"] == "no route GET /v1/songs/?"


def test_route_responses_document_the_model_the_errors_the_throttle_and_500() -> None:
    responses = route_responses(200, "fine", HealthResponse, 503, 400)
    assert list(responses) == [200, 400, 429, 500, 503]
    assert "Too Many Requests" in responses[429]["description"]
    assert responses[200]["content"]["application/json"]["model"] is HealthResponse
    assert responses[503] is ERROR_DOCS[503] and "Retry-After" in responses[503]["headers"]
    assert "content" not in route_responses(200, "no body model", None)[200]
    linked = route_responses(201, "made", HealthResponse, links={"Next": {"operationId": "next"}})
    assert linked[201]["links"] == {"Next": {"operationId": "next"}}


def test_log_json_writes_what_json_dumps_would() -> None:
    record = {"message": "recommendation made", "songs": 5, "ms": {"inference": 2.25}, "d": Decimal("1.5")}
    record["who"] = "한국어"
    encoded = log_json(record)
    assert json.loads(encoded) == json.loads(json.dumps(record, default=str))
    assert "한국어" in encoded and " " not in encoded.replace("recommendation made", "")  # compact, UTF-8
    assert json.loads(log_json({"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}))["at"].startswith(
        "2026-01-02T"
    )
    assert json.loads(log_json({"odd": object()}))["odd"].startswith("<object object")
    assert json.loads(log_json({"bad": "\ud800"}))  # pydantic refuses it; json.dumps still writes it


def test_log_message_parses_only_what_can_be_json() -> None:
    assert log_message("recommendation made") == "recommendation made"
    assert log_message('{"a": 1}') == {"a": 1}
    assert log_message("[1]") == [1]
    assert log_message(42) == 42
    with pytest.raises(json.JSONDecodeError):
        log_message("{not json")  # Powertools catches it and keeps the message as it is
