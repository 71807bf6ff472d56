"""``moodtune catalog publish``: SongsTable's partition of a model version -> its catalog snapshot.

The same code as CatalogPublisherFunction (``moodtune.catalog.publish``) from a shell, against the
local stack (default) or AWS (``--aws``). By hand it does not wait for the ingest queue to drain.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console

from moodtune_cli.commands import CliError, command, print_json


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="catalog_action", required=True, metavar="ACTION")
    publish = actions.add_parser(
        "publish", help="write the catalog snapshot that serving reads (files first, pointer last)"
    )
    version = publish.add_mutually_exclusive_group()
    version.add_argument("--model-version", help="the partition to publish (default: the bundle's)")
    version.add_argument("--model-dir", help="bundle whose model version to publish (default: env MODEL_DIR)")
    publish.add_argument("--table", help="SongsTable name (default: env SONGS_TABLE, moodtune-songs-local)")
    publish.add_argument(
        "--bucket", help="snapshot bucket (default: env SNAPSHOT_BUCKET, moodtune-snapshots-local)"
    )
    target = publish.add_mutually_exclusive_group()
    target.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL")
        or f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}",
        help="local AWS endpoint (env AWS_ENDPOINT_URL; default: the local stack, %(default)s)",
    )
    target.add_argument("--aws", action="store_true", help="AWS itself (credentials from the environment)")
    publish.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "ap-northeast-2"))


def _clients(args: argparse.Namespace) -> tuple[Any, Any]:
    """DynamoDB resource and S3 client; a local endpoint gets dummy credentials, never a real account's."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=60)
    where: dict[str, Any] = {"region_name": args.region, "config": config}
    if not args.aws:
        where.update(
            endpoint_url=args.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )
    return boto3.resource("dynamodb", **where), boto3.client("s3", **where)


@command("catalog", "catalog snapshots: `moodtune catalog publish`", _configure)
def run_catalog(args: argparse.Namespace, console: Console) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from moodtune.catalog.objects import S3Objects
    from moodtune.catalog.publish import publish_catalog
    from moodtune.emotion.bundle import BundleError, load_bundle
    from moodtune.settings import Settings

    defaults = Settings()
    model_version = args.model_version
    if not model_version:
        try:
            model_version = load_bundle(args.model_dir or defaults.model_dir).model_version
        except BundleError as exc:
            raise CliError(str(exc)) from None
    dynamodb, s3 = _clients(args)
    table_name, bucket = args.table or defaults.songs_table, args.bucket or defaults.snapshot_bucket
    try:
        report = publish_catalog(dynamodb.Table(table_name), S3Objects(s3, bucket), model_version)
    except ValueError as exc:
        raise CliError(f"{table_name}: {exc}") from None
    except (ClientError, BotoCoreError) as exc:
        raise CliError(
            f"publishing {model_version} from {table_name} to s3://{bucket} failed ({exc}); "
            "the previous snapshot stays current: run it again"
        ) from None
    print_json(console, report.as_dict())
    return 0 if report.songs else 1


COMMANDS = (run_catalog,)
