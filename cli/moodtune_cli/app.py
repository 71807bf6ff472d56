"""The ``moodtune`` console script: the subcommands of each module, one parser, one exit status.

Each subcommand module lists its commands in ``COMMANDS``; this module names the modules. A module is
imported when the parser is built, but the library code a subcommand runs (boto3, onnxruntime, the
pipeline) is imported inside the subcommand, so ``moodtune --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from rich.console import Console

from moodtune_cli import api, catalog, feedback, ingest
from moodtune_cli.commands import CliError, Command

COMMANDS: dict[str, Command] = {
    cmd.name: cmd for module in (api, ingest, catalog, feedback) for cmd in module.COMMANDS
}


def build_parser(commands: Mapping[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser with every subcommand of ``commands``."""
    parser = argparse.ArgumentParser(
        prog="moodtune", description="Song recommendations from the feeling in a short Korean text."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands.values():
        cmd.configure(subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser


def main(
    argv: Sequence[str] | None = None,
    console: Console | None = None,
    commands: Mapping[str, Command] = COMMANDS,
) -> int:
    """Run one subcommand; problems are one line on stderr and a non-zero status, never a traceback."""
    args = build_parser(commands).parse_args(argv)
    console = console or Console()
    try:
        return commands[args.command].run(args, console)
    except CliError as exc:
        print(f"moodtune: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
