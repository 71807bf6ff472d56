"""``moodtune export-feedback`` and ``moodtune report``: the feedback loop from a shell.

Like ``moodtune ingest``, they talk to the local stack's AWS endpoint by default (``--endpoint-url``,
else ``AWS_ENDPOINT_URL``, else http://127.0.0.1:``MOTO_PORT``) with dummy credentials; ``--aws``
uses AWS itself with the usual credential chain (then name the table and the bucket: ``--table`` /
FEEDBACK_TABLE and ``--bucket`` / EXPORT_BUCKET, from the stack's outputs). The export and the report
live in ``moodtune.feedback.export`` and ``moodtune.feedback.report``; their imports wait until the subcommand
runs, so the other subcommands start as fast as before.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from moodtune_cli.commands import CliError, command, print_json


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _aws_args(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--endpoint-url",
        help="local AWS endpoint (default: env AWS_ENDPOINT_URL, else the local stack http://127.0.0.1:$MOTO_PORT)",
    )
    target.add_argument("--aws", action="store_true", help="AWS itself (credentials from the environment)")


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_day, required=True, help="first day to export (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", type=_day, help="last day (default: today, UTC)")
    parser.add_argument(
        "--bucket", help="export bucket (default: env EXPORT_BUCKET, locally moodtune-exports-local)"
    )
    parser.add_argument(
        "--table", help="FeedbackTable name (default: env FEEDBACK_TABLE, moodtune-feedback-local)"
    )
    _aws_args(parser)
    parser.add_argument("--json", action="store_true", help="print the run's summary as JSON")


@command(
    "export-feedback",
    "export feedback to S3 as gzip JSONL, one object per day (a re-run rewrites the same objects)",
    _configure_export,
)
def run_export_feedback(args: argparse.Namespace, console: Console) -> int:
    from moodtune.feedback.export import ExportError, export_by_hand, resolve_endpoint

    try:
        result = export_by_hand(
            args.since,
            args.until,
            bucket=args.bucket,
            table=args.table,
            endpoint_url=resolve_endpoint(args.endpoint_url, args.aws, os.environ),
            environ=os.environ,
        )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    summary = result.summary()
    if args.json:
        print_json(console, summary)
        return 0
    table = Table(title=f"feedback export {summary['since']} .. {summary['until']}", title_justify="left")
    table.add_column("day")
    table.add_column("rows", justify="right")
    table.add_column("from the table now", justify="right")
    table.add_column("object")
    table.add_column("key")
    for day in summary["days"]:
        state = "written" if day["written"] else ("unchanged" if day["rows"] else "no feedback")
        table.add_row(day["day"], str(day["rows"]), str(day["fresh"]), state, day["key"])
    console.print(table)
    if result.problems:
        reasons = ", ".join(f"{reason} {count}" for reason, count in summary["problems"].items())
        console.print(f"not exported: {result.rejected} ({reasons})", style="yellow")
    console.print(f"{result.rows} rows in {len(result.days)} days", style="dim")
    return 0


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="an export directory or file, or s3://bucket/prefix")
    parser.add_argument(
        "--png", type=Path, help="also write a chart here (needs matplotlib: the train extra)"
    )
    _aws_args(parser)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


@command("report", "satisfaction rates with 95 percent intervals from a feedback export", _configure_report)
def run_report(args: argparse.Namespace, console: Console) -> int:
    from moodtune.feedback.export import ExportError, aws_clients, resolve_endpoint
    from moodtune.feedback.report import ReportError, build_report
    from moodtune_cli.report_view import plot_report, report_table

    s3 = None
    if args.source.startswith("s3://"):
        _, s3 = aws_clients(resolve_endpoint(args.endpoint_url, args.aws, os.environ), os.environ)
    try:
        report = build_report(args.source, s3_client=s3)
        chart = plot_report(report, args.png) if args.png else None
    except (ReportError, ExportError) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print_json(console, report.as_dict())
        return 0
    console.print(report_table(report))
    if report.problems:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(report.problems.items()))
        console.print(f"rows not counted: {sum(report.problems.values())} ({reasons})", style="yellow")
    if chart:
        console.print(f"chart: {chart}", style="dim")
    return 0


COMMANDS = (run_export_feedback, run_report)
