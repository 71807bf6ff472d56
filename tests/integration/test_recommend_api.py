"""RecommendFunction end to end: API Gateway v2 events in, answers out, DynamoDB over HTTP (moto server)."""

import io
import json
import random
import re

import pytest

from moodtune import service
from moodtune.labels import LABELS
from moodtune.records import RecommendationStore

pytestmark = pytest.mark.integration

SECRET_TEXT = "아무도 모르는 내 비밀 일기 오늘 정말 슬펐어"


def _feedback_items(local_aws) -> dict[str, dict]:
    table = local_aws.resource().Table(local_aws.feedback_table)
    return {item["recommendation_id"]: item for item in table.scan(ConsistentRead=True)["Items"]}


def test_recommendation_is_answered_and_stored(handlers, invoke, local_aws, scored_catalog) -> None:
    answer = invoke(
        handlers.recommend, "POST", "/v1/recommendations", {"text": " 오늘  너무 슬퍼 ", "limit": 3}
    )
    assert answer.status == 201
    body = answer.body
    assert body["mode"] == "distribution" and body["model_version"].startswith("demo-")
    assert set(body["emotion"]["scores"]) == set(LABELS)
    assert sum(body["emotion"]["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert body["emotion"]["dominant"] == max(body["emotion"]["scores"], key=body["emotion"]["scores"].get)
    songs = body["songs"]
    assert len(songs) == 3
    assert [s["similarity"] for s in songs] == sorted((s["similarity"] for s in songs), reverse=True)
    known = {s.song_id: s for s in scored_catalog}
    for song in songs:
        assert song["title"] == known[song["song_id"]].title
        assert song["dominant"] == known[song["song_id"]].dominant
        assert set(song["explanation"]) == {"song_top", "text_top", "shared"}
    assert re.fullmatch(
        r"tokenize;dur=[\d.]+, inference;dur=[\d.]+, similarity;dur=[\d.]+, write;dur=[\d.]+",
        answer.headers["server-timing"],
    )

    item = _feedback_items(local_aws)[body["recommendation_id"]]
    assert item["text"] == "오늘 너무 슬퍼"  # normalised text, kept because STORE_TEXT defaults to true
    assert item["song_ids"] == {s["song_id"] for s in songs}
    assert [s["song_id"] for s in item["songs"]] == [s["song_id"] for s in songs]
    assert item["model_version"] == body["model_version"] and item["mode"] == "distribution"
    assert item["feedback"] == {} and "feedback_day" not in item
    assert int(item["expires_at"]) > 0


def test_every_song_is_ranked_and_exclude_is_respected(handlers, invoke, scored_catalog) -> None:
    everything = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "기분 좋아", "limit": 20})
    ranked = [s["song_id"] for s in everything.body["songs"]]
    assert sorted(ranked) == sorted(s.song_id for s in scored_catalog)
    answer = invoke(
        handlers.recommend,
        "POST",
        "/v1/recommendations",
        {"text": "기분 좋아", "exclude": ranked[:2], "limit": 2},
    )
    assert [s["song_id"] for s in answer.body["songs"]] == ranked[2:4]


def test_dominant_mode_only_offers_songs_of_the_texts_top_emotion(handlers, invoke, scored_catalog) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "무서워", "mode": "dominant"})
    assert answer.status == 201
    dominant = answer.body["emotion"]["dominant"]
    expected = {s.song_id for s in scored_catalog if s.dominant == dominant}
    assert {s["song_id"] for s in answer.body["songs"]} <= expected
    assert len(answer.body["songs"]) == min(5, len(expected))


def test_text_is_not_stored_when_store_text_is_off(handlers, invoke, local_aws, monkeypatch) -> None:
    recommend_service = service.get_recommend_service()
    private = RecommendationStore(recommend_service.store.table, store_text=False, retention_days=1)
    monkeypatch.setattr(recommend_service, "store", private)
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "비밀로 해줘"})
    table = local_aws.resource().Table(local_aws.feedback_table)
    item = table.get_item(Key={"recommendation_id": answer.body["recommendation_id"]})["Item"]
    assert "text" not in item and item["dominant"] == answer.body["emotion"]["dominant"]


