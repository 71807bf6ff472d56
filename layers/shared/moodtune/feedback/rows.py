"""The feedback export's row: FeedbackTable entries -> validated rows -> canonical gzip JSONL, and back.

Pure logic (no boto3): the exporter (``moodtune.feedback.export``), the report and training read and
write rows through these functions.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from moodtune.labels import LABELS

DEFAULT_PREFIX = "feedback/"
MODEL_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
UNKNOWN_MODEL_VERSIONS = frozenset({"unknown", "none", "null"})

Label = Literal["joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral"]


# ---------------------------------------------------------------- the row


class FeedbackRow(BaseModel):
    """One exported feedback row (the export format; ``model_export.train --feedback`` reads it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recommendation_id: str = Field(min_length=1, max_length=128)
    created_at: str
    feedback_at: str
    text: str | None = None
    scores: dict[Label, float]
    dominant: Label
    song_id: str = Field(min_length=1, max_length=256)
    song_dominant: Label
    satisfied: StrictBool
    mode: Literal["distribution", "dominant"]
    model_version: str
    kind: Literal["recommendation", "journey"] = "recommendation"
    step: int | None = Field(default=None, ge=0, description="a journey's step (0 first)")

    @field_validator("created_at", "feedback_at")
    @classmethod
    def _aware_timestamp(cls, value: str) -> str:
        if datetime.fromisoformat(value).tzinfo is None:  # Python 3.11 reads the trailing "Z"
            raise ValueError("timestamp without a time zone")
        return value

    @field_validator("scores")
    @classmethod
    def _seven_scores(cls, scores: dict[str, float]) -> dict[str, float]:
        if set(scores) != set(LABELS):
            raise ValueError(f"scores must have exactly the labels {', '.join(LABELS)}")
        if any(not 0.0 <= p <= 1.0 for p in scores.values()):
            raise ValueError("scores must lie in [0, 1]")
        return {label: scores[label] for label in LABELS}  # label order, whatever the input order

    @field_validator("model_version")
    @classmethod
    def _known_model_version(cls, version: str) -> str:
        if version.strip().lower() in UNKNOWN_MODEL_VERSIONS or not re.match(MODEL_VERSION_PATTERN, version):
            raise ValueError(f"unknown model version {version!r}")
        return version

    @property
    def key(self) -> tuple[str, str]:
        """A feedback's identity: one song of one recommendation."""
        return (self.recommendation_id, self.song_id)

    @property
    def day(self) -> date:
        """The UTC day the feedback was given (the day its row is exported under)."""
        return feedback_day(self.feedback_at)

    def to_json(self) -> str:
        """The row as one canonical JSON line (fixed field order; ``text`` only where stored)."""
        return json.dumps(self.model_dump(exclude_none=True), ensure_ascii=False, separators=(",", ":"))


def feedback_day(timestamp: str) -> date:
    """The UTC date of an ISO 8601 timestamp."""
    return datetime.fromisoformat(timestamp).astimezone(UTC).date()


def problem_reason(exc: ValidationError) -> str:
    """A short, countable reason for the first thing wrong with a row (never the row's content)."""
    error = exc.errors()[0]
    where = str(error["loc"][0]) if error["loc"] else "row"
    if where == "model_version":
        return "unknown_model_version"
    if error["type"] == "missing":
        return f"missing:{where}"
    return f"invalid:{where}"


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals and sets as JSON-able numbers and sorted lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def entries_of(item: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(song_id, feedback entry) of every song of the record that has feedback."""
    feedback = item.get("feedback")
    if isinstance(feedback, Mapping):
        yield from feedback.items()


def build_row(item: Mapping[str, Any], song_id: str, entry: Any) -> FeedbackRow:
    """The export row of one feedback entry of a FeedbackTable item; ``ValidationError`` if it has none."""
    entry = entry if isinstance(entry, Mapping) else {}
    songs = item.get("songs") if isinstance(item.get("songs"), list) else []
    song = next((s for s in songs if isinstance(s, Mapping) and s.get("song_id") == song_id), {})
    raw = {
        "recommendation_id": item.get("recommendation_id"),
        "created_at": item.get("created_at"),
        "feedback_at": entry.get("at"),
        "text": item.get("text"),
        "scores": item.get("scores"),
        "dominant": item.get("dominant"),
        "song_id": song_id,
        "song_dominant": song.get("dominant"),
        "satisfied": entry.get("satisfied"),
        "mode": item.get("mode"),
        "model_version": item.get("model_version"),
        "kind": item.get("kind"),
        "step": song.get("step"),
    }
    return FeedbackRow.model_validate(_plain({k: v for k, v in raw.items() if v is not None}))


# ---------------------------------------------------------------- the object of a day


def day_key(day: date, prefix: str = DEFAULT_PREFIX) -> str:
    """The one S3 key of a day's rows."""
    return f"{prefix}dt={day.isoformat()}/feedback-{day.isoformat()}.jsonl.gz"


def encode_rows(rows: Iterable[FeedbackRow]) -> bytes:
    """Canonical bytes of a day: rows sorted by (feedback_at, recommendation_id, song_id), gzip mtime 0."""
    ordered = sorted(rows, key=lambda r: (r.feedback_at, r.recommendation_id, r.song_id))
    text = "".join(row.to_json() + "\n" for row in ordered)
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def decode_lines(data: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of a gzip JSONL (or plain JSONL) object; a line that is not one raises ValueError."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for number, line in enumerate(io.StringIO(data.decode("utf-8")), start=1):
        if not line.strip():
            continue
        value = json.loads(line)
        if not isinstance(value, dict):
            raise ValueError(f"line {number} is not a JSON object")
        yield value


def parse_rows(objects: Iterable[Mapping[str, Any]], problems: Counter[str]) -> Iterator[FeedbackRow]:
    """Validate exported rows; the ones that fail are counted in ``problems`` by reason and skipped."""
    for value in objects:
        try:
            yield FeedbackRow.model_validate(value)
        except ValidationError as exc:
            problems[problem_reason(exc)] += 1


def latest_feedback(rows: Iterable[FeedbackRow]) -> list[FeedbackRow]:
    """One row per (recommendation_id, song_id): the latest. A song rated again on a later day appears
    in both days' objects (the export keeps what was said when); consumers count the latest once."""
    latest: dict[tuple[str, str], FeedbackRow] = {}
    for row in rows:
        kept = latest.get(row.key)
        if kept is None or (row.feedback_at, row.to_json()) > (kept.feedback_at, kept.to_json()):
            latest[row.key] = row
    return sorted(latest.values(), key=lambda r: (r.feedback_at, r.recommendation_id, r.song_id))
