"""RecommendationStore: the record item, the one conditional feedback update, and failures."""

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError

from infra.local.aws import load_template
from moodtune.errors import StoreFailure, StoreUnavailable
from moodtune.feedback.records import (
    RecommendationNotFound,
    RecommendationRecord,
    RecommendationStore,
    RecommendedSongRecord,
    SongNotInRecommendation,
    new_recommendation_id,
)
from moodtune.service import DYNAMODB_CALL_WORST_CASE_S, DYNAMODB_CONFIG

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
SCORES = {
    "joy": 0.1,
    "sadness": 0.6,
    "anger": 0.05,
    "fear": 0.1,
    "surprise": 0.05,
    "disgust": 0.05,
    "neutral": 0.05,
}


def _record(songs: tuple[str, ...] = ("s1", "s2"), text: str | None = "비밀 일기") -> RecommendationRecord:
    return RecommendationRecord(
        recommendation_id=new_recommendation_id(),
        created_at=NOW,
        model_version="demo-abc",
        mode="distribution",
        dominant="sadness",
        scores=SCORES,
        songs=[RecommendedSongRecord(s, 0.9, "sadness") for s in songs],
        text=text,
    )


class _Table:
    """An in-process stand-in for a boto3 Table that raises what it is told to."""

    name = "fake"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def put_item(self, **_: Any) -> None:
        raise self.error

    def update_item(self, **_: Any) -> None:
        raise self.error


def _client_error(code: str, item: dict | None = None, status: int = 400) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if item is not None:
        response["Item"] = item
    return ClientError(response, "UpdateItem")


def test_ids_are_unguessable_and_url_safe() -> None:
    ids = {new_recommendation_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


def test_item_shape_text_kept_only_when_configured() -> None:
    record = _record()
    item = RecommendationStore(_Table(RuntimeError()), store_text=True, retention_days=30).to_item(record)
    assert item["text"] == "비밀 일기"
    assert item["created_at"] == "2026-11-25T09:30:00.000Z"
    assert item["expires_at"] == int((NOW + timedelta(days=30)).timestamp())
    assert item["song_ids"] == {"s1", "s2"} and item["feedback"] == {}
    assert item["scores"]["sadness"] == Decimal("0.6")
    assert item["songs"][0] == {"song_id": "s1", "similarity": Decimal("0.9"), "dominant": "sadness"}
    no_text = RecommendationStore(_Table(RuntimeError()), store_text=False, retention_days=7).to_item(record)
    assert "text" not in no_text
    assert no_text["expires_at"] == int((NOW + timedelta(days=7)).timestamp())


def test_a_recommendation_without_songs_has_no_empty_string_set() -> None:
    item = RecommendationStore(_Table(RuntimeError()), store_text=True, retention_days=1).to_item(_record(()))
    assert "song_ids" not in item and item["songs"] == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("ConditionalCheckFailedException"), RecommendationNotFound),
        (
            _client_error("ConditionalCheckFailedException", {"recommendation_id": {"S": "x"}}),
            SongNotInRecommendation,
        ),
        (  # past expires_at, not yet deleted by DynamoDB's TTL: gone, as far as the API is concerned
            _client_error(
                "ConditionalCheckFailedException",
                {"recommendation_id": {"S": "x"}, "expires_at": {"N": str(int(NOW.timestamp()) - 1)}},
            ),
            RecommendationNotFound,
        ),
        (
            _client_error(
                "ConditionalCheckFailedException",
                {"recommendation_id": {"S": "x"}, "expires_at": {"N": str(int(NOW.timestamp()) + 60)}},
            ),
            SongNotInRecommendation,
        ),
        (_client_error("ProvisionedThroughputExceededException"), StoreUnavailable),
        (_client_error("ThrottlingException"), StoreUnavailable),
        (_client_error("InternalServerError", status=500), StoreUnavailable),
        (_client_error("SomethingNew", status=503), StoreUnavailable),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
        # No retry clears these: a bug or a misconfiguration, answered 500 rather than 503.
        (_client_error("ValidationException"), StoreFailure),
        (_client_error("ResourceNotFoundException"), StoreFailure),
        (_client_error("AccessDeniedException"), StoreFailure),
        (ParamValidationError(report="bad"), StoreFailure),
    ],
)
def test_feedback_errors_are_told_apart(error: Exception, expected: type) -> None:
    store = RecommendationStore(_Table(error), store_text=True, retention_days=1)
    with pytest.raises(expected):
        store.apply_feedback("rid", "s1", True, NOW)


