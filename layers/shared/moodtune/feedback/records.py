"""FeedbackTable: the recommendation record, written when a recommendation is made, and the feedback on it.

Every write here is a single-item PutItem or UpdateItem, which DynamoDB applies atomically: a write
that fails (after botocore's retries) leaves nothing behind, and one that succeeds is whole. Writes
are also idempotent: a retried put rewrites the same item under its fresh random id, and repeating a
feedback sets the same values again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import BotoCoreError, ClientError

from moodtune.errors import StoreError, StoreUnavailable, error_code, store_error
from moodtune.labels import LABELS

logger = logging.getLogger(__name__)


class RecommendationNotFound(StoreError):
    """No recommendation has this id (never made, or expired: past ``expires_at`` even if DynamoDB's
    TTL has not deleted it yet)."""


class SongNotInRecommendation(StoreError):
    """The recommendation exists but did not include this song."""


def new_recommendation_id() -> str:
    """An unguessable id: 16 random bytes, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class RecommendedSongRecord:
    """What the record keeps of each recommended song."""

    song_id: str
    similarity: float
    dominant: str
    step: int | None = None  # a journey's step (0 first); None in a plain recommendation


KINDS = ("recommendation", "journey")


@dataclass(frozen=True)
class RecommendationRecord:
    """One recommendation as it is stored (``text`` is dropped at write time unless STORE_TEXT).

    A journey is stored as a recommendation of ``kind`` "journey" whose songs carry their step and
    whose ``target`` is the mood it heads for, so the feedback route and the export serve both.
    """

    recommendation_id: str
    created_at: datetime
    model_version: str
    mode: str
    dominant: str
    scores: Mapping[str, float]
    songs: Sequence[RecommendedSongRecord]
    text: str | None = field(default=None, repr=False)
    kind: str = "recommendation"
    target: Mapping[str, float] | None = None
    metric: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    """The feedback as recorded."""

    recommendation_id: str
    song_id: str
    satisfied: bool
    at: datetime
    model_version: str


def _decimal(x: float, places: int = 6) -> Decimal:
    return Decimal(str(round(float(x), places)))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RecommendationStore:
    """Reads and writes recommendation records in FeedbackTable (a boto3 Table resource).

    Give the table's resource a botocore retry config (``moodtune.service.DYNAMODB_CONFIG``) so
    throttling and 5xx answers are retried before ``StoreUnavailable`` is raised; errors that no
    retry can clear raise ``StoreFailure``.
    """

    def __init__(self, table: Any, *, store_text: bool, retention_days: int) -> None:
        self.table = table
        self.store_text = store_text
        self.retention = timedelta(days=retention_days)

    def to_item(self, record: RecommendationRecord) -> dict[str, Any]:
        """The FeedbackTable item of ``record`` (docs/architecture.md, "Tables")."""
        item: dict[str, Any] = {
            "recommendation_id": record.recommendation_id,
            "created_at": _iso(record.created_at),
            "model_version": record.model_version,
            "mode": record.mode,
            "dominant": record.dominant,
            "scores": {label: _decimal(record.scores[label]) for label in LABELS},
            "songs": [_song_item(s) for s in record.songs],
            "feedback": {},
            "expires_at": int((record.created_at + self.retention).timestamp()),
        }
        if record.kind != "recommendation":  # items without it are recommendations (older items too)
            item["kind"] = record.kind
        if record.target is not None:
            item["target"] = {label: _decimal(record.target[label]) for label in LABELS}
        if record.metric is not None:
            item["metric"] = record.metric
        if record.songs:  # a string set cannot be empty
            item["song_ids"] = {s.song_id for s in record.songs}
        if self.store_text and record.text is not None:
            item["text"] = record.text
        return item

    def put(self, record: RecommendationRecord) -> None:
        """Write the record (one PutItem). Raises ``StoreUnavailable`` when DynamoDB keeps failing,
        ``StoreFailure`` when it refuses the write."""
        try:
            self.table.put_item(Item=self.to_item(record))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("put", exc) from exc

    def apply_feedback(
        self, recommendation_id: str, song_id: str, satisfied: bool, now: datetime
    ) -> FeedbackResult:
        """Record feedback on one song of a recommendation with ONE conditional UpdateItem.

        The condition (the record exists, has not expired, and lists the song) is checked by
        DynamoDB in the same write; on failure the old item comes back with the error, which tells
        the cases apart. A record past ``expires_at`` is gone as far as the API is concerned, even
        while DynamoDB's TTL (which deletes within days, not at once) still keeps it. A record
        without ``expires_at`` never expires, as DynamoDB's TTL treats it.
        Raises ``RecommendationNotFound``, ``SongNotInRecommendation``, ``StoreUnavailable`` or
        ``StoreFailure``.
        """
        at = _iso(now)
        epoch = int(now.timestamp())
        live = Attr("expires_at").not_exists() | Attr("expires_at").gt(epoch)
        try:
            response = self.table.update_item(
                Key={"recommendation_id": recommendation_id},
                UpdateExpression="SET feedback.#song = :fb, feedback_day = :day, feedback_at = :at",
                ConditionExpression=Attr("recommendation_id").exists()
                & live
                & Attr("song_ids").contains(song_id),
                ExpressionAttributeNames={"#song": song_id},
                ExpressionAttributeValues={
                    ":fb": {"satisfied": satisfied, "at": at},
                    ":day": now.astimezone(UTC).date().isoformat(),
                    ":at": at,
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                old = exc.response.get("Item")
                if old is None or _expired(old, epoch):
                    raise RecommendationNotFound(f"no recommendation {recommendation_id!r}") from None
                raise SongNotInRecommendation(
                    f"song {song_id!r} is not in recommendation {recommendation_id!r}"
                ) from None
            raise self._error("feedback", exc) from exc
        except BotoCoreError as exc:
            raise self._error("feedback", exc) from exc
        item = response.get("Attributes", {})
        return FeedbackResult(
            recommendation_id=recommendation_id,
            song_id=song_id,
            satisfied=satisfied,
            at=now,
            model_version=str(item.get("model_version", "unknown")),
        )

    def _error(self, operation: str, exc: Exception) -> StoreError:
        error = store_error("the recommendation store", exc)
        logger.error(
            "FeedbackTable %s failed%s",
            operation,
            " after retries" if isinstance(error, StoreUnavailable) else "",
            extra={"error_code": error_code(exc), "table": self.table.name},
        )
        return error


def _song_item(song: RecommendedSongRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "song_id": song.song_id,
        "similarity": _decimal(song.similarity),
        "dominant": song.dominant,
    }
    if song.step is not None:
        item["step"] = song.step
    return item


def _expired(item: Mapping[str, Any], epoch: int) -> bool:
    """Whether a low-level item (as ReturnValuesOnConditionCheckFailure returns it) is past expires_at."""
    raw = item.get("expires_at", {})
    value = raw.get("N") if isinstance(raw, Mapping) else raw
    try:
        return value is not None and int(Decimal(str(value))) <= epoch
    except (ArithmeticError, ValueError):
        return False
