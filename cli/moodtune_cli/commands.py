"""What every subcommand is made of: ``Command``, the ``command`` decorator, ``CliError``, JSON output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status 1 (2 for usage)."""


RunFn = Callable[[argparse.Namespace, Console], int]


@dataclass(frozen=True)
class Command:
    """A subcommand: ``configure`` adds its arguments, ``run`` does the work and returns the exit status."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: RunFn


def command(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[RunFn], Command]:
    """Make the decorated function subcommand ``name``; its module lists it in its ``COMMANDS``."""

    def make(run: RunFn) -> Command:
        return Command(name=name, help=help, configure=configure, run=run)

    return make


def print_json(console: Console, body: dict[str, Any]) -> None:
    """Print an answer as JSON: plain print, so that it stays parseable (no rich markup, no wrapping)."""
    print(json.dumps(body, ensure_ascii=False, indent=2), file=console.file)