def test_emotions(handlers, invoke, demo_classifier) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/emotions", {"text": "정말 화가 나"})
    assert answer.status == 200
    expected = demo_classifier.predict(["정말 화가 나"])[0]
    assert [answer.body["scores"][label] for label in LABELS] == pytest.approx(expected.tolist(), abs=1e-5)
    assert answer.body["dominant"] == LABELS[int(expected.argmax())]
    assert answer.body["model_version"] == demo_classifier.model_version


def test_song_lookup_and_health(handlers, invoke, scored_catalog) -> None:
    song = scored_catalog[0]
    answer = invoke(handlers.recommend, "GET", f"/v1/songs/{song.song_id}")
    assert answer.status == 200
    assert (answer.body["title"], answer.body["chunks"], answer.body["dominant"]) == (
        song.title,
        song.chunks,
        song.dominant,
    )
    missing = invoke(handlers.recommend, "GET", "/v1/songs/no-such-song")
    assert missing.status == 404 and "no-such-song" in missing.body["message"]
    health = invoke(handlers.recommend, "GET", "/v1/health")
    assert health.status == 200
    assert health.body == {
        "status": "ok",
        "model_version": answer.body["model_version"],
        "catalog_size": len(scored_catalog),
    }


def test_openapi_documents_every_route_and_status(handlers, invoke) -> None:
    answer = invoke(handlers.recommend, "GET", "/v1/openapi.json")
    assert answer.status == 200
    paths = answer.body["paths"]
    expected = {
        ("/v1/recommendations", "post"): {"201", "400", "413", "415", "503"},
        ("/v1/emotions", "post"): {"200", "400", "413", "415"},
        ("/v1/songs/{song_id}", "get"): {"200", "400", "404", "503"},
        ("/v1/health", "get"): {"200", "503"},
        ("/v1/recommendations/{recommendation_id}/feedback", "post"): {
            "200",
            "400",
            "404",
            "413",
            "415",
            "422",
            "503",
        },
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (path, method)
    text_schema = answer.body["components"]["schemas"]["RecommendationRequest"]["properties"]["text"]
    assert (text_schema["minLength"], text_schema["maxLength"]) == (1, 500)
    assert "HTTPValidationError" not in answer.body["components"]["schemas"]  # validation errors are 400


TOO_BIG = json.dumps({"text": "가" * 6000})  # 18 KB of UTF-8


@pytest.mark.parametrize(
    ("method", "path", "body", "kwargs", "status", "message"),
    [
        ("POST", "/v1/recommendations", "{not json", {}, 400, "not valid JSON"),
        ("POST", "/v1/recommendations", b'{"text": "\xff\xfe"}', {}, 400, "not valid UTF-8"),
        ("POST", "/v1/recommendations", "", {}, 400, "request body is required"),
        ("POST", "/v1/recommendations", "[1, 2]", {}, 400, "valid dictionary"),
        ("POST", "/v1/recommendations", "[" * 3000 + "]" * 3000, {}, 400, "nested too deeply"),
        ("POST", "/v1/recommendations", {"limit": 3}, {}, 400, "text: Field required"),
        ("POST", "/v1/recommendations", {"text": 5}, {}, 400, "text: Input should be a valid string"),
        ("POST", "/v1/recommendations", {"text": "   "}, {}, 400, "text is empty after trimming"),
        ("POST", "/v1/recommendations", {"text": "가" * 501}, {}, 400, "longer than 500 characters"),
        ("POST", "/v1/recommendations", {"text": "a", "limit": 0}, {}, 400, "limit: Input should be greater"),
        ("POST", "/v1/recommendations", {"text": "a", "limit": 21}, {}, 400, "limit: Input should be less"),
        (
            "POST",
            "/v1/recommendations",
            {"text": "a", "limit": "3"},
            {},
            400,
            "limit: Input should be a valid integer",
        ),
        ("POST", "/v1/recommendations", {"text": "a", "mode": "vibes"}, {}, 400, "mode: Input should be"),
        (
            "POST",
            "/v1/recommendations",
            {"text": "a", "exclude": ["s"] * 51},
            {},
            400,
            "exclude: List should have at most 50",
        ),
        (
            "POST",
            "/v1/recommendations",
            {"text": "a", "colour": "blue"},
            {},
            400,
            "colour: Extra inputs are not permitted",
        ),
        ("POST", "/v1/recommendations", TOO_BIG, {}, 413, "the limit is 16384"),
        (
            "POST",
            "/v1/recommendations",
            {"text": "a"},
            {"headers": {"content-type": "text/plain"}},
            415,
            "'text/plain'",
        ),
        (
            "POST",
            "/v1/recommendations",
            "text=a",
            {"headers": {"content-type": "application/x-www-form-urlencoded"}},
            415,
            "is not application/json",
        ),
        ("POST", "/v1/emotions", {"text": ""}, {}, 400, "text is empty"),
        ("POST", "/v1/emotions", '{"text": "\\ud800"}', {}, 400, "invalid Unicode"),
        ("GET", "/v1/recommendations", None, {}, 405, "method GET is not allowed"),
        ("DELETE", "/v1/songs/t01", None, {}, 405, "method DELETE is not allowed"),
        ("GET", "/v1/nothing-here", None, {}, 404, "no route GET /v1/nothing-here"),
        (
            "POST",
            "/v1/recommendations",
            "not base64!",
            {"base64_body": False, "headers": {}},
            400,
            "not valid JSON",
        ),
    ],
)
def test_bad_requests_get_a_clear_4xx(handlers, invoke, method, path, body, kwargs, status, message) -> None:
    answer = invoke(handlers.recommend, method, path, body, **kwargs)
    assert answer.status == status, answer.body
    assert message in answer.body["message"], answer.body
    assert set(answer.body) <= {"message", "errors"}
    if status == 405:
        assert answer.headers["allow"]


def test_an_invalid_base64_body_is_a_400(handlers, http_event, lambda_context) -> None:
    event = http_event("POST", "/v1/recommendations", None)
    event.update(body="%%%not-base64", isBase64Encoded=True)
    answer = handlers.recommend.lambda_handler(event, lambda_context)
    assert answer["statusCode"] == 400 and "base64" in json.loads(answer["body"])["message"]


def test_a_failed_record_write_is_a_503_with_retry_after_and_leaves_nothing(
    handlers, invoke, local_aws, monkeypatch
) -> None:
    recommend_service = service.get_recommend_service()
    missing_table = service.dynamodb().Table("moodtune-no-such-table")
    monkeypatch.setattr(
        recommend_service, "store", RecommendationStore(missing_table, store_text=True, retention_days=1)
    )
    before = set(_feedback_items(local_aws))
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 기분이 좋아"})
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1"
    assert "retry later" in answer.body["message"]
    assert set(_feedback_items(local_aws)) == before


def test_logs_carry_the_correlation_id_and_never_the_text(handlers, invoke, capsys, caplog) -> None:
    stream = io.StringIO()
    powertools_handler = handlers.recommend.logger.registered_handler
    previous = powertools_handler.setStream(stream)
    try:
        answer = invoke(
            handlers.recommend,
            "POST",
            "/v1/recommendations",
            {"text": SECRET_TEXT},
            request_id="req-correlate-42",
        )
        bad = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": SECRET_TEXT * 30})
    finally:
        powertools_handler.setStream(previous)
    assert answer.status == 201
    assert bad.status == 400 and SECRET_TEXT not in json.dumps(bad.body, ensure_ascii=False)
    out = capsys.readouterr()
    logged = stream.getvalue() + out.out + out.err + caplog.text
    assert SECRET_TEXT not in logged and "비밀 일기" not in logged
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    made = [r for r in records if r["message"] == "recommendation made"]
    assert len(made) == 1 and made[0]["correlation_id"] == "req-correlate-42"
    assert made[0]["recommendation_id"] == answer.body["recommendation_id"]


def test_metrics_are_emitted_as_emf(handlers, invoke, capsys) -> None:
    invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "신나는 하루"})
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(emf) == 1
    metric = emf[0]
    names = {m["Name"] for m in metric["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"Recommendations", "ClassifierLatency"}
    assert metric["Recommendations"] == [1.0] and metric["ClassifierLatency"][0] > 0
    assert metric["model_version"].startswith("demo-")
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MoodTune"


def test_an_unreadable_catalog_is_a_503_not_a_crash(handlers, invoke, monkeypatch) -> None:
    from moodtune.catalog import CatalogCache, load_catalog

    recommend_service = service.get_recommend_service()
    missing_songs = service.dynamodb().Table("moodtune-songs-missing")
    cold = CatalogCache(lambda: load_catalog(missing_songs, recommend_service.model_version), 300)
    monkeypatch.setattr(recommend_service, "catalogs", cold)
    for method, path, body in [
        ("GET", "/v1/health", None),
        ("GET", "/v1/songs/t01", None),
        ("POST", "/v1/recommendations", {"text": "괜찮아"}),
    ]:
        answer = invoke(handlers.recommend, method, path, body)
        assert answer.status == 503, (path, answer.body)
        assert answer.headers["retry-after"] == "1" and "catalog is unavailable" in answer.body["message"]


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kinds = ["int", "float", "str", "bool", "none", "list", "dict", "special"]
    kind = rng.choice(kinds if depth < 3 else kinds[:5])
    if kind == "int":
        return rng.choice([0, -1, 1, 5, 20, 21, 2**63, -(2**70), 10**400])
    if kind == "float":
        return rng.choice([0.5, -0.0, 1e308, float("nan"), float("inf"), 5.0])
    if kind == "str":
        return rng.choice(
            ["", " ", "슬퍼", "ㅋㅋㅋ", "\u0000", "\ud800", "가" * 600, "dominant", "<script>", "😀" * 3]
        )
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 60))]
    if kind == "dict":
        return {rng.choice(["text", "limit", "x", ""]): _random_value(rng, depth + 1) for _ in range(3)}
    return rng.choice([{"text": "좋아", "limit": 3}, {"text": "좋아", "mode": "dominant", "exclude": []}])


