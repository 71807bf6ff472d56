"""The model-version switch: is the new version's catalog complete, and removing an old version's songs.

    python -m infra.model_switch check --model-dir models/v2 --catalog catalog.jsonl [--aws]
    python -m infra.model_switch prune --model-version demo-0123456789ab --yes [--aws]

(without --aws: the local endpoint, --endpoint-url or AWS_ENDPOINT_URL or http://127.0.0.1:MOTO_PORT)

``check`` is the gate between the two deploys of docs/ingestion.md: it reads the bundle's model_version
(no inference), computes every valid catalog song's content hash with the ingest rules (the INGEST_*
environment, as IngestFunction has it) and looks each song up under that version in SongsTable. Exit
status 0 only when every song is stored with its current hash: then RecommendFunction may be moved to
the bundle. ``prune`` deletes one model version's partition (after the rollback window has passed).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from moodtune.bundle import BundleError, load_bundle
from moodtune.ingest import CatalogEntry, IngestSettings, content_hash, fetch_stored, read_catalog_file
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
    model_version = load_bundle(args.model_dir, verify_hashes=False).model_version
    rules = IngestSettings().lyrics_options()
    expected: dict[str, str] = {}
    skipped = 0
    for parsed in read_catalog_file(args.catalog, max_lyrics_bytes=IngestSettings().max_lyrics_bytes):
        if isinstance(parsed, CatalogEntry):
            expected[parsed.song.song_id] = content_hash(parsed.song, rules)
        else:
            skipped += 1
    table = songs_table(args)
    ids = sorted(expected)
    stored: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), _LOOKUP):
        stored.update(fetch_stored(table, model_version, ids[start : start + _LOOKUP]))
    missing = [i for i in ids if i not in stored]
    stale = [i for i in ids if i in stored and stored[i][0] != expected[i]]
    print(
        f"model_version {model_version}: {len(ids):,} catalog songs ({skipped:,} invalid lines not counted)"
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return check(args) if args.command == "check" else prune(args)
    except (BundleError, OSError) as exc:
        print(f"model_switch: error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"model_switch: error: {args.table}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
