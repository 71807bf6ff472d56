"""The ``moodtune`` console script against a small stand-in API on a free port (real HTTP, canned answers)."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rich.console import Console

from moodtune.labels import LABELS
from moodtune_cli import app as cli
from moodtune_cli.commands import command

SCORES = dict(zip(LABELS, [0.61, 0.05, 0.04, 0.05, 0.15, 0.02, 0.08], strict=True))
RECOMMENDATION = {
    "recommendation_id": "r-abc",
    "model_version": "demo-123456789abc",
    "mode": "distribution",
    "emotion": {"dominant": "joy", "scores": SCORES},
    "songs": [
        {
            "song_id": "s0007",
            "title": "햇살 가득한 오후",
            "artist": "윤소라",
            "similarity": 0.9731,
            "dominant": "joy",
            "scores": SCORES,
            "explanation": {
                "song_top": [["joy", 0.7]],
                "text_top": [["joy", 0.61]],
                "shared": ["joy", "surprise"],
            },
        }
    ],
}
EMOTION = {"dominant": "joy", "scores": SCORES, "model_version": "demo-123456789abc"}


class StandIn:
    """Answers with ``self.answer`` (status, body) and remembers the requests it got."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, {})
        self.requests: list[tuple[str, str, Any]] = []


@pytest.fixture
def api() -> Iterator[tuple[str, StandIn]]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            state.requests.append(("POST", self.path, json.loads(self.rfile.read(length) or b"null")))
            status, body = state.answer
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    return cli.main(argv, console=console), out.getvalue()


def test_recommend_sends_the_request_and_prints_tables(api: tuple[str, StandIn]) -> None:
    url, state = api
    state.answer = (201, RECOMMENDATION)
    code, out = run(
        ["recommend", "시험 끝! 너무 행복해", "--limit", "3", "--mode", "dominant", "--api-url", url]
    )
    assert code == 0
    assert state.requests == [
        ("POST", "/v1/recommendations", {"text": "시험 끝! 너무 행복해", "limit": 3, "mode": "dominant"})
    ]
    assert "햇살 가득한 오후" in out and "윤소라" in out and "0.973" in out
    assert "기쁨 (joy)" in out and "r-abc" in out
    assert "기쁨, 놀람" in out  # the emotions the song shares with the text


def test_recommend_json_prints_the_answer_as_is(api: tuple[str, StandIn], monkeypatch) -> None:
    url, state = api
    state.answer = (201, RECOMMENDATION)
    monkeypatch.setenv("MOODTUNE_API_URL", url)  # the default comes from the environment
    code, out = run(["recommend", "좋아", "--json"])
    assert code == 0
    assert json.loads(out) == RECOMMENDATION
    assert state.requests[0][2] == {"text": "좋아", "limit": 5, "mode": "distribution"}


def test_classify_prints_all_seven_emotions(api: tuple[str, StandIn]) -> None:
    url, state = api
    state.answer = (200, EMOTION)
    code, out = run(["classify", "오늘 기분 최고", "--api-url", url])
    assert code == 0
    assert state.requests == [("POST", "/v1/emotions", {"text": "오늘 기분 최고"})]
    for label in LABELS:
        assert f"({label})" in out
    assert "0.610" in out


def test_api_4xx_is_one_clear_line(api: tuple[str, StandIn], capsys) -> None:
    url, state = api
    state.answer = (
        422,
        {"message": "invalid request", "errors": [{"loc": ["body", "text"], "msg": "text is empty"}]},
    )
    code, out = run(["recommend", "   ", "--api-url", url])
    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "moodtune: error: POST /v1/recommendations failed: 422 invalid request (text: text is empty)"
    ]


def test_non_json_error_answer(api: tuple[str, StandIn], capsys) -> None:
    url, state = api
    state.answer = (502, b"<html>bad gateway</html>")
    code, _ = run(["classify", "안녕", "--api-url", url])
    err = capsys.readouterr().err
    assert code == 1
    assert "502" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_stack_not_running_is_one_clear_line(capsys) -> None:
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _ = run(["classify", "안녕", "--api-url", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach the moodtune API" in err and "make demo" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("limit", ["0", "21", "abc"])
def test_limit_is_checked_before_any_request(limit: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["recommend", "안녕", "--limit", limit])
    assert exit_info.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_subcommands_are_registered_in_one_place() -> None:
    """A subcommand is a ``Command`` made with ``@command`` and listed in its module's ``COMMANDS``; the
    parser takes whatever ``commands`` it is given, with no other edits."""

    def configure(parser) -> None:
        parser.add_argument("name")

    @command("hello-test", "a test subcommand", configure)
    def hello(args, console) -> int:
        console.print(f"hello {args.name}")
        return 7

    out = io.StringIO()
    commands = {**cli.COMMANDS, hello.name: hello}
    code = cli.main(["hello-test", "moodtune"], Console(file=out), commands=commands)
    assert (code, out.getvalue().strip()) == (7, "hello moodtune")
    assert "hello-test" not in cli.COMMANDS
    assert {"classify", "recommend", "journey"} <= set(cli.COMMANDS)


JOURNEY = {
    "journey_id": "j-xyz",
    "model_version": "demo-123456789abc",
    "metric": "cosine",
    "emotion": {"dominant": "sadness", "scores": {**dict.fromkeys(LABELS, 0.0), "sadness": 1.0}},
    "target": {"scores": {**dict.fromkeys(LABELS, 0.0), "joy": 1.0}},
    "reachable": False,
    "stay": False,
    "tolerance": 0.02,
    "largest_step": 0.2,
    "steps": [
        {
            "step": i,
            "song": {
                "song_id": f"s{i}",
                "title": f"노래 {i}",
                "artist": f"가수 {i}",
                "dominant": d,
                "scores": SCORES,
            },
            "waypoint": {"scores": SCORES},
            "similarity": 0.95,
            "target_similarity": 0.5 + i / 10,
        }
        for i, d in enumerate(["sadness", "neutral", "joy"])
    ],
}


def test_journey_sends_the_request_and_prints_the_steps(api: tuple[str, StandIn]) -> None:
    url, state = api
    state.answer = (201, JOURNEY)
    code, out = run(["journey", "비가 와서 우울해", "--target", "joy", "--length", "4", "--api-url", url])
    assert code == 0
    assert state.requests == [
        (
            "POST",
            "/v1/journeys",
            {"text": "비가 와서 우울해", "target": "joy", "length": 4, "metric": "cosine"},
        )
    ]
    assert "노래 0" in out and "노래 2" in out and "j-xyz" in out and "중립 (neutral)" in out
    assert "no song in the catalog is near joy" in out  # reachable false is said
    code, out = run(["journey", "우울해", "--target", "joy", "--json", "--api-url", url])
    assert code == 0 and json.loads(out) == JOURNEY


@pytest.mark.parametrize("argv", [["--target", "happy"], ["--target", "joy", "--length", "2"], []])
def test_journey_arguments_are_checked_before_any_request(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["journey", "좋아", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--target" in err or "--length" in err
