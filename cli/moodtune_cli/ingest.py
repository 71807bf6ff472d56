"""``moodtune ingest CATALOG.jsonl``: score a lyrics catalog with a bundle and write it to SongsTable.

It talks to the local stack's AWS endpoint by default (``AWS_ENDPOINT_URL``, else
http://127.0.0.1:``MOTO_PORT``) with dummy credentials; ``--aws`` uses AWS itself with the usual
credential chain. The pipeline is ``moodtune.catalog.ingest``: bad lines are listed and skipped, songs already
stored with the same content hash are kept, so a second run or a run after a crash only does what is
left. Exit status: 0 done, 3 done but some lines were skipped, 1 an error (nothing half-written).

Options left out fall back to the INGEST_* environment (what IngestFunction uses in AWS), then to the
defaults. The pipeline's imports (boto3, onnxruntime, ...) wait until the subcommand runs, so the
other subcommands start as fast as before.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from moodtune.catalog.lyrics import WEIGHTINGS
from moodtune.labels import KOREAN, LABELS
from moodtune_cli.commands import CliError, command

if TYPE_CHECKING:
    from moodtune.catalog.ingest import IngestReport, IngestSettings

EXIT_SKIPPED = 3
SHOWN_REJECTS = 20
DEFAULT_REGION = "ap-northeast-2"


def _whole(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}")
    return number


def _positive(value: str) -> int:
    return _whole(value, 1)


def _non_negative(value: str) -> int:
    return _whole(value, 0)


def _ingest_settings() -> IngestSettings:
    """INGEST_* from the environment; a bad value is a one-line error, not a traceback."""
    from pydantic import ValidationError

    from moodtune.catalog.ingest import IngestSettings

    try:
        return IngestSettings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = "INGEST_" + str(first["loc"][0]).upper() if first["loc"] else "INGEST_*"
        raise CliError(f"{name}: {first['msg']}") from None


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "catalog", type=Path, help="JSONL catalog: one song a line (song_id, title, artist, lyrics)"
    )
    parser.add_argument("--model-dir", type=Path, help="model bundle (default: env MODEL_DIR, models/demo)")
    parser.add_argument(
        "--batch-size", type=_positive, help="chunks per inference call (INGEST_BATCH_SIZE, 32)"
    )
    parser.add_argument(
        "--chunk-size",
        type=_positive,
        help="lyric lines per chunk (INGEST_LINES_PER_CHUNK; default: the bundle's, 4 if it names none)",
    )
    parser.add_argument(
        "--max-repeats",
        type=_non_negative,
        help="identical consecutive lines kept, 0 keeps all (INGEST_MAX_REPEATS, 2)",
    )
    parser.add_argument(
        "--filter-unknown-english",
        action="store_true",
        default=None,
        help="drop English words the tokenizer does not know, counted (INGEST_FILTER_UNKNOWN_ENGLISH, off)",
    )
    parser.add_argument("--weighting", choices=WEIGHTINGS, help="chunk averaging (INGEST_WEIGHTING, mean)")
    parser.add_argument(
        "--max-lyrics-bytes",
        type=_positive,
        help="longer lyrics are skipped (INGEST_MAX_LYRICS_BYTES, 32768)",
    )
    parser.add_argument("--force", action="store_true", help="score every song again, even unchanged ones")
    parser.add_argument("--table", help="SongsTable name (default: env SONGS_TABLE, moodtune-songs-local)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL")
        or f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}",
        help="local AWS endpoint (env AWS_ENDPOINT_URL; default: the local stack, %(default)s)",
    )
    target.add_argument(
        "--aws", action="store_true", help="write to AWS itself (credentials from the environment)"
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        help="AWS region (%(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _songs_table(args: argparse.Namespace) -> Any:
    """The boto3 Table, checked to exist; local endpoints get dummy credentials, never a real account's."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=30)
    if args.aws:
        resource = boto3.resource("dynamodb", region_name=args.region, config=config)
        where = f"AWS ({args.region})"
    else:
        resource = boto3.resource(
            "dynamodb",
            endpoint_url=args.endpoint_url,
            region_name=args.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            config=config,
        )
        where = args.endpoint_url
    table = resource.Table(args.table)
    try:
        table.load()
    except EndpointConnectionError:
        raise CliError(
            f"cannot reach the AWS endpoint at {where}: start the local stack with `make demo`, "
            "or pass --endpoint-url, or --aws for AWS itself"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise CliError(f"no table {args.table!r} at {where}: pass --table (or set SONGS_TABLE)") from None
        raise CliError(f"cannot read table {args.table!r} at {where}: {exc}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot reach {where}: {exc}") from None
    return table


def summary_tables(report: IngestReport) -> tuple[Table, Table]:
    """The run's counts and the songs per dominant emotion."""
    counts = Table(title=f"ingested under {report.model_version}", title_justify="left")
    counts.add_column("")
    counts.add_column("", justify="right")
    rows = [
        ("songs (valid lines)", f"{report.songs:,}"),
        ("written", f"{report.written:,}"),
        ("unchanged (already stored)", f"{report.unchanged:,}"),
        ("skipped lines", f"{report.skipped:,}"),
        ("chunks scored", f"{report.chunks:,}"),
        ("unknown English words dropped", f"{report.dropped_words:,}"),
        ("seconds", f"{report.seconds:.2f}"),
        ("songs scored/s", f"{report.songs_per_second:.1f}"),
        ("chunks/s", f"{report.chunks_per_second:.1f}"),
    ]
    for name, value in rows:
        counts.add_row(name, value)
    dominant = Table(title="songs per dominant emotion", title_justify="left")
    dominant.add_column("emotion")
    dominant.add_column("songs", justify="right")
    for label in LABELS:
        dominant.add_row(f"{KOREAN[label]} ({label})", f"{report.dominant.get(label, 0):,}")
    return counts, dominant


@command("ingest", "score a lyrics catalog (JSONL) and write it to SongsTable", _configure)
def run_ingest(args: argparse.Namespace, console: Console) -> int:
    env = _ingest_settings()
    if not args.catalog.is_file():
        raise CliError(f"{args.catalog}: no such catalog file")
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm import tqdm

    from moodtune.catalog.ingest import GROUP_SONGS, SongScorer, count_lines, ingest_file
    from moodtune.catalog.lyrics import LyricsOptions
    from moodtune.catalog.store import StoreError
    from moodtune.emotion.bundle import BundleError
    from moodtune.emotion.classifier import EmotionClassifier
    from moodtune.settings import Settings

    defaults = Settings()
    args.table = args.table or defaults.songs_table

    def pick(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    table = _songs_table(args)
    try:
        classifier = EmotionClassifier.from_bundle(pick(args.model_dir, defaults.model_dir))
    except BundleError as exc:
        raise CliError(str(exc)) from None
    max_repeats = pick(args.max_repeats, env.max_repeats)
    lyrics = LyricsOptions(
        # --chunk-size, else INGEST_LINES_PER_CHUNK, else the bundle's own chunking
        lines_per_chunk=pick(args.chunk_size, pick(env.lines_per_chunk, classifier.lines_per_chunk)),
        max_repeats=max_repeats or None,
        filter_unknown_english=pick(args.filter_unknown_english, env.filter_unknown_english),
        weighting=pick(args.weighting, env.weighting),
    )
    scorer = SongScorer(classifier, lyrics, pick(args.batch_size, env.batch_size))

    bar = tqdm(
        total=count_lines(args.catalog),
        unit="song",
        desc="ingest",
        file=sys.stderr,
        disable=None,
        leave=False,
    )

    def progress(report: IngestReport, lines: int) -> None:
        bar.update(lines)
        bar.set_postfix(chunks=report.chunks, skipped=report.skipped, refresh=False)

    try:
        report = ingest_file(
            scorer,
            table,
            args.catalog,
            max_lyrics_bytes=pick(args.max_lyrics_bytes, env.max_lyrics_bytes),
            group_songs=GROUP_SONGS,
            force=args.force,
            progress=progress,
        )
    except (ClientError, BotoCoreError, StoreError) as exc:
        raise CliError(
            f"writing to {args.table} failed ({exc}); every song written so far is whole and kept: "
            "run the same command again to resume"
        ) from None
    finally:
        bar.close()

    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), file=console.file)
    else:
        for table_ in summary_tables(report):
            console.print(table_)
        for rejected in report.rejected[:SHOWN_REJECTS]:
            print(f"skipped {args.catalog}:{rejected}", file=sys.stderr)
        if report.skipped > SHOWN_REJECTS:
            print(
                f"... and {report.skipped - SHOWN_REJECTS} more skipped lines (--json lists all)",
                file=sys.stderr,
            )
    return EXIT_SKIPPED if report.skipped else 0


COMMANDS = (run_ingest,)
