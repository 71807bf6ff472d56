"""SongsTable, the catalog's system of record: one model version's partition read and written with boto3."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from boto3.dynamodb.conditions import Key

from moodtune.catalog.songs import Catalog, CatalogColumns, ScoredSong, song_to_item

_GET_BATCH = 100  # BatchGetItem's cap on keys per request


def load_catalog(table: Any, model_version: str, page_size: int | None = None) -> Catalog:
    """Read one model version's songs from SongsTable (a boto3 Table) with one paginated Query.

    ``page_size`` caps items per page (DynamoDB's own cap is 1 MB per page); None leaves it to DynamoDB.
    """
    paginator = table.meta.client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table.name,
        KeyConditionExpression=Key("model_version").eq(model_version),
        PaginationConfig={"PageSize": page_size} if page_size else {},
    )
    items = [item for page in pages for item in page.get("Items", [])]
    return Catalog.from_items(model_version, items)


def read_columns(table: Any, model_version: str) -> CatalogColumns:
    """One model version's songs as snapshot columns (``catalog.snapshot``), page by page: the
    publisher's read, which keeps column lists rather than one object per song."""
    paginator = table.meta.client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table.name, KeyConditionExpression=Key("model_version").eq(model_version)
    )
    return CatalogColumns.from_items(item for page in pages for item in page.get("Items", []))


def write_songs(table: Any, model_version: str, songs: Iterable[ScoredSong]) -> int:
    """Write songs to SongsTable with ``batch_writer`` (which resends unprocessed items); returns the count.

    Rewriting a song replaces its item, so re-running a load duplicates nothing.
    """
    count = 0
    with table.batch_writer(overwrite_by_pkeys=["model_version", "song_id"]) as batch:
        for song in songs:
            batch.put_item(Item=song_to_item(model_version, song))
            count += 1
    return count


class StoreError(RuntimeError):
    """SongsTable kept refusing part of a request after the retries (throttling that does not pass)."""


def fetch_stored(table: Any, model_version: str, song_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """song_id -> (content_hash, dominant) of the given songs already stored under ``model_version``.

    ``table`` is a boto3 resource Table (its client speaks plain Python values). BatchGetItem in slices
    of 100 keys; unprocessed keys are asked again with a growing pause; ``StoreError`` when some are
    still unprocessed after 8 attempts.
    """
    client = table.meta.client
    stored: dict[str, tuple[str, str]] = {}
    for start in range(0, len(song_ids), _GET_BATCH):
        request: dict[str, Any] = {
            table.name: {
                "Keys": [
                    {"model_version": model_version, "song_id": song_id}
                    for song_id in song_ids[start : start + _GET_BATCH]
                ],
                "ProjectionExpression": "#id, #hash, #dominant",
                "ExpressionAttributeNames": {
                    "#id": "song_id",
                    "#hash": "content_hash",
                    "#dominant": "dominant",
                },
            }
        }
        for attempt in range(8):
            answer = client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table.name, []):
                stored[item["song_id"]] = (item.get("content_hash", ""), item.get("dominant", ""))
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise StoreError(f"{table.name}: BatchGetItem left keys unprocessed after 8 attempts")
    return stored
