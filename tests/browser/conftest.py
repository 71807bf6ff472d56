"""Browser-test fixtures: the local stack on free ports, and Debian's chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Stack:
    url: str
    endpoint: str
    feedback_table: str

    def feedback_item(self, recommendation_id: str) -> dict:
        """Read a recommendation record from FeedbackTable on the local AWS endpoint, over HTTP."""
        table = boto3.resource(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="ap-northeast-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).Table(self.feedback_table)
        return table.get_item(Key={"recommendation_id": recommendation_id}, ConsistentRead=True).get(
            "Item", {}
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Run the same local stack `make demo` runs, on free ports, until the session ends."""
    moto_port, front_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "MOTO_PORT": str(moto_port),
        "MOODTUNE_PORT": str(front_port),
        "PYTHONUNBUFFERED": "1",
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "stack.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.local.stack"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{front_port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"local stack exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/v1/health", timeout=10).ok:
                    break
            except requests.RequestException:  # not listening yet, or busy loading the catalog
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"local stack did not answer /v1/health in 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Stack(
            url=url,
            endpoint=f"http://127.0.0.1:{moto_port}",
            feedback_table=env.get("FEEDBACK_TABLE", "moodtune-feedback-local"),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (kept by CI as test artefacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium); .ci/run does"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, stack) -> Iterator[Callable[..., Any]]:
    """Open the page in a fresh browser context: open_page(width=1024, height=900, before=None, **context).

    ``before(page)`` runs before the page loads (for routes and init scripts).
    """
    contexts = []

    def _open(
        width: int = 1024,
        height: int = 900,
        before: Callable[[Any], None] | None = None,
        **context_args: Any,
    ) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale="ko-KR", **context_args
        )
        contexts.append(context)
        page = context.new_page()
        if before is not None:
            before(page)
        page.goto(stack.url + "/")
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page):
    """The page at 1024 x 900, Korean."""
    return open_page()