def test_put_failure_is_store_unavailable_with_retry_after() -> None:
    store = RecommendationStore(
        _Table(_client_error("InternalServerError")), store_text=True, retention_days=1
    )
    with pytest.raises(StoreUnavailable) as info:
        store.put(_record())
    assert info.value.retry_after >= 1


def test_client_config_retries_in_standard_mode() -> None:
    assert DYNAMODB_CONFIG.retries == {"mode": "standard", "total_max_attempts": 2}


def test_a_dynamodb_call_gives_up_well_inside_every_serving_functions_timeout() -> None:
    """attempts x (connect + read timeout) + the longest backoff must leave the function time to
    answer 503 itself: otherwise Lambda's timeout answers first, as a plain 500."""
    attempts = DYNAMODB_CONFIG.retries["total_max_attempts"]
    per_attempt = DYNAMODB_CONFIG.connect_timeout + DYNAMODB_CONFIG.read_timeout
    worst = attempts * per_attempt + sum(2**i for i in range(attempts - 1))  # throttling backoff: 1 s, 2 s...
    assert worst <= DYNAMODB_CALL_WORST_CASE_S
    template = load_template(ROOT / "template.yaml")
    default = template["Globals"]["Function"]["Timeout"]
    for function in ("RecommendFunction", "FeedbackFunction"):
        timeout = template["Resources"][function]["Properties"].get("Timeout", default)
        assert worst <= timeout - 1, (function, worst, timeout)


# ------------------------------------------------------------ over HTTP


class _FlakyDynamo(BaseHTTPRequestHandler):
    """Answers DynamoDB JSON requests from a script of (status, error type or None)."""

    script: ClassVar[list[tuple[int, str | None]]] = []
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(self.headers.get("X-Amz-Target", ""))
        status, error = self.script[min(len(self.seen), len(self.script)) - 1]
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{error}", "message": error} if error else {}
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def flaky_dynamo() -> Iterator[tuple[type[_FlakyDynamo], Any]]:
    handler = type("Flaky", (_FlakyDynamo,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    table = boto3.resource(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="ap-northeast-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    ).Table("flaky")
    yield handler, table
    server.shutdown()
    thread.join()


def test_a_throttled_write_is_retried_and_lands(flaky_dynamo) -> None:
    handler, table = flaky_dynamo
    handler.script = [(400, "ThrottlingException"), (200, None)]
    RecommendationStore(table, store_text=True, retention_days=1).put(_record())
    assert handler.seen == ["DynamoDB_20120810.PutItem"] * 2


def test_a_write_that_keeps_failing_becomes_store_unavailable(flaky_dynamo) -> None:
    handler, table = flaky_dynamo
    handler.script = [(500, "InternalServerError")]
    with pytest.raises(StoreUnavailable, match="InternalServerError"):
        RecommendationStore(table, store_text=True, retention_days=1).put(_record())
    assert len(handler.seen) == 2  # the first attempt and one retry


@pytest.mark.integration
def test_feedback_updates_the_record_once_and_feeds_the_sparse_index(local_aws) -> None:
    table = local_aws.resource().Table(local_aws.feedback_table)
    store = RecommendationStore(table, store_text=False, retention_days=30)
    record = _record()
    store.put(record)
    key = {"recommendation_id": record.recommendation_id}
    assert "feedback_day" not in table.get_item(Key=key)["Item"]

    result = store.apply_feedback(record.recommendation_id, "s2", False, NOW)
    assert (result.song_id, result.satisfied, result.model_version) == ("s2", False, "demo-abc")
    store.apply_feedback(record.recommendation_id, "s2", False, NOW)  # a retry changes nothing
    item = table.get_item(Key=key, ConsistentRead=True)["Item"]
    assert item["feedback"] == {"s2": {"satisfied": False, "at": "2026-11-25T09:30:00.000Z"}}
    assert (item["feedback_day"], item["feedback_at"]) == ("2026-11-25", "2026-11-25T09:30:00.000Z")
    assert "text" not in item

    with pytest.raises(SongNotInRecommendation):
        store.apply_feedback(record.recommendation_id, "s9", True, NOW)
    with pytest.raises(RecommendationNotFound):
        store.apply_feedback("no-such-id", "s1", True, NOW)
    assert table.get_item(Key={"recommendation_id": "no-such-id"}).get("Item") is None  # no stray item
    assert table.get_item(Key=key, ConsistentRead=True)["Item"] == item  # failed condition wrote nothing

    by_day = table.query(
        IndexName="ByFeedbackDay", KeyConditionExpression=Key("feedback_day").eq("2026-11-25")
    )
    assert record.recommendation_id in {i["recommendation_id"] for i in by_day["Items"]}
