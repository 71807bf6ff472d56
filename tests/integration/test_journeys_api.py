"""POST /v1/journeys end to end (API Gateway v2 events, DynamoDB over HTTP on a moto server), and the
recommendation options it shares: metric, artist spread, MMR."""

import itertools

import pytest

from moodtune.feedback.rows import build_row, entries_of
from moodtune.labels import LABELS

pytestmark = pytest.mark.integration


def _item(local_aws, recommendation_id: str) -> dict:
    table = local_aws.resource().Table(local_aws.feedback_table)
    return table.get_item(Key={"recommendation_id": recommendation_id}, ConsistentRead=True)["Item"]


@pytest.mark.parametrize("metric", ["cosine", "jensen_shannon"])
def test_a_journey_is_answered_stored_and_takes_feedback(handlers, invoke, local_aws, metric) -> None:
    body = {"text": "오늘 너무 슬퍼", "target": "joy", "length": 4, "metric": metric}
    answer = invoke(handlers.recommend, "POST", "/v1/journeys", body)
    assert answer.status == 201, answer.body
    journey = answer.body
    assert journey["metric"] == metric and journey["model_version"].startswith("demo-")
    assert journey["target"]["scores"] == {label: float(label == "joy") for label in LABELS}
    steps = journey["steps"]
    assert [s["step"] for s in steps] == list(range(len(steps))) and 1 <= len(steps) <= 4
    if journey["reachable"]:
        assert len(steps) == 4
    ids = [s["song"]["song_id"] for s in steps]
    artists = [s["song"]["artist"] for s in steps]
    assert len(set(ids)) == len(ids)
    assert all(a != b for a, b in itertools.pairwise(artists))
    assert steps[0]["waypoint"]["scores"] == pytest.approx(journey["emotion"]["scores"], abs=1e-5)
    plain = {"text": body["text"], "limit": 1, "metric": metric, "mmr_lambda": 1, "artist_spread": False}
    best = invoke(handlers.recommend, "POST", "/v1/recommendations", plain).body["songs"][0]
    assert steps[0]["similarity"] >= 0.9 * best["similarity"]
    assert "journey;dur=" in answer.headers["server-timing"]

    item = _item(local_aws, journey["journey_id"])
    assert item["kind"] == "journey" and item["metric"] == metric
    assert [(s["song_id"], int(s["step"])) for s in item["songs"]] == list(
        zip(ids, range(len(ids)), strict=True)
    )
    assert item["song_ids"] == set(ids) and float(item["target"]["joy"]) == 1.0

    # journey_id is a recommendation id: the feedback route takes it, and the export row says so
    path = f"/v1/recommendations/{journey['journey_id']}/feedback"
    liked = invoke(handlers.feedback, "POST", path, {"song_id": ids[-1], "satisfied": True})
    assert liked.status == 200, liked.body
    assert invoke(handlers.feedback, "POST", path, {"song_id": "zz", "satisfied": True}).status == 422
    rows = [
        build_row(_item(local_aws, journey["journey_id"]), s, e)
        for s, e in entries_of(_item(local_aws, journey["journey_id"]))
    ]
    assert [(r.kind, r.step, r.song_id) for r in rows] == [("journey", len(ids) - 1, ids[-1])]


def test_a_label_target_equal_to_the_mood_is_a_stay_journey(handlers, invoke) -> None:
    emotion = invoke(handlers.recommend, "POST", "/v1/emotions", {"text": "오늘 너무 슬퍼"}).body
    answer = invoke(
        handlers.recommend,
        "POST",
        "/v1/journeys",
        {"text": "오늘 너무 슬퍼", "target_scores": {emotion["dominant"]: 1.0}, "length": 3},
    )
    assert answer.status == 201 and answer.body["stay"] is True


def test_plain_recommendations_spread_artists_by_default(handlers, invoke, scored_catalog) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "기분 좋아", "limit": 4})
    assert answer.status == 201 and answer.body["metric"] == "cosine"
    artists = [s["artist"] for s in answer.body["songs"]]
    assert len(artists) == 4 and len(set(artists)) == len({s.artist for s in scored_catalog})
    js = invoke(
        handlers.recommend, "POST", "/v1/recommendations", {"text": "기분 좋아", "metric": "jensen_shannon"}
    )
    assert js.status == 201 and js.body["metric"] == "jensen_shannon"
    assert all(0 <= s["similarity"] <= 1 for s in js.body["songs"])


GOOD = {"text": "오늘 너무 슬퍼", "target": "joy", "length": 3}


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        ({**GOOD, "target": "happy"}, 400, "target", "unknown emotion 'happy'"),
        ({**GOOD, "target": {"happy": 1.0}}, 400, "target", "unknown emotion 'happy'"),
        ({**GOOD, "target": {"joy": -0.2, "neutral": 1.2}}, 400, "target", "probability of joy is negative"),
        # JSON Schema cannot say "sums to 1": a document-valid mapping that does not is 422, not 400
        ({**GOOD, "target": {"joy": 0.5, "neutral": 0.3}}, 422, "target", "sum to 0.8000, not 1"),
        ({**GOOD, "target": {"joy": 0.5, "neutral": 0.52}}, 422, "target", "sum to 1.0200, not 1"),
        ({"text": "오늘 너무 슬퍼", "target_scores": {}}, 422, "target_scores", "sum to 0.0000, not 1"),
        ({**GOOD, "target": 7}, 400, "target", "an emotion label or"),
        ({**GOOD, "target_scores": {"joy": 1}}, 400, None, "give the target one way"),
        ({"text": "슬퍼"}, 400, None, "target is required"),
        ({**GOOD, "length": 2}, 400, "length", "greater than or equal to 3"),
        ({**GOOD, "length": 13}, 400, "length", "less than or equal to 12"),
        ({**GOOD, "length": "6"}, 400, "length", "valid integer"),
        ({**GOOD, "metric": "euclid"}, 400, "metric", "Input should be"),
        ({**GOOD, "limit": 3}, 400, "limit", "Extra inputs are not permitted"),
        ({**GOOD, "length": 12}, 422, "length", "the catalog has 8 songs"),
        (
            {**GOOD, "exclude": ["t01", "t02", "t03", "t04", "t05", "t06"]},
            422,
            "exclude",
            "exclude leaves 2 songs",
        ),
    ],
)
def test_bad_journeys_get_a_4xx_naming_the_field(handlers, invoke, body, status, field, message) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/journeys", body)
    assert answer.status == status, answer.body
    assert message in answer.body["message"], answer.body
    if field is not None:
        assert answer.body["errors"][0]["loc"] == ["body", field]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "a", "metric": "l1"}, "metric: Input should be"),
        ({"text": "a", "mmr_lambda": -0.1}, "mmr_lambda: Input should be greater than or equal to 0"),
        ({"text": "a", "mmr_lambda": "0.5"}, "mmr_lambda"),
        ({"text": "a", "artist_spread": 1}, "artist_spread: Input should be a valid boolean"),
    ],
)
def test_bad_recommendation_options_are_a_400(handlers, invoke, body, message) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", body)
    assert answer.status == 400 and message in answer.body["message"], answer.body
