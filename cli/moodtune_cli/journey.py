"""``moodtune journey``: songs from the mood of a text, step by step, toward the mood you want.

moodtune journey '퇴근길에 비가 와서 좀 우울해' --target joy [--length 6] [--json]
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from moodtune.labels import KOREAN, LABELS
from moodtune_cli.api import ApiClient, _api_args, _emotion_label
from moodtune_cli.commands import command, print_json

LENGTH_MIN, LENGTH_MAX = 3, 12


def _length(value: str) -> int:
    try:
        length = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not LENGTH_MIN <= length <= LENGTH_MAX:
        raise argparse.ArgumentTypeError(f"must be between {LENGTH_MIN} and {LENGTH_MAX}")
    return length


def _top(scores: dict[str, float], n: int = 2) -> str:
    pairs = sorted(scores.items(), key=lambda kv: -float(kv[1]))[:n]
    return ", ".join(f"{KOREAN.get(label, label)} {float(p):.0%}" for label, p in pairs)


def journey_table(steps: list[dict[str, Any]]) -> Table:
    """One row per step: the song, its dominant emotion, the waypoint it stands for."""
    table = Table(title="journey", title_justify="left")
    table.add_column("step", justify="right")
    table.add_column("song_id")
    table.add_column("title")
    table.add_column("artist")
    table.add_column("dominant")
    table.add_column("waypoint")
    table.add_column("similarity", justify="right")
    table.add_column("to target", justify="right")
    for step in steps:
        song = step.get("song", {})
        table.add_row(
            str(int(step.get("step", 0)) + 1),
            str(song.get("song_id", "")),
            str(song.get("title", "")),
            str(song.get("artist", "")),
            _emotion_label(str(song.get("dominant", ""))),
            _top(step.get("waypoint", {}).get("scores", {})),
            f"{float(step.get('similarity', 0.0)):.3f}",
            f"{float(step.get('target_similarity', 0.0)):.3f}",
        )
    return table


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="a short Korean text (1 to 500 characters)")
    parser.add_argument("--target", required=True, choices=LABELS, help="the emotion to move toward")
    parser.add_argument(
        "--length",
        type=_length,
        default=6,
        help=f"how many songs, {LENGTH_MIN} to {LENGTH_MAX} (default %(default)s)",
    )
    parser.add_argument(
        "--metric", choices=("cosine", "jensen_shannon"), default="cosine", help="similarity (default cosine)"
    )
    _api_args(parser)


@command("journey", "songs from the mood of a text toward the mood you want", _configure)
def run_journey(args: argparse.Namespace, console: Console) -> int:
    body = ApiClient(args.api_url).request(
        "POST",
        "/v1/journeys",
        {"text": args.text, "target": args.target, "length": args.length, "metric": args.metric},
    )
    if args.json:
        print_json(console, body)
        return 0
    emotion = body.get("emotion", {})
    console.print(
        f"from {_emotion_label(str(emotion.get('dominant', '')))} ({_top(emotion.get('scores', {}))}) "
        f"to {_emotion_label(args.target)}"
    )
    console.print(journey_table(body.get("steps", [])))
    if not body.get("reachable", True):
        console.print(
            f"no song in the catalog is near {args.target}: the journey goes as far as the catalog allows "
            f"({len(body.get('steps', []))} of {args.length} songs)",
            style="yellow",
        )
    console.print(
        f"journey {body.get('journey_id', '?')} · model {body.get('model_version', '?')} · "
        f"largest step {float(body.get('largest_step', 0.0)):.3f}",
        style="dim",
    )
    return 0


COMMANDS = (run_journey,)
