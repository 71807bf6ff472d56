"""RecommendFunction end to end: API Gateway v2 events in, answers out, DynamoDB over HTTP (moto server)."""

import io
import json
import random
import re

import pytest

from moodtune import service
from moodtune.feedback.records import RecommendationStore
from moodtune.labels import LABELS

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


def test_an_empty_catalog_is_healthy_but_degraded(handlers, invoke, local_aws, monkeypatch) -> None:
    from moodtune.catalog import CatalogCache, load_catalog

    recommend_service = service.get_recommend_service()
    songs = service.dynamodb().Table(local_aws.songs_table)
    # The real SongsTable over HTTP, read for a model version that has no songs.
    empty = CatalogCache(lambda: load_catalog(songs, "no-such-model-version"), 300)
    monkeypatch.setattr(recommend_service, "catalogs", empty)
    health = invoke(handlers.recommend, "GET", "/v1/health")
    assert health.status == 200, health.body
    assert health.body["status"] == "degraded" and health.body["catalog_size"] == 0
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 기분 좋아"})
    assert answer.status == 201 and answer.body["songs"] == []
    assert invoke(handlers.recommend, "GET", "/v1/songs/t01").status == 404


def test_the_catalog_is_prepared_for_the_metric_at_init(handlers, monkeypatch) -> None:
    fresh = service.get_recommend_service.__wrapped__()  # a new service, as a cold start builds it
    monkeypatch.setattr(service, "get_recommend_service", lambda: fresh)
    service.warm_recommend()
    catalog = fresh.catalogs._catalog
    assert catalog is not None and len(catalog) > 0
    assert "cosine" in catalog._prepared  # before any request asked for it


def test_openapi_documents_every_route_and_status(handlers, invoke) -> None:
    answer = invoke(handlers.recommend, "GET", "/v1/openapi.json")
    assert answer.status == 200
    paths = answer.body["paths"]
    assert set(paths) == {
        "/v1/recommendations",
        "/v1/emotions",
        "/v1/songs/{song_id}",
        "/v1/health",
        "/v1/openapi.json",
        "/v1/recommendations/{recommendation_id}/feedback",
    }
    created = paths["/v1/recommendations"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"] == {"$ref": "#/components/schemas/RecommendationResponse"}
    text_schema = answer.body["components"]["schemas"]["RecommendationRequest"]["properties"]["text"]
    assert (text_schema["minLength"], text_schema["maxLength"]) == (1, 500)
    assert "HTTPValidationError" not in answer.body["components"]["schemas"]  # validation errors are 400
    assert "405" in answer.body["info"]["description"]  # answered for no operation, so said here
    assert _dangling_refs(answer.body) == []


def _dangling_refs(document: dict) -> list[str]:
    schemas = document.get("components", {}).get("schemas", {})
    refs, pending = [], [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return [ref for ref in refs if ref.removeprefix("#/components/schemas/") not in schemas]


def test_the_openapi_document_is_valid_openapi(handlers, invoke) -> None:
    from openapi_spec_validator import validate

    validate(invoke(handlers.recommend, "GET", "/v1/openapi.json").body)


def _recommendation_id(handlers, invoke) -> tuple[str, str]:
    made = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "비 오는 날", "limit": 1})
    return made.body["recommendation_id"], made.body["songs"][0]["song_id"]


