"""The local front's API Gateway emulation: route matching, the v2 event it builds, the answers it maps."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from infra.local.front import (
    Front,
    FunctionSource,
    LocalFunction,
    Route,
    _path_pattern,
    build_event,
    load_routes,
    proxy_answer,
)

ROOT = Path(__file__).resolve().parents[3]


def route(method: str, path: str, function: str = "Fn") -> Route:
    return Route(method=method, path=path, function=function, pattern=_path_pattern(path))


def echo_front(result: Any = None, raises: bool = False) -> tuple[Front, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append(event)
        assert context.get_remaining_time_in_millis() > 0 and context.function_name == "Fn"
        if raises:
            raise RuntimeError("boom")
        return result if result is not None else {"statusCode": 200, "body": "{}"}

    source = FunctionSource("Fn", ROOT / "x.py", "handler", memory_mb=256, timeout_s=5)
    routes = [
        route("POST", "/v1/items/{id}/notes"),
        route("GET", "/v1/files/{proxy+}"),
        route("GET", "/v1/ping"),
    ]
    return Front(routes, {"Fn": LocalFunction(source, handler)}, origins=["http://localhost:3000"]), seen


def test_routes_come_from_the_template() -> None:
    keys = {r.key for r in load_routes(ROOT / "template.yaml")}
    assert "POST /v1/recommendations/{id}/feedback" in keys and "GET /v1/health" in keys


def test_match_extracts_decoded_path_parameters() -> None:
    front, _ = echo_front()
    found = front.match("POST", "/v1/items/a%20b/notes")
    assert found is not None and found[0].key == "POST /v1/items/{id}/notes" and found[1] == {"id": "a b"}
    assert front.match("GET", "/v1/items/a/notes") is None  # wrong method
    assert front.match("POST", "/v1/items/a/b/notes") is None  # {id} is one segment
    assert front.match("GET", "/v1/files/a/b/c.txt")[1] == {"proxy": "a/b/c.txt"}  # {proxy+} is greedy


def test_the_most_specific_route_wins() -> None:
    source = FunctionSource("Fn", ROOT / "x.py", "handler", memory_mb=256, timeout_s=5)
    fn = LocalFunction(source, lambda event, context: None)
    routes = [route("GET", p) for p in ("/v1/{proxy+}", "/v1/songs/{song_id}", "/v1/songs/top")]
    front = Front(routes, {"Fn": fn})
    assert front.match("GET", "/v1/songs/top")[0].path == "/v1/songs/top"
    assert front.match("GET", "/v1/songs/s1")[0].path == "/v1/songs/{song_id}"
    assert front.match("GET", "/v1/anything/else")[0].path == "/v1/{proxy+}"


def test_event_is_payload_format_2() -> None:
    r = route("POST", "/v1/items/{id}/notes")
    headers = [
        ("Content-Type", "application/json"),
        ("X-Multi", "a"),
        ("x-multi", "b"),
        ("Cookie", "k=1; j=2"),
    ]
    headers.append(("Connection", "keep-alive"))
    body = json.dumps({"text": "한국어"}).encode()
    event = build_event(r, {"id": "42"}, "POST", "/v1/items/42/notes?q=1&q=2&e=", headers, body, "10.0.0.9")
    assert event["version"] == "2.0" and event["routeKey"] == "POST /v1/items/{id}/notes"
    assert event["rawPath"] == "/v1/items/42/notes" and event["rawQueryString"] == "q=1&q=2&e="
    assert event["queryStringParameters"] == {"q": "1,2", "e": ""}
    assert event["headers"] == {"content-type": "application/json", "x-multi": "a,b"}
    assert event["cookies"] == ["k=1", "j=2"]
    assert event["pathParameters"] == {"id": "42"}
    assert event["requestContext"]["http"] == {
        "method": "POST",
        "path": "/v1/items/42/notes",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.9",
        "userAgent": "",
    }
    assert event["requestContext"]["routeKey"] == event["routeKey"]
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == {"text": "한국어"}


@pytest.mark.parametrize(
    ("target", "raw_path"),
    [
        ("/v1/songs/%EA%B0%80?q=%EA%B0%80", "/v1/songs/가"),  # decoded, like the HTTP API
        ("/v1/songs/a%20b", "/v1/songs/a b"),
        ("/v1/songs/%ED%A0%80", "/v1/songs/\ufffd\ufffd\ufffd"),  # not UTF-8: replaced, never a surrogate
        ("/v1/songs/s1", "/v1/songs/s1"),
    ],
)
def test_the_raw_path_arrives_percent_decoded(target: str, raw_path: str) -> None:
    r = route("GET", "/v1/songs/{song_id}")
    event = build_event(r, {}, "GET", target, [], b"", "127.0.0.1")
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == raw_path
    assert event["rawQueryString"] == (target.partition("?")[2])  # the query string stays as sent


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b'{"text": "\xff"}', "application/json"), (b"\x00\x01binary", "application/octet-stream")],
)
def test_binary_or_non_utf8_bodies_arrive_base64(body: bytes, content_type: str) -> None:
    event = build_event(
        route("GET", "/v1/ping"), {}, "GET", "/v1/ping", [("content-type", content_type)], body, "::1"
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    assert "pathParameters" not in event and "queryStringParameters" not in event


def test_proxy_answers_map_to_http() -> None:
    answer = proxy_answer(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"X-A": ["1", "2"]},
            "cookies": ["s=1"],
            "body": base64.b64encode('{"ok": "예"}'.encode()).decode(),
            "isBase64Encoded": True,
        }
    )
    assert answer.status == 201
    assert ("content-type", "application/json") in answer.headers
    assert (
        ("x-a", "1") in answer.headers
        and ("x-a", "2") in answer.headers
        and ("set-cookie", "s=1") in answer.headers
    )
    assert json.loads(answer.body) == {"ok": "예"}
    inferred = proxy_answer({"hello": "world"})  # format 2.0: any other value is a 200 JSON answer
    assert inferred.status == 200 and json.loads(inferred.body) == {"hello": "world"}


def test_unknown_routes_404_and_crashes_500_without_a_trace() -> None:
    front, seen = echo_front()
    missing = front.handle("DELETE", "/v1/ping", [], b"", "127.0.0.1")
    assert missing.status == 404 and json.loads(missing.body) == {"message": "Not Found"} and not seen
    crashing, _ = echo_front(raises=True)
    crashed = crashing.handle("GET", "/v1/ping", [], b"", "127.0.0.1")
    assert crashed.status == 500 and json.loads(crashed.body) == {"message": "Internal Server Error"}


def test_cors_follows_the_allowed_origins() -> None:
    front, _ = echo_front()
    allowed = front.preflight("http://localhost:3000")
    assert allowed.status == 204
    assert ("access-control-allow-origin", "http://localhost:3000") in allowed.headers
    other = front.preflight("https://evil.example")
    assert other.status == 204 and not any(name.startswith("access-control") for name, _ in other.headers)
