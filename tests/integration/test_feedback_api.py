"""FeedbackFunction end to end: the conditional update of a stored recommendation over the local endpoint."""

import json
from datetime import UTC, datetime

import pytest
from boto3.dynamodb.conditions import Key

from moodtune import service
from moodtune.records import RecommendationStore

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


def test_store_failure_is_503_with_retry_after_and_the_record_is_untouched(
    handlers, invoke, local_aws, recommendation, monkeypatch
) -> None:
    rid = recommendation["recommendation_id"]
    before = _item(local_aws, rid)
    broken = RecommendationStore(
        service.dynamodb().Table("moodtune-missing"), store_text=True, retention_days=1
    )
    monkeypatch.setattr(service, "get_store", lambda: broken)
    song_id = recommendation["songs"][0]["song_id"]
    answer = invoke(handlers.feedback, "POST", _path(rid), {"song_id": song_id, "satisfied": True})
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1" and "retry later" in answer.body["message"]
    assert _item(local_aws, rid) == before


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
