"""Publishing a catalog snapshot: SongsTable (the system of record) -> the snapshot bucket.

Ingestion is complete for publishing when the ingest queue is drained: no message waiting, in
flight or delayed (``pending_messages``). The scheduled publisher checks that first; a publish by
hand (``moodtune catalog publish``) may skip it. Publishing writes nothing when the snapshot is
unchanged, and refuses to replace a catalog with an empty one.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from moodtune.catalog.snapshot import Objects, publish_snapshot
from moodtune.catalog.store import read_columns

logger = logging.getLogger(__name__)

_QUEUE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class PublishReport:
    """What a publish did: ``published`` is False when the pointer already named this snapshot, or
    when ``skipped`` says why nothing was read or written."""

    model_version: str
    songs: int = 0
    snapshot: str = ""
    published: bool = False
    bytes: int = 0
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pending_messages(sqs: Any, queue_url: str) -> int:
    """Messages of the ingest queue still waiting, in flight or delayed (approximate, as SQS counts)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(_QUEUE_COUNTS))
    return sum(int(attributes["Attributes"].get(name, 0)) for name in _QUEUE_COUNTS)


def publish_catalog(table: Any, objects: Objects, model_version: str) -> PublishReport:
    """Read ``model_version``'s partition of SongsTable and publish it as the current snapshot."""
    columns = read_columns(table, model_version)
    if len(columns) == 0:
        logger.warning("no songs under model version %s: nothing published", model_version)
        return PublishReport(model_version, skipped="no songs")
    pointer, changed = publish_snapshot(objects, model_version, columns)
    size = sum(int(entry["bytes"]) for entry in pointer.files.values())
    logger.info(
        "catalog snapshot %s",
        "published" if changed else "unchanged",
        extra={"model_version": model_version, "songs": len(columns), "snapshot": pointer.snapshot},
    )
    return PublishReport(model_version, len(columns), pointer.snapshot, changed, size)
