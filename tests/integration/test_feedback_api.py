"""FeedbackFunction end to end: the conditional update of a stored recommendation over the local endpoint."""

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from boto3.dynamodb.conditions import Key

from moodtune import service
from moodtune.feedback.records import (
    RecommendationRecord,
    RecommendationStore,
    RecommendedSongRecord,
    new_recommendation_id,
)
from moodtune.labels import LABELS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture
def recommendation(handlers, invoke) -> dict:
    answer = invoke(
        handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘은 그냥 그래", "limit": 2}
    )
    assert answer.status == 201
    return answer.body


def _item(local_aws, recommendation_id: str) -> dict:
    table = local_aws.resource().Table(local_aws.feedback_table)
    return table.get_item(Key={"recommendation_id": recommendation_id}, ConsistentRead=True)["Item"]


def _path(recommendation_id: str) -> str:
    return f"/v1/recommendations/{recommendation_id}/feedback"


def test_feedback_is_recorded_and_echoed(handlers, invoke, local_aws, recommendation) -> None:
    rid, song_id = recommendation["recommendation_id"], recommendation["songs"][1]["song_id"]
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": song_id, "satisfied": True})
    assert answer.status == 200
    assert answer.body["recommendation_id"] == rid
    assert (answer.body["song_id"], answer.body["satisfied"]) == (song_id, True)
    today = datetime.now(UTC).date().isoformat()
    assert answer.body["recorded_at"].startswith(today) and answer.body["recorded_at"].endswith("Z")

    item = _item(local_aws, rid)
    assert item["feedback"] == {song_id: {"satisfied": True, "at": answer.body["recorded_at"]}}
    assert item["feedback_day"] == today and item["feedback_at"] == answer.body["recorded_at"]
    table = local_aws.resource().Table(local_aws.feedback_table)
    by_day = table.query(IndexName="ByFeedbackDay", KeyConditionExpression=Key("feedback_day").eq(today))
    assert rid in {i["recommendation_id"] for i in by_day["Items"]}


def test_changing_ones_mind_overwrites_and_other_songs_keep_theirs(
    handlers, invoke, local_aws, recommendation
) -> None:
    rid = recommendation["recommendation_id"]
    first, second = (s["song_id"] for s in recommendation["songs"])
    for song_id, satisfied in [(first, True), (second, False), (first, False)]:
        answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": song_id, "satisfied": satisfied})
        assert answer.status == 200
    feedback = _item(local_aws, rid)["feedback"]
    assert {song: value["satisfied"] for song, value in feedback.items()} == {first: False, second: False}


def test_unknown_recommendation_is_404_and_writes_nothing(handlers, invoke, local_aws) -> None:
    answer = invoke(handlers.feedback, "POST", _path("no-such-id"), {"song_id": "t01", "satisfied": True})
    assert answer.status == 404
    assert answer.body == {"message": "no recommendation 'no-such-id'"}
    table = local_aws.resource().Table(local_aws.feedback_table)
    assert "Item" not in table.get_item(Key={"recommendation_id": "no-such-id"})


def test_song_not_in_the_recommendation_is_422_and_changes_nothing(
    handlers, invoke, local_aws, recommendation
) -> None:
    rid = recommendation["recommendation_id"]
    before = _item(local_aws, rid)
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": "not-recommended", "satisfied": True})
    assert answer.status == 422
    assert answer.body == {"message": f"song 'not-recommended' is not in recommendation '{rid}'"}
    assert _item(local_aws, rid) == before


@pytest.mark.parametrize(
    ("body", "kwargs", "status", "message"),
    [
        ({"song_id": "t01", "satisfied": "yes"}, {}, 400, "satisfied: Input should be a valid boolean"),
        ({"song_id": "t01", "satisfied": 1}, {}, 400, "satisfied: Input should be a valid boolean"),
        ({"song_id": "t01"}, {}, 400, "satisfied: Field required"),
        ({"satisfied": True}, {}, 400, "song_id: Field required"),
        ({"song_id": "", "satisfied": True}, {}, 400, "song_id: String should have at least 1 character"),
        ({"song_id": "t01", "satisfied": True, "stars": 5}, {}, 400, "stars: Extra inputs are not permitted"),
        ('{"song_id": "t01",', {}, 400, "not valid JSON"),
        (b"\xc3\x28", {}, 400, "not valid UTF-8"),
        ({"song_id": "t01", "satisfied": True}, {"headers": {"content-type": "text/csv"}}, 415, "'text/csv'"),
        (json.dumps({"song_id": "x" * 20000, "satisfied": True}), {}, 413, "the limit is 16384"),
        ('{"song_id": "t\\ud800", "satisfied": true}', {}, 400, "song_id: contains invalid Unicode"),
        ('{"song_id": "t01", "satisfied": ' + "1" * 4400 + "}", {}, 400, "more than 4300 digits"),
    ],
)
def test_bad_feedback_requests_get_a_clear_4xx(
    handlers, invoke, recommendation, body, kwargs, status, message
) -> None:
    answer = invoke(handlers.feedback, "POST", _path(recommendation["recommendation_id"]), body, **kwargs)
    assert answer.status == status, answer.body
    assert message in answer.body["message"], answer.body


def test_unknown_routes_and_methods(handlers, invoke) -> None:
    wrong_method = invoke(handlers.feedback, "GET", _path("abc"))
    assert wrong_method.status == 405 and wrong_method.headers["allow"] == "POST"
    assert (
        invoke(handlers.feedback, "POST", "/v1/feedback", {"song_id": "t01", "satisfied": True}).status == 404
    )


