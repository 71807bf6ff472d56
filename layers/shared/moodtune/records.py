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

from moodtune.labels import LABELS

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1


class StoreError(Exception):
    """Base class of the store's errors."""


class StoreUnavailable(StoreError):
    """DynamoDB could not be reached or kept failing after retries; the client should retry later."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecommendationNotFound(StoreError):
    """No recommendation has this id (never made, or expired)."""


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


@dataclass(frozen=True)
class RecommendationRecord:
    """One recommendation as it is stored (``text`` is dropped at write time unless STORE_TEXT)."""

    recommendation_id: str
    created_at: datetime
    model_version: str
    mode: str
    dominant: str
    scores: Mapping[str, float]
    songs: Sequence[RecommendedSongRecord]
    text: str | None = field(default=None, repr=False)


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
    throttling and 5xx answers are retried before ``StoreUnavailable`` is raised.
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
            "songs": [
                {"song_id": s.song_id, "similarity": _decimal(s.similarity), "dominant": s.dominant}
                for s in record.songs
            ],
            "feedback": {},
            "expires_at": int((record.created_at + self.retention).timestamp()),
        }
        if record.songs:  # a string set cannot be empty
            item["song_ids"] = {s.song_id for s in record.songs}
        if self.store_text and record.text is not None:
            item["text"] = record.text
        return item

    def put(self, record: RecommendationRecord) -> None:
        """Write the record (one PutItem). Raises ``StoreUnavailable`` when DynamoDB keeps failing."""
        try:
            self.table.put_item(Item=self.to_item(record))
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("put", exc) from exc

    def apply_feedback(
        self, recommendation_id: str, song_id: str, satisfied: bool, now: datetime
    ) -> FeedbackResult:
        """Record feedback on one song of a recommendation with ONE conditional UpdateItem.

        The condition (the record exists and lists the song) is checked by DynamoDB in the same
        write; on failure the old item comes back with the error, which tells the two cases apart.
        Raises ``RecommendationNotFound``, ``SongNotInRecommendation`` or ``StoreUnavailable``.
        """
        at = _iso(now)
        try:
            response = self.table.update_item(
                Key={"recommendation_id": recommendation_id},
                UpdateExpression="SET feedback.#song = :fb, feedback_day = :day, feedback_at = :at",
                ConditionExpression=Attr("recommendation_id").exists() & Attr("song_ids").contains(song_id),
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
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                if "Item" in exc.response:
                    raise SongNotInRecommendation(
                        f"song {song_id!r} is not in recommendation {recommendation_id!r}"
                    ) from None
                raise RecommendationNotFound(f"no recommendation {recommendation_id!r}") from None
            raise self._unavailable("feedback", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("feedback", exc) from exc
        item = response.get("Attributes", {})
        return FeedbackResult(
            recommendation_id=recommendation_id,
            song_id=song_id,
            satisfied=satisfied,
            at=now,
            model_version=str(item.get("model_version", "unknown")),
        )

    def _unavailable(self, operation: str, exc: Exception) -> StoreUnavailable:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "ClientError")
        else:
            code = type(exc).__name__
        logger.error(
            "FeedbackTable %s failed after retries",
            operation,
            extra={"error_code": code, "table": self.table.name},
        )
        return StoreUnavailable(f"the recommendation store is unavailable ({code}); retry later")
