"""The limits a client meets at the HTTP API, as the local front models them, over real loopback sockets:
any method without a route (TRACE too) is a JSON 404, route throttling is 429 with the HTTP API's body,
bodies over the HTTP API's 10 MB or events over Lambda's 6 MB reach no function (413), and a client that
hangs up mid-request invokes nothing or costs only its own answer."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.front import (
    DEFAULT_MAX_BODY,
    LAMBDA_MAX_PAYLOAD,
    Front,
    FunctionSource,
    LocalFunction,
    Route,
    TokenBucket,
    _path_pattern,
    load_template,
    make_server,
    throttles,
)

ROOT = Path(__file__).resolve().parents[3]


class Echo:
    """A handler that records its events and answers 200 (optionally after a pause)."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.pause_s = pause_s
        self.done = threading.Event()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        time.sleep(self.pause_s)
        self.done.set()
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}


def make_front(handler: Echo, throttling: dict[str, tuple[float, float]] | None = None) -> Front:
    source = FunctionSource("Fn", ROOT / "x.py", "handler", memory_mb=256, timeout_s=5)
    routes = [
        Route("POST", "/v1/items", "Fn", _path_pattern("/v1/items")),
        Route("GET", "/v1/ping", "Fn", _path_pattern("/v1/ping")),
    ]
    return Front(routes, {"Fn": LocalFunction(source, handler)}, throttling=throttling)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = []

    def start(front: Front) -> int:
        server = make_server(front, "127.0.0.1", 0, web_dir=ROOT / "web")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def request(
    port: int, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


METHODS = ("TRACE", "CONNECT", "PROPFIND", "FOO", "PUT", "DELETE", "PATCH", "HEAD")
PATHS = ("/v1/ping", "/v1/items", "/v1/nowhere", "/v2/ping")


def test_every_method_without_a_route_is_the_http_apis_json_404(serve: Any) -> None:
    handler = Echo()
    port = serve(make_front(handler))
    for method in METHODS:
        for path in PATHS:
            status, headers, body = request(port, method, path, b'{"x": 1}' if method != "HEAD" else None)
            assert status == 404, (method, path, body[:200])
            assert headers["content-type"] == "application/json"
            if method != "HEAD":
                assert json.loads(body) == {"message": "Not Found"}, (method, path)
    assert handler.events == []


def test_a_body_on_options_or_get_never_leaks_into_the_next_request_of_the_connection(serve: Any) -> None:
    port = serve(make_front(Echo()))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for method in ("OPTIONS", "GET", "TRACE", "GET"):
            connection.request(
                method, "/v1/ping", body=b'{"text": "x"}', headers={"content-type": "application/json"}
            )
            answer = connection.getresponse()
            answer.read()
            assert answer.status in (200, 204, 404), (method, answer.status)
        connection.request("GET", "/v1/ping")
        assert connection.getresponse().status == 200  # the same keep-alive connection still parses
    finally:
        connection.close()


def test_route_throttling_is_429_with_the_http_apis_body_then_refills() -> None:
    handler = Echo()
    front = make_front(handler, throttling={"*": (1000.0, 3.0), "POST /v1/items": (1.0, 2.0)})
    answers = [front.handle("POST", "/v1/items", [], b"{}", "127.0.0.1") for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 429, 429]
    assert json.loads(answers[2].body) == {"message": "Too Many Requests"}
    assert answers[2].headers[0] == ("content-type", "application/json")
    assert len(handler.events) == 2  # a throttled request reaches no function
    assert front.handle("GET", "/v1/ping", [], b"", "127.0.0.1").status == 200  # each route its own bucket


def test_a_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(now=10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now=10.5) and not bucket.take(now=10.5)  # 0.5 s at 2/s: one token
    assert [bucket.take(now=100.0) for _ in range(4)] == [True, True, True, False]  # never above the burst


def test_the_throttles_come_from_the_templates_route_settings() -> None:
    limits = throttles(load_template(ROOT / "template.yaml"))
    assert limits["*"] == (20.0, 40.0)
    assert limits["POST /v1/recommendations"] == (10.0, 20.0)
    unthrottled = Front([], {}, throttling=None)
    assert unthrottled.buckets == {}


def test_a_body_over_the_http_apis_10_mb_is_413_and_reaches_no_function(serve: Any) -> None:
    handler = Echo()
    port = serve(make_front(handler))
    status, _, body = request(port, "POST", "/v1/items", b"x" * (DEFAULT_MAX_BODY + 1))
    assert status == 413 and json.loads(body) == {"message": "Request Entity Too Large"}
    assert handler.events == []


def test_a_body_between_lambdas_6_mb_and_the_http_apis_10_mb_is_413_and_reaches_no_function(
    serve: Any,
) -> None:
    handler = Echo()
    port = serve(make_front(handler))
    status, _, body = request(port, "POST", "/v1/items", b'"' + b"x" * LAMBDA_MAX_PAYLOAD + b'"')
    assert status == 413 and json.loads(body) == {"message": "Request Entity Too Large"}
    assert handler.events == []
    status, _, _ = request(port, "POST", "/v1/items", b'"' + b"x" * (1024 * 1024) + b'"')
    assert status == 200 and len(handler.events) == 1  # 1 MB: invoked (the handler's own 16 KB rule answers)


def test_a_client_gone_mid_body_invokes_nothing_and_the_front_keeps_serving(serve: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="moodtune.front")
    handler = Echo()
    port = serve(make_front(handler))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"text": "half'
        )

    def noticed() -> bool:
        return any("client gone before its body" in r.getMessage() for r in caplog.records)

    for _ in range(200):  # the front notices the hang-up when its read of the body ends
        if noticed():
            break
        time.sleep(0.05)
    assert noticed()
    assert handler.events == []
    assert request(port, "GET", "/v1/ping")[0] == 200


def test_a_client_gone_before_its_answer_costs_only_that_answer(serve: Any, capfd: Any) -> None:
    handler = Echo(pause_s=0.3)
    port = serve(make_front(handler))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(
            b"POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )
    assert handler.done.wait(10)  # the function ran to the end: its write is not undone
    assert len(handler.events) == 1
    time.sleep(0.5)
    assert request(port, "GET", "/v1/ping")[0] == 200
    assert "Traceback" not in capfd.readouterr().err