def test_no_input_gets_a_5xx(handlers, invoke) -> None:
    """A seeded fuzz over bodies, encodings and content types for every POST route."""
    rng = random.Random(20261125)
    fields = ["text", "limit", "mode", "exclude", "song_id", "satisfied", "extra"]
    statuses = set()
    for _ in range(150):
        shape = rng.random()
        if shape < 0.6:
            body: object = {rng.choice(fields): _random_value(rng) for _ in range(rng.randint(0, 4))}
            raw = json.dumps(body, ensure_ascii=rng.random() < 0.5, allow_nan=True)
        elif shape < 0.8:
            raw = json.dumps(_random_value(rng), allow_nan=True)
        else:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        headers = {
            "content-type": rng.choice(["application/json", "application/json; charset=utf-8", "text/plain"])
        }
        module, path = rng.choice(
            [
                (handlers.recommend, "/v1/recommendations"),
                (handlers.recommend, "/v1/emotions"),
                (handlers.feedback, "/v1/recommendations/abc/feedback"),
            ]
        )
        answer = invoke(module, "POST", path, raw, headers=headers)
        assert answer.status < 500, (path, raw, answer.body)
        assert isinstance(answer.body.get("message", ""), str)
        statuses.add(answer.status)
    assert {400, 415} <= statuses