def _feedback_timeout_s() -> int:
    from infra.local.aws import load_template

    template = load_template(ROOT / "template.yaml")
    default = template["Globals"]["Function"]["Timeout"]
    return int(template["Resources"]["FeedbackFunction"]["Properties"].get("Timeout", default))


@pytest.mark.parametrize("endpoint", ["unreachable_dynamodb", "hung_dynamodb"])
def test_an_unavailable_store_is_a_503_with_retry_after_inside_the_functions_timeout(
    handlers, invoke, local_aws, recommendation, monkeypatch, request, endpoint
) -> None:
    """Connection refused, or an endpoint that never answers: the function itself answers 503 +
    Retry-After, well before Lambda would time it out (which the client would see as a plain 500)."""
    rid = recommendation["recommendation_id"]
    before = _item(local_aws, rid)
    dynamodb = request.getfixturevalue(endpoint)
    broken = RecommendationStore(dynamodb.Table(local_aws.feedback_table), store_text=True, retention_days=1)
    monkeypatch.setattr(service, "get_store", lambda: broken)
    song_id = recommendation["songs"][0]["song_id"]
    started = time.perf_counter()
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": song_id, "satisfied": True})
    elapsed = time.perf_counter() - started
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1" and "retry later" in answer.body["message"]
    assert elapsed < _feedback_timeout_s() - 1, elapsed
    if endpoint == "hung_dynamodb":
        assert "ReadTimeoutError" in answer.body["message"] and elapsed >= 1.0  # two 0.8 s read timeouts
    assert _item(local_aws, rid) == before


@pytest.mark.parametrize("table", ["missing", "songs"])  # ResourceNotFoundException, ValidationException
def test_an_update_the_store_refuses_is_a_500_and_the_record_is_untouched(
    handlers, invoke, local_aws, recommendation, monkeypatch, table
) -> None:
    rid = recommendation["recommendation_id"]
    before = _item(local_aws, rid)
    name = "moodtune-missing" if table == "missing" else local_aws.songs_table
    refusing = RecommendationStore(service.dynamodb().Table(name), store_text=True, retention_days=1)
    monkeypatch.setattr(service, "get_store", lambda: refusing)
    song_id = recommendation["songs"][0]["song_id"]
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": song_id, "satisfied": True})
    assert answer.status == 500
    assert answer.body == {"message": "internal error"} and "retry-after" not in answer.headers
    assert _item(local_aws, rid) == before


def _stored_record(local_aws, *, created: datetime, with_expiry: bool = True) -> str:
    store = RecommendationStore(
        local_aws.resource().Table(local_aws.feedback_table), store_text=False, retention_days=1
    )
    record = RecommendationRecord(
        recommendation_id=new_recommendation_id(),
        created_at=created,
        model_version="demo-test",
        mode="distribution",
        dominant="joy",
        scores=dict.fromkeys(LABELS, 1 / 7),
        songs=[RecommendedSongRecord("t01", 0.9, "joy")],
    )
    item = store.to_item(record)
    if not with_expiry:
        del item["expires_at"]
    store.table.put_item(Item=item)
    return record.recommendation_id


def test_feedback_on_an_expired_record_is_404_even_before_ttl_deletes_it(handlers, invoke, local_aws) -> None:
    expired = _stored_record(local_aws, created=datetime.now(UTC) - timedelta(days=2))  # 1-day retention
    before = _item(local_aws, expired)
    assert before["expires_at"] < int(time.time())  # still there: DynamoDB's TTL deletes within days
    answer = invoke(handlers.feedback, "POST", _path(expired), {"song_id": "t01", "satisfied": True})
    assert answer.status == 404 and answer.body == {"message": f"no recommendation {expired!r}"}
    assert _item(local_aws, expired) == before
    # Even for a song it never listed: an expired record is not there at all (404, not 422).
    assert (
        invoke(handlers.feedback, "POST", _path(expired), {"song_id": "zz", "satisfied": True}).status == 404
    )

    live = _stored_record(local_aws, created=datetime.now(UTC) - timedelta(hours=23))
    assert invoke(handlers.feedback, "POST", _path(live), {"song_id": "t01", "satisfied": True}).status == 200


def test_a_record_without_expires_at_never_expires(handlers, invoke, local_aws) -> None:
    """As DynamoDB's TTL treats it: an item without the TTL attribute is kept for good."""
    rid = _stored_record(local_aws, created=datetime.now(UTC) - timedelta(days=400), with_expiry=False)
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": "t01", "satisfied": False})
    assert answer.status == 200
    assert _item(local_aws, rid)["feedback"]["t01"]["satisfied"] is False


def test_feedback_metric_has_satisfied_and_model_version(handlers, invoke, recommendation, capsys) -> None:
    capsys.readouterr()
    song_id = recommendation["songs"][0]["song_id"]
    invoke(
        handlers.feedback,
        "POST",
        _path(recommendation["recommendation_id"]),
        {"song_id": song_id, "satisfied": False},
    )
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(emf) == 1
    assert emf[0]["Feedback"] == [1.0]
    assert emf[0]["satisfied"] == "false"
    assert emf[0]["model_version"] == recommendation["model_version"]
    assert sorted(emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == [
        "model_version",
        "satisfied",
        "service",
    ]


@pytest.mark.parametrize("rid", ["\ud800", "a\udfffb", 'a"b', "가" * 65])
def test_a_recommendation_id_that_cannot_exist_never_reaches_dynamodb(handlers, invoke, rid) -> None:
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": "t01", "satisfied": True})
    assert answer.status in (400, 404), answer.body  # no route, or too long: a clear 4xx, never a 500
    assert json.dumps(answer.body)
