"""The model-version switch: is the new version's catalog complete, and removing an old version's songs.

    python -m infra.model_switch check --model-dir models/v2 --catalog catalog.jsonl [--aws]
    python -m infra.model_switch prune --model-version demo-0123456789ab --yes [--aws]
    python -m infra.model_switch overrides --bundle models/v1 [--ingest-bundle models/v2] [--config-env dev]

(without --aws: the local endpoint, --endpoint-url or AWS_ENDPOINT_URL or http://127.0.0.1:MOTO_PORT)

``check`` is the gate between the two deploys of docs/ingestion.md: it reads the bundle's model_version
(no inference), computes every valid catalog song's content hash with the ingest rules (the INGEST_*
environment, as IngestFunction has it) and looks each song up under that version in SongsTable. Songs
that ingest rejects without writing them (no lyric line left once the lyrics are prepared with the
same code, e.g. only section markers) are left out and counted. Exit status 0 only when every song is
stored with its current hash: then RecommendFunction may be moved to the bundle. ``prune`` deletes one
model version's partition (after the rollback window has passed). ``overrides`` prints the
``--parameter-overrides`` of a deploy (``make deploy``): the samconfig.toml environment's own list with
``ModelDir``, ``IngestModelDir`` and ``CurrentModelVersion`` set from the two bundles, so that
``sam build`` (where the bundles become Docker build arguments) and ``sam deploy`` always agree.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from moodtune.catalog.ingest import (
    CatalogEntry,
    IngestSettings,
    content_hash,
    read_catalog_file,
    vocabulary_check,
)
from moodtune.catalog.lyrics import prepare_lyrics
from moodtune.catalog.store import StoreError, fetch_stored
from moodtune.emotion.bundle import BundleError, load_bundle
from moodtune.settings import Settings

REGION = "ap-northeast-2"
_LOOKUP = 1000


def songs_table(args: argparse.Namespace) -> Any:
    """SongsTable in AWS (``--aws``) or at a local endpoint with dummy credentials."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION
    if args.aws:
        return boto3.resource("dynamodb", region_name=region).Table(args.table)
    return boto3.resource(
        "dynamodb",
        endpoint_url=args.endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).Table(args.table)


def check(args: argparse.Namespace) -> int:
    """Exit 0 when every valid catalog song is stored under the bundle's version with its current hash."""
    bundle = load_bundle(args.model_dir, verify_hashes=False)
    model_version = bundle.model_version
    settings = IngestSettings()
    rules = settings.lyrics_options(bundle.lines_per_chunk)
    is_known = None
    if rules.filter_unknown_english:
        # Which lines survive the filter depends on the bundle's vocabulary, as in SongScorer.
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise BundleError(f"{bundle.tokenizer_path}: not a tokenizers file ({exc})") from None
        is_known = vocabulary_check(tokenizer)
    expected: dict[str, str] = {}
    skipped = lyricless = 0
    for parsed in read_catalog_file(args.catalog, max_lyrics_bytes=settings.max_lyrics_bytes):
        if not isinstance(parsed, CatalogEntry):
            skipped += 1
        elif not prepare_lyrics(parsed.song.lyrics, rules, is_known).chunks:
            lyricless += 1  # ingest rejects it and never writes it
        else:
            expected[parsed.song.song_id] = content_hash(parsed.song, rules)
    table = songs_table(args)
    ids = sorted(expected)
    stored: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), _LOOKUP):
        stored.update(fetch_stored(table, model_version, ids[start : start + _LOOKUP]))
    missing = [i for i in ids if i not in stored]
    stale = [i for i in ids if i in stored and stored[i][0] != expected[i]]
    print(
        f"model_version {model_version}: {len(ids):,} catalog songs ({skipped:,} invalid lines and "
        f"{lyricless:,} songs without a lyric line not counted)"
    )
    print(f"  stored with the current hash: {len(ids) - len(missing) - len(stale):,}")
    print(f"  missing: {len(missing):,}{'  e.g. ' + ', '.join(missing[:5]) if missing else ''}")
    examples = "  e.g. " + ", ".join(stale[:5]) if stale else ""
    print(f"  stale (catalog or rules changed): {len(stale):,}{examples}")
    if missing or stale:
        print("NOT READY: let the ingest queue drain (or run `moodtune ingest`), then check again")
        return 1
    print(f"READY: deploy RecommendFunction with this bundle (ModelDir={args.model_dir})")
    return 0