def test_the_openapi_statuses_are_exactly_what_the_handlers_answer(
    handlers, invoke, local_aws, monkeypatch, unreachable_dynamodb
) -> None:
    """Every status each operation documents is produced here by a real request, and every status
    these requests produce is documented: the document and the handlers cannot drift apart."""
    from moodtune.catalog import CatalogCache, load_catalog

    recommend_service = service.get_recommend_service()
    version = recommend_service.model_version
    rid, song_id = _recommendation_id(handlers, invoke)
    feedback_path = f"/v1/recommendations/{rid}/feedback"

    def store_on(table) -> RecommendationStore:
        return RecommendationStore(table, store_text=True, retention_days=1)

    def catalog_on(table) -> CatalogCache:
        return CatalogCache(lambda: load_catalog(table, version), 300)

    def boom(*_args, **_kwargs):
        raise RuntimeError("a bug")

    unreachable = unreachable_dynamodb.Table("moodtune-anything")
    missing = service.dynamodb().Table("moodtune-no-such-table")
    big = json.dumps({"text": "가" * 6000})
    good = {"text": "오늘 좋았어"}
    english = {"text": "I am so happy today"}
    good_feedback = {"song_id": song_id, "satisfied": True}
    plain = {"headers": {"content-type": "text/plain"}}
    # (operation, patch: (object, attribute, value) or None, module, method, path, body, kwargs)
    scenarios = [
        ("POST /v1/recommendations", None, "recommend", "POST", "/v1/recommendations", good, {}),
        ("POST /v1/recommendations", None, "recommend", "POST", "/v1/recommendations", "{", {}),
        ("POST /v1/recommendations", None, "recommend", "POST", "/v1/recommendations", big, {}),
        ("POST /v1/recommendations", None, "recommend", "POST", "/v1/recommendations", good, plain),
        (
            "POST /v1/recommendations",
            (recommend_service, "store", store_on(unreachable)),
            "recommend",
            "POST",
            "/v1/recommendations",
            good,
            {},
        ),
        (
            "POST /v1/recommendations",
            (recommend_service, "store", store_on(missing)),
            "recommend",
            "POST",
            "/v1/recommendations",
            good,
            {},
        ),
        ("POST /v1/recommendations", None, "recommend", "POST", "/v1/recommendations", english, {}),
        ("POST /v1/emotions", None, "recommend", "POST", "/v1/emotions", good, {}),
        ("POST /v1/emotions", None, "recommend", "POST", "/v1/emotions", english, {}),
        ("POST /v1/emotions", None, "recommend", "POST", "/v1/emotions", {"text": 1}, {}),
        ("POST /v1/emotions", None, "recommend", "POST", "/v1/emotions", big, {}),
        ("POST /v1/emotions", None, "recommend", "POST", "/v1/emotions", good, plain),
        (
            "POST /v1/emotions",
            (recommend_service, "classify", boom),
            "recommend",
            "POST",
            "/v1/emotions",
            good,
            {},
        ),
        ("GET /v1/songs/{song_id}", None, "recommend", "GET", "/v1/songs/t01", None, {}),
        ("GET /v1/songs/{song_id}", None, "recommend", "GET", "/v1/songs/" + "x" * 129, None, {}),
        ("GET /v1/songs/{song_id}", None, "recommend", "GET", "/v1/songs/nope", None, {}),
        (
            "GET /v1/songs/{song_id}",
            (recommend_service, "catalogs", catalog_on(unreachable)),
            "recommend",
            "GET",
            "/v1/songs/t01",
            None,
            {},
        ),
        (
            "GET /v1/songs/{song_id}",
            (recommend_service, "catalogs", catalog_on(missing)),
            "recommend",
            "GET",
            "/v1/songs/t01",
            None,
            {},
        ),
        ("GET /v1/health", None, "recommend", "GET", "/v1/health", None, {}),
        (
            "GET /v1/health",
            (recommend_service, "catalogs", catalog_on(unreachable)),
            "recommend",
            "GET",
            "/v1/health",
            None,
            {},
        ),
        (
            "GET /v1/health",
            (recommend_service, "catalogs", catalog_on(missing)),
            "recommend",
            "GET",
            "/v1/health",
            None,
            {},
        ),
        ("GET /v1/openapi.json", None, "recommend", "GET", "/v1/openapi.json", None, {}),
        (
            "GET /v1/openapi.json",
            (handlers.recommend, "openapi_document", boom),
            "recommend",
            "GET",
            "/v1/openapi.json",
            None,
            {},
        ),
    ]
    feedback = "POST /v1/recommendations/{recommendation_id}/feedback"
    scenarios += [
        (feedback, None, "feedback", "POST", feedback_path, good_feedback, {}),
        (feedback, None, "feedback", "POST", feedback_path, {"song_id": song_id}, {}),
        (feedback, None, "feedback", "POST", "/v1/recommendations/nope/feedback", good_feedback, {}),
        (feedback, None, "feedback", "POST", feedback_path, json.dumps({"song_id": "x" * 20000}), {}),
        (feedback, None, "feedback", "POST", feedback_path, good_feedback, plain),
        (feedback, None, "feedback", "POST", feedback_path, {"song_id": "zz", "satisfied": True}, {}),
        (
            feedback,
            (service, "get_store", lambda: store_on(unreachable)),
            "feedback",
            "POST",
            feedback_path,
            good_feedback,
            {},
        ),
        (
            feedback,
            (service, "get_store", lambda: store_on(missing)),
            "feedback",
            "POST",
            feedback_path,
            good_feedback,
            {},
        ),
    ]
    answered: dict[str, set[str]] = {}
    for operation, patch, module, method, path, body, kwargs in scenarios:
        with monkeypatch.context() as m:
            if patch is not None:
                m.setattr(*patch)
            answer = invoke(getattr(handlers, module), method, path, body, **kwargs)
        answered.setdefault(operation, set()).add(str(answer.status))

    document = invoke(handlers.recommend, "GET", "/v1/openapi.json").body
    # 429 is the HTTP API's route throttling, answered before any function runs (the local front's
    # throttle: tests/unit/infra/test_front_limits.py); every route documents it.
    documented = {
        f"{method.upper()} {path}": set(operation["responses"]) - {"429"}
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert all(
        "429" in operation["responses"] for ops in document["paths"].values() for operation in ops.values()
    )
    assert answered == documented


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
        (
            "POST",
            "/v1/recommendations",
            '{"text": "a", "limit": ' + "7" * 5000 + "}",
            {},
            400,
            "a number has more than 4300 digits",
        ),
        ("POST", "/v1/emotions", '{"text": "a", "x": -' + "1" * 4301 + "}", {}, 400, "more than 4300 digits"),
        (
            "POST",
            "/v1/recommendations",
            '{"text": "a", "\\ud800": 1}',  # a key with a lone surrogate: refused, and quoted safely
            {},
            400,
            "unable to parse raw data as a unicode string",
        ),
        (
            "POST",
            "/v1/recommendations",
            '{"text": "a", "exclude": ["\\ud800"]}',
            {},
            400,
            "exclude.0: contains invalid Unicode",
        ),
        ("POST", "/v1/emotions", {"text": ""}, {}, 400, "text is empty"),
        ("POST", "/v1/emotions", '{"text": "\\ud800"}', {}, 400, "invalid Unicode"),
        ("GET", "/v1/recommendations", None, {}, 405, "method GET is not allowed"),
        ("DELETE", "/v1/songs/t01", None, {}, 405, "method DELETE is not allowed"),
        ("GET", "/v1/nothing-here", None, {}, 404, "no route GET /v1/nothing-here"),
        # Characters Powertools' router never matches in a path parameter: no route, not a false 405.
        ("GET", '/v1/songs/a"b', None, {}, 404, "no route GET"),
        ("GET", "/v1/songs/\ud800", None, {}, 404, "no route GET /v1/songs/?"),
        ("GET", "/v1/nothing/\udcff", None, {}, 404, "no route GET /v1/nothing/?"),
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


def test_an_unreachable_store_is_a_503_with_retry_after_and_leaves_nothing(
    handlers, invoke, local_aws, monkeypatch, unreachable_dynamodb
) -> None:
    recommend_service = service.get_recommend_service()
    table = unreachable_dynamodb.Table(local_aws.feedback_table)
    monkeypatch.setattr(
        recommend_service, "store", RecommendationStore(table, store_text=True, retention_days=1)
    )
    before = set(_feedback_items(local_aws))
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 기분이 좋아"})
    assert answer.status == 503
    assert answer.headers["retry-after"] == "1"
    assert "retry later" in answer.body["message"] and "EndpointConnectionError" in answer.body["message"]
    assert set(_feedback_items(local_aws)) == before


@pytest.mark.parametrize("table", ["missing", "songs"])  # ResourceNotFoundException, ValidationException
def test_a_write_the_store_refuses_is_a_500_not_a_503(
    handlers, invoke, local_aws, monkeypatch, table
) -> None:
    """No retry clears these (no such table; an item that does not fit the key schema): 503 with
    Retry-After would send clients into a loop. User input never gets here: it is validated first."""
    name = "moodtune-no-such-table" if table == "missing" else local_aws.songs_table
    recommend_service = service.get_recommend_service()
    store = RecommendationStore(service.dynamodb().Table(name), store_text=True, retention_days=1)
    monkeypatch.setattr(recommend_service, "store", store)
    before = set(_feedback_items(local_aws))
    answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 기분이 좋아"})
    assert answer.status == 500, answer.body
    assert answer.body == {"message": "internal error"} and "retry-after" not in answer.headers
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


def test_an_unreachable_catalog_is_a_503_and_a_missing_one_a_500(
    handlers, invoke, monkeypatch, unreachable_dynamodb
) -> None:
    from moodtune.catalog import CatalogCache, load_catalog

    recommend_service = service.get_recommend_service()
    version = recommend_service.model_version
    for table, status in [
        (unreachable_dynamodb.Table("moodtune-songs"), 503),
        (service.dynamodb().Table("moodtune-songs-missing"), 500),
    ]:
        cold = CatalogCache(lambda table=table: load_catalog(table, version), 300)
        monkeypatch.setattr(recommend_service, "catalogs", cold)
        for method, path, body in [
            ("GET", "/v1/health", None),
            ("GET", "/v1/songs/t01", None),
            ("POST", "/v1/recommendations", {"text": "괜찮아"}),
        ]:
            answer = invoke(handlers.recommend, method, path, body)
            assert answer.status == status, (path, answer.body)
            if status == 503:
                assert answer.headers["retry-after"] == "1"
                assert "song catalog is unavailable" in answer.body["message"]
            else:
                assert answer.body == {"message": "internal error"} and "retry-after" not in answer.headers


def test_a_get_body_is_never_read(handlers, invoke) -> None:
    for body in ["x" * 20_000, b"\xff\xfe", "{not json"]:
        answer = invoke(handlers.recommend, "GET", "/v1/health", body, headers={"content-type": "text/plain"})
        assert answer.status == 200, answer.body


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


def test_no_path_method_query_or_header_gets_a_5xx(handlers, http_event, lambda_context) -> None:
    """A seeded fuzz over paths (odd ids, encodings, surrogates), methods, query strings and headers."""
    rng = random.Random(20261201)
    pieces = [
        "t01",
        "가나다",
        "%EA%B0%80",
        "%ED%A0%80",
        "%00",
        "..",
        "%2e%2e",
        "a b",
        'a"b',
        "a\\b",
        "\ud800",
    ]
    pieces += ["x" * 300, "", "😀", "\u0000", "a;b", "{id}", "<script>", "a%2Fb", "\udfff\ud800"]
    templates = [
        "/v1/songs/{}",
        "/v1/recommendations/{}/feedback",
        "/v1/{}",
        "/v1/health",
        "/{}",
        "/v1/songs/{}/{}",
    ]
    queries = ["", "a=1", "limit=999&limit=1", "text=%ED%A0%80", "x=" + "y" * 3000, "=&&=", "\ud800=1"]
    statuses = set()
    for _ in range(250):
        template = rng.choice(templates)
        path = template.format(*(rng.choice(pieces) for _ in range(template.count("{}"))))
        method = rng.choice(["GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
        module = handlers.feedback if "feedback" in path else handlers.recommend
        body = rng.choice([None, "", '{"song_id": "t01", "satisfied": true}', '{"text": "좋아"}', "\ud800"])
        headers = {
            "content-type": rng.choice(["application/json", "text/plain", "", "application/json; x=\ud800"]),
            "x-odd": rng.choice(["", "가", "\ud800", "a" * 5000]),
        }
        event = http_event(method, path, body, headers=headers)
        query = rng.choice(queries)
        event["rawQueryString"] = query
        if query:
            event["queryStringParameters"] = dict(part.partition("=")[::2] for part in query.split("&"))
        answer = module.lambda_handler(event, lambda_context)
        assert answer["statusCode"] < 500, (method, path, body, query, answer["body"])
        assert isinstance(json.loads(answer["body"]), dict)
        statuses.add(answer["statusCode"])
    assert {200, 400, 404, 405} <= statuses


NOT_KOREAN = [
    "I am so happy today",
    "今日はとても楽しかった",
    "今天我很难过",
    "1234567890",
    "https://example.com/a?b=c",
    "asdfghjkl;",
    "ㅁㄴㅇㄹㅁㄴㅇㄹ",
    "?!?!...",
    "¯\\_(ツ)_/¯",
    "Ich bin so müde",
]


@pytest.mark.parametrize("text", NOT_KOREAN)
@pytest.mark.parametrize("path", ["/v1/emotions", "/v1/recommendations"])
def test_text_without_korean_is_422_not_a_confident_label(handlers, invoke, path, text) -> None:
    """moodtune reads Korean: text it cannot read gets a 422 that says so, on both routes, and no record."""
    answer = invoke(handlers.recommend, "POST", path, {"text": text})
    assert answer.status == 422, answer.body
    assert "Korean" in answer.body["message"]
    assert answer.body["errors"] == [
        {"loc": ["body", "text"], "type": "text_unreadable", "msg": answer.body["message"]}
    ]
    assert "recommendation_id" not in answer.body


@pytest.mark.parametrize(
    ("text", "dominant"), [("🙂", "joy"), ("😭😭", "sadness"), ("😡", "anger"), ("🤢", "disgust")]
)
def test_emoji_alone_are_read_through_the_lexicon(handlers, invoke, text, dominant) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/emotions", {"text": text})
    assert answer.status == 200, answer.body
    assert answer.body["dominant"] == dominant
    assert max(answer.body["scores"].values()) < 0.9  # a lone emoji says less than a sentence
    rec = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": text})
    assert rec.status == 201 and rec.body["emotion"]["dominant"] == dominant


def test_korean_with_foreign_words_is_still_read(handlers, invoke) -> None:
    answer = invoke(handlers.recommend, "POST", "/v1/emotions", {"text": "오늘 진짜 happy 했어 ㅋㅋ"})
    assert answer.status == 200
