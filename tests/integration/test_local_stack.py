"""`make demo`'s entry point (`python -m infra.local.stack`) on free ports: real HTTP through the front to
the handlers and moto, the CLI against it, a clean stop on Ctrl-C, and a clear error when a port is taken."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO_SONGS = sum(
    1 for line in (ROOT / "data/demo/songs.jsonl").read_text("utf-8").splitlines() if line.strip()
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Running:
    url: str
    moto_port: int
    api_port: int
    process: subprocess.Popen[str]


def stack_env(moto_port: int, api_port: int) -> dict[str, str]:
    env = {**os.environ, "MOTO_PORT": str(moto_port), "MOODTUNE_PORT": str(api_port), "PYTHONUNBUFFERED": "1"}
    for name in ("AWS_ENDPOINT_URL", "SONGS_TABLE", "FEEDBACK_TABLE", "MODEL_DIR", "MOODTUNE_CATALOG"):
        env.pop(name, None)  # the stack's own defaults, as `make demo` gets them
    return env


@pytest.fixture(scope="module")
def stack() -> Iterator[Running]:
    moto_port, api_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack"],
        cwd=ROOT,
        env=stack_env(moto_port, api_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"the stack exited with {process.returncode}:\n{process.stdout.read()[-3000:]}")
        try:
            if requests.get(f"{url}/v1/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no answer from {url}/v1/health in 120 s:\n{process.communicate()[0][-3000:]}")
        time.sleep(0.2)
    running = Running(url, moto_port, api_port, process)
    yield running
    if process.poll() is None:  # the stop test did not run (-k): stop it here
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def post(url: str, body: bytes | str, content_type: str = "application/json") -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return requests.post(url, data=data, headers={"content-type": content_type}, timeout=30)


def test_health_and_catalog(stack: Running) -> None:
    health = requests.get(f"{stack.url}/v1/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["catalog_size"] == DEMO_SONGS
    assert health["model_version"].startswith("demo-")


def test_recommend_then_feedback(stack: Running) -> None:
    body = {"text": "퇴근길에 비가 와서 좀 우울해 ㅠㅠ", "limit": 4}
    answer = requests.post(f"{stack.url}/v1/recommendations", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    recommendation = answer.json()
    assert len(recommendation["songs"]) == 4
    assert answer.headers["content-type"].startswith("application/json")

    song_id = recommendation["songs"][1]["song_id"]
    path = f"/v1/recommendations/{recommendation['recommendation_id']}/feedback"
    fed = requests.post(f"{stack.url}{path}", json={"song_id": song_id, "satisfied": False}, timeout=30)
    assert fed.status_code == 200, fed.text
    assert fed.json()["song_id"] == song_id and fed.json()["satisfied"] is False

    song = requests.get(f"{stack.url}/v1/songs/{song_id}", timeout=10)
    assert song.status_code == 200 and song.json()["song_id"] == song_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/health"),
        ("DELETE", "/v1/recommendations"),
        ("GET", "/v2/health"),
        ("TRACE", "/v1/health"),  # http.server's 501 before: the HTTP API routes every method
        ("PROPFIND", "/v1/recommendations"),
    ],
)
def test_unknown_route_is_a_json_404(stack: Running, method: str, path: str) -> None:
    answer = requests.request(method, f"{stack.url}{path}", timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"message": "Not Found"}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"text": "안녕"', "application/json", 400),  # invalid JSON
        (b'{"text": "\xff\xfe"}', "application/json", 400),  # not UTF-8 (arrives base64-encoded)
        ('{"text": 5}', "application/json", 400),  # wrong type
        ('{"text": "안녕", "colour": "blue"}', "application/json", 400),  # unknown field
        ('{"text": "안녕"}', "text/plain", 415),
        ('{"text": "' + "가" * 20_000 + '"}', "application/json", 413),  # over the handler's 16 KB
        ("x" * (2 * 1024 * 1024), "application/json", 413),  # under the HTTP API's 10 MB: the handler's 413
        ("x" * (7 * 1024 * 1024), "application/json", 413),  # over Lambda's 6 MB: the front's, no handler
    ],
)
def test_bad_bodies_get_clear_4xx(stack: Running, body: str | bytes, content_type: str, status: int) -> None:
    answer = post(f"{stack.url}/v1/recommendations", body, content_type)
    assert answer.status_code == status, answer.text[:300]
    assert answer.json()["message"]


def test_web_page_is_served_at_root(stack: Running) -> None:
    if not (ROOT / "web" / "index.html").is_file():
        pytest.fail("web/index.html is missing")
    page = requests.get(f"{stack.url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


def raw_get(stack: Running, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (requests and urllib normalise ``..`` away)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "target",
    [
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/%2E%2E/%2E%2E/pyproject.toml",
        "/..%2fpyproject.toml",
        "/%2e%2e%2fpyproject.toml",
        "/web/../../pyproject.toml",
        "/..\\pyproject.toml",
        "//work/main/pyproject.toml",
    ],
)
def test_no_path_reaches_a_file_outside_web(stack: Running, target: str) -> None:
    secret = (ROOT / "pyproject.toml").read_bytes()[:40]
    status, body = raw_get(stack, target)
    assert status == 404, (target, status, body[:200])
    assert secret not in body


def test_a_percent_encoded_song_id_is_found(stack: Running) -> None:
    song_id = json.loads((ROOT / "data/demo/songs.jsonl").read_text("utf-8").splitlines()[0])["song_id"]
    encoded = "".join(f"%{byte:02X}" for byte in song_id.encode())
    status, body = raw_get(stack, f"/v1/songs/{encoded}")
    assert status == 200, body[:300]
    assert json.loads(body)["song_id"] == song_id


def test_cli_against_the_stack(stack: Running) -> None:
    env = {**os.environ, "MOODTUNE_API_URL": stack.url}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "moodtune_cli",
            "recommend",
            "친구랑 싸워서 화가 나",
            "--limit",
            "2",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["songs"]) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "moodtune_cli", "classify", "   "],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("moodtune: error: POST /v1/emotions failed: 400")
    assert "Traceback" not in bad.stderr


def test_ctrl_c_stops_everything(stack: Running) -> None:
    stack.process.send_signal(signal.SIGINT)
    output, _ = stack.process.communicate(timeout=30)
    assert stack.process.returncode == 0, output[-2000:]
    assert "ready in" in output and "HTTP 201" in output and "curl -s -X POST" in output
    assert "stopped." in output
    assert "Traceback" not in output
    assert port_is_free(stack.api_port) and port_is_free(stack.moto_port)


def test_an_empty_catalog_still_starts_and_reports_degraded(tmp_path: Path) -> None:
    """`make demo` asks /v1/health before it prints the banner: an empty catalog must not break it."""
    moto_port, api_port = free_port(), free_port()
    env = {**stack_env(moto_port, api_port), "MOODTUNE_CATALOG": str(tmp_path / "no-songs.jsonl")}
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.get(f"http://127.0.0.1:{api_port}/v1/health", timeout=2)
            except requests.ConnectionError:
                time.sleep(0.2)
                continue
            health = (answer.status_code, answer.json())
            break
        assert health is not None, f"no answer from /v1/health (exit code {process.poll()})"
        status, body = health
        assert status == 200, body
        assert body["status"] == "degraded" and body["catalog_size"] == 0
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output[-2000:]
    assert "ready in" in output and "0 songs in the catalog" in output and "Traceback" not in output


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "infra.local.stack"],
            cwd=ROOT,
            env=stack_env(free_port(), taken),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"port {taken}" in done.stderr and "already in use" in done.stderr
    assert "Traceback" not in done.stderr