def prune(args: argparse.Namespace) -> int:
    """Delete every SongsTable item of one model version (paginated keys-only Query + batch deletes)."""
    if not args.yes:
        print(
            f"this deletes every song of {args.model_version} from {args.table}; add --yes", file=sys.stderr
        )
        return 2
    table = songs_table(args)
    paginator = table.meta.client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table.name,
        KeyConditionExpression=Key("model_version").eq(args.model_version),
        ProjectionExpression="model_version, song_id",
    )
    deleted = 0
    with table.batch_writer() as batch:
        for page in pages:
            for key in page.get("Items", []):
                batch.delete_item(Key={"model_version": key["model_version"], "song_id": key["song_id"]})
                deleted += 1
    print(f"deleted {deleted:,} songs of {args.model_version} from {table.name}")
    return 0


_BARE_VALUE = re.compile(r"^[A-Za-z0-9._/:@+-]*$")


def deploy_overrides(
    samconfig: Path,
    config_env: str,
    bundle: Path,
    ingest_bundle: Path,
    previous_version: str | None = None,
) -> str:
    """The environment's ``parameter_overrides`` with the two bundles and the served model version set
    (and ``PreviousModelVersion``, the dashboard's comparison, when given).

    ``--parameter-overrides`` on the command line replaces samconfig.toml's list, so it starts from that
    list; ``CurrentModelVersion`` (the dashboard's satisfaction widget) is the served bundle's version.
    """
    try:
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise OSError(f"{samconfig}: not TOML ({exc})") from None
    if config_env not in config:
        known = ", ".join(sorted(k for k, v in config.items() if isinstance(v, dict)))
        raise OSError(f"{samconfig}: no environment [{config_env}] (known: {known})")
    own = config[config_env].get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    values: dict[str, str] = {}
    for token in shlex.split(own if isinstance(own, str) else " ".join(own)):
        key, sep, value = token.partition("=")
        if not sep:
            raise OSError(f"{samconfig}: [{config_env}] parameter_overrides: {token!r} is not Key=Value")
        values[key] = value
    values["ModelDir"] = str(bundle)
    values["IngestModelDir"] = str(ingest_bundle)
    values["CurrentModelVersion"] = load_bundle(bundle, verify_hashes=False).model_version
    load_bundle(ingest_bundle, verify_hashes=False)  # a typo fails here, not after a long build
    if previous_version:
        values["PreviousModelVersion"] = previous_version
    return " ".join(
        f"{k}={v}" if _BARE_VALUE.match(v) else f'{k}="{v.replace(chr(34), chr(92) + chr(34))}"'
        for k, v in values.items()
    )


def overrides(args: argparse.Namespace) -> int:
    """Print the ``--parameter-overrides`` of a deploy of ``--bundle`` (and ``--ingest-bundle``)."""
    print(
        deploy_overrides(
            args.samconfig, args.config_env, args.bundle, args.ingest_bundle or args.bundle, args.previous
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.model_switch", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("check", check.__doc__), ("prune", prune.__doc__)):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--table", default=Settings().songs_table, help="SongsTable (env SONGS_TABLE)")
        where = cmd.add_mutually_exclusive_group()
        where.add_argument(
            "--endpoint-url",
            default=os.environ.get("AWS_ENDPOINT_URL")
            or f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}",
        )
        where.add_argument("--aws", action="store_true", help="AWS itself (credentials from the environment)")
        if name == "check":
            cmd.add_argument("--model-dir", type=Path, required=True, help="the NEW bundle")
            cmd.add_argument("--catalog", type=Path, required=True, help="the catalog that was ingested")
        else:
            cmd.add_argument("--model-version", required=True, help="the OLD version to delete")
            cmd.add_argument("--yes", action="store_true", help="really delete")
    cmd = sub.add_parser("overrides", help=overrides.__doc__)
    cmd.add_argument("--bundle", type=Path, required=True, help="the bundle RecommendFunction serves")
    cmd.add_argument(
        "--ingest-bundle", type=Path, help="the bundle IngestFunction scores with (default: --bundle)"
    )
    cmd.add_argument("--previous", help="PreviousModelVersion: the version the switch replaces")
    cmd.add_argument("--config-env", default="default", help="samconfig.toml environment (%(default)s)")
    cmd.add_argument("--samconfig", type=Path, default=Path("samconfig.toml"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"check": check, "prune": prune, "overrides": overrides}
    try:
        return commands[args.command](args)
    except (BundleError, OSError, StoreError) as exc:
        print(f"model_switch: error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"model_switch: error: {args.table}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
