"""``moodtune classify`` and ``moodtune recommend``: a small HTTP client of the moodtune API.

With no environment set it talks to the local stack that ``make demo`` runs (``MOODTUNE_API_URL``,
default http://127.0.0.1:3000).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from moodtune.labels import KOREAN, LABELS
from moodtune_cli.commands import CliError, command, print_json

DEFAULT_API_URL = "http://127.0.0.1:3000"
TIMEOUT_S = 30.0


# ---------------------------------------------------------------- the API client


class ApiClient:
    """JSON over HTTP to the moodtune API; every failure becomes a one-line ``CliError``."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; return the decoded JSON answer of a 2xx, raise ``CliError`` otherwise."""
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, json=payload, timeout=self.timeout)
        except requests.ConnectionError:
            raise CliError(
                f"cannot reach the moodtune API at {self.base_url}: start the local stack with `make demo`, "
                "or set MOODTUNE_API_URL to a deployed API"
            ) from None
        except requests.Timeout:
            raise CliError(
                f"the moodtune API at {self.base_url} did not answer in {self.timeout:.0f} s"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not response.ok:
            raise CliError(f"{method} {path} failed: {response.status_code} {_error_message(body, response)}")
        if not isinstance(body, dict):
            raise CliError(f"{method} {path}: the API answered {response.status_code} without a JSON object")
        return body

    def classify(self, text: str) -> dict[str, Any]:
        return self.request("POST", "/v1/emotions", {"text": text})

    def recommend(self, text: str, limit: int, mode: str) -> dict[str, Any]:
        return self.request("POST", "/v1/recommendations", {"text": text, "limit": limit, "mode": mode})


def _error_message(body: Any, response: requests.Response) -> str:
    """The API's own explanation of a 4xx/5xx (``message`` plus the first validation errors)."""
    if not isinstance(body, dict):
        return response.reason or "error"
    message = str(body.get("message") or body.get("detail") or response.reason or "error")
    errors = body.get("errors") or body.get("detail")
    if isinstance(errors, list) and errors:
        details = []
        for error in errors[:3]:
            if isinstance(error, dict):
                where = ".".join(str(p) for p in error.get("loc", []) if p != "body")
                details.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
            else:
                details.append(str(error))
        message = f"{message} ({'; '.join(details)})"
    return message


# ---------------------------------------------------------------- rendering


def _emotion_label(label: str) -> str:
    return f"{KOREAN.get(label, label)} ({label})"


def emotion_table(scores: dict[str, float], dominant: str, title: str) -> Table:
    """The seven emotions with their probabilities, the dominant one highlighted."""
    table = Table(title=title, title_justify="left")
    table.add_column("emotion")
    table.add_column("probability", justify="right")
    table.add_column("", min_width=20)
    for label in LABELS:
        p = float(scores.get(label, 0.0))
        style = "bold" if label == dominant else ""
        table.add_row(_emotion_label(label), f"{p:.3f}", "█" * round(p * 20), style=style)
    return table


def songs_table(songs: list[dict[str, Any]]) -> Table:
    """One row per recommended song."""
    table = Table(title="songs", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("song_id")
    table.add_column("title")
    table.add_column("artist")
    table.add_column("similarity", justify="right")
    table.add_column("dominant")
    table.add_column("shared with the text")
    for rank, song in enumerate(songs, start=1):
        shared = (song.get("explanation") or {}).get("shared") or []
        table.add_row(
            str(rank),
            str(song.get("song_id", "")),
            str(song.get("title", "")),
            str(song.get("artist", "")),
            f"{float(song.get('similarity', 0.0)):.3f}",
            _emotion_label(str(song.get("dominant", ""))),
            ", ".join(KOREAN.get(str(label), str(label)) for label in shared),
        )
    return table


# ---------------------------------------------------------------- subcommands


def _api_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url",
        default=os.environ.get("MOODTUNE_API_URL", DEFAULT_API_URL),
        help="API base URL (env MOODTUNE_API_URL; default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer as it is")


def _configure_classify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="a short Korean text (1 to 500 characters)")
    _api_args(parser)


@command("classify", "the seven-emotion distribution of a text", _configure_classify)
def run_classify(args: argparse.Namespace, console: Console) -> int:
    body = ApiClient(args.api_url).classify(args.text)
    if args.json:
        print_json(console, body)
        return 0
    dominant = str(body.get("dominant", ""))
    console.print(emotion_table(body.get("scores", {}), dominant, f"emotion: {_emotion_label(dominant)}"))
    console.print(f"model {body.get('model_version', '?')}", style="dim")
    return 0


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= limit <= 20:
        raise argparse.ArgumentTypeError("must be between 1 and 20")
    return limit


def _configure_recommend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="a short Korean text (1 to 500 characters)")
    parser.add_argument(
        "--limit", type=_limit, default=5, help="how many songs, 1 to 20 (default %(default)s)"
    )
    parser.add_argument(
        "--mode",
        choices=("distribution", "dominant"),
        default="distribution",
        help="distribution: whole-distribution similarity; dominant: the text's top emotion only",
    )
    _api_args(parser)


@command("recommend", "songs whose emotions match a text", _configure_recommend)
def run_recommend(args: argparse.Namespace, console: Console) -> int:
    body = ApiClient(args.api_url).recommend(args.text, args.limit, args.mode)
    if args.json:
        print_json(console, body)
        return 0
    emotion = body.get("emotion", {})
    dominant = str(emotion.get("dominant", ""))
    console.print(emotion_table(emotion.get("scores", {}), dominant, f"emotion: {_emotion_label(dominant)}"))
    console.print(songs_table(body.get("songs", [])))
    console.print(
        f"recommendation {body.get('recommendation_id', '?')} · model {body.get('model_version', '?')}",
        style="dim",
    )
    return 0


COMMANDS = (run_classify, run_recommend)
