"""Feedback export: FeedbackTable's feedback as gzip JSONL in S3, one object per day, exactly once.

Layout: ``s3://<bucket>/feedback/dt=YYYY-MM-DD/feedback-YYYY-MM-DD.jsonl.gz``, one row per feedback
(one song of one recommendation), the day being the UTC date of the feedback's own ``at``.

Why this is exactly once by construction (docs/architecture.md, "Feedback export", has the long form):

* A day is ONE object under a key that depends only on the day, and S3 replaces an object
  atomically, so a reader sees a day whole or not at all, and writing a day again can never add a
  second copy of anything. The write is conditional on the object read for the merge (If-Match its
  ETag, If-None-Match "*" when there was none): if another run (a hand export next to the schedule)
  wrote the day in between, the write is refused and the day is read, merged and written again, so
  neither run's rows are lost. ExportFeedbackFunction also runs one at a time (reserved concurrency 1).
* The object is the merge of what is already there and what the table says now, keyed by
  (recommendation_id, song_id): rows the table still has are refreshed, rows the table no longer has
  (TTL expiry, or the same song rated again on a later day) are kept, and the serialisation is
  canonical (sorted rows, fixed field order, gzip with mtime 0), so re-running a day writes the same
  bytes; an unchanged day is not written at all (no new object version).
* The rows of day D are the feedback entries whose own ``at`` falls on D. The sparse GSI
  ``ByFeedbackDay`` files a recommendation under the day of its LATEST feedback, and that day only
  ever moves forward, so those entries are found in the GSI partitions D..today: every export reads
  the partitions from its first day up to today, each once. A record that gets new feedback during
  the run moves to the partition of the day it is given, so after the reads the clock is read again
  and the partitions of any day that began meanwhile are read too (a run that crosses midnight).
* A scheduled run starts after the watermark (``state/export-feedback.json``: the last day that was
  complete when a run succeeded) and re-exports at most ``max_days_per_run`` days from there (up to
  today); the watermark moves only after every one of those days was written, to the last of them
  that is complete, so a long outage is caught up a window at a time, each run making progress. A
  crash anywhere leaves the watermark where it was, and the next run redoes those days, losing
  nothing and duplicating nothing. Late arrivals (a write that
  straddles midnight, index lag) land in a day that is still open and are picked up by the next run.

Entries that cannot make a valid row (a missing field, an unknown model version, a song that is not
in the recommendation) are counted by reason and reported, never exported and never fatal.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pydantic import ValidationError

from moodtune.feedback.rows import (
    DEFAULT_PREFIX,
    FeedbackRow,
    build_row,
    day_key,
    decode_lines,
    encode_rows,
    entries_of,
    feedback_day,
    parse_rows,
    problem_reason,
)
from moodtune.settings import Settings

logger = logging.getLogger(__name__)

INDEX_NAME = "ByFeedbackDay"
STATE_KEY = "state/export-feedback.json"
CONTENT_TYPE = "application/gzip"

# Throttling and 5xx answers are retried with backoff before a run gives up (and the next run redoes it).
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)
# Days a scheduled run exports at most (EXPORT_MAX_DAYS_PER_RUN's default: 31, the first run's window of
# initial_days + 1).
MAX_DAYS_PER_RUN: int = Settings.model_fields["export_max_days_per_run"].default
# Read-merge-write attempts of one day's object while other writers keep changing it.
WRITE_ATTEMPTS = 5
# S3's answers to a conditional PutObject whose condition no longer holds (409: a concurrent
# conditional write to the same key is in flight).
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


class ExportError(Exception):
    """A request the export cannot carry out (bad dates, missing bucket): one clear message."""


# ---------------------------------------------------------------- reading an export back


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix)."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if not match:
        raise ExportError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
    return match.group(1), match.group(2)


def read_export(
    source: str | Path, *, s3_client: Any = None, problems: Counter[str] | None = None
) -> list[FeedbackRow]:
    """Every valid row of an export: a local directory (searched for ``*.jsonl.gz``), one file, or an
    ``s3://bucket/prefix``. Invalid rows are counted in ``problems``; unreadable objects raise ExportError.
    Rows are returned as stored; apply ``latest_feedback`` to count each feedback once."""
    problems = problems if problems is not None else Counter()
    rows: list[FeedbackRow] = []
    for name, data in _export_objects(str(source), s3_client):
        try:
            rows.extend(parse_rows(decode_lines(data), problems))
        except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
            raise ExportError(f"{name} is not gzip JSONL: {exc}") from None
    return rows


def _export_objects(source: str, s3_client: Any) -> Iterator[tuple[str, bytes]]:
    if source.startswith("s3://"):
        bucket, prefix = parse_s3_url(source)
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        try:
            for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith((".jsonl.gz", ".jsonl")):
                        body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                        yield f"s3://{bucket}/{obj['Key']}", body
        except ClientError as exc:
            raise ExportError(f"cannot read {source}: {exc.response.get('Error', {}).get('Code')}") from None
        except BotoCoreError as exc:
            raise ExportError(f"cannot read {source}: {exc}") from None
        return
    path = Path(source)
    if path.is_file():
        yield str(path), path.read_bytes()
    elif path.is_dir():
        for file in sorted([*path.rglob("*.jsonl.gz"), *path.rglob("*.jsonl")]):
            yield str(file), file.read_bytes()
    else:
        raise ExportError(f"{source} is neither a directory, a file nor an s3:// URL")


# ---------------------------------------------------------------- the export run


@dataclass(frozen=True)
class DayResult:
    """What a run did with one day."""

    day: date
    key: str
    rows: int  # rows in the day's object after this run
    fresh: int  # of which read from the table in this run
    written: bool  # False: the object already held exactly these bytes (or the day has no rows)


@dataclass
class ExportResult:
    """What a run did: the days, the rows, and the entries it could not export (counts by reason)."""

    since: date
    until: date
    days: list[DayResult] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)
    partitions_read: int = 0
    items_read: int = 0
    watermark: date | None = None
    more: bool = False  # a scheduled run stopped at max_days_per_run: days after ``until`` are pending

    @classmethod
    def combine(cls, results: list[ExportResult]) -> ExportResult:
        """Consecutive runs (the handler catching up a window at a time) as one result."""
        first, last = results[0], results[-1]
        total = cls(since=first.since, until=last.until, watermark=last.watermark, more=last.more)
        for r in results:
            total.days.extend(r.days)
            total.problems.update(r.problems)
            total.partitions_read += r.partitions_read
            total.items_read += r.items_read
        return total

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.days)

    @property
    def fresh(self) -> int:
        return sum(d.fresh for d in self.days)

    @property
    def rejected(self) -> int:
        return sum(self.problems.values())

    def summary(self) -> dict[str, Any]:
        """The run as a JSON-able dict (the handler's answer, the CLI's --json)."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "rows": self.rows,
            "fresh": self.fresh,
            "rejected": self.rejected,
            "problems": dict(sorted(self.problems.items())),
            "partitions_read": self.partitions_read,
            "items_read": self.items_read,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "more": self.more,
            "days": [
                {
                    "day": d.day.isoformat(),
                    "key": d.key,
                    "rows": d.rows,
                    "fresh": d.fresh,
                    "written": d.written,
                }
                for d in self.days
            ],
        }


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class FeedbackExporter:
    """Exports FeedbackTable's feedback to S3 (clients: boto3 ``dynamodb`` and ``s3`` clients)."""

    def __init__(
        self,
        dynamodb_client: Any,
        s3_client: Any,
        *,
        table_name: str,
        bucket: str,
        prefix: str = DEFAULT_PREFIX,
        initial_days: int = 30,
        settle: timedelta = timedelta(minutes=15),
        max_days: int = 400,
        max_days_per_run: int = MAX_DAYS_PER_RUN,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not bucket:
            raise ExportError("no export bucket: set EXPORT_BUCKET (or pass --bucket)")
        if max_days_per_run < 1:
            raise ExportError(f"max_days_per_run must be at least 1, got {max_days_per_run}")
        self.dynamodb = dynamodb_client
        self.s3 = s3_client
        self.table_name = table_name
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.initial_days = initial_days
        self.settle = settle
        self.max_days = max_days
        self.max_days_per_run = max_days_per_run
        self.clock = clock
        self._deserializer = TypeDeserializer()

    # -------------------------------------------------------- entry points

    def export_days(self, since: date, until: date | None = None) -> ExportResult:
        """Export the days ``since``..``until`` (default: today, UTC). Does not move the watermark."""
        today = self.clock().astimezone(UTC).date()
        until = until or today
        if since > until:
            raise ExportError(f"since {since} is after until {until}")
        if until > today:
            raise ExportError(f"until {until} is in the future (today is {today} UTC)")
        if (until - since).days + 1 > self.max_days:
            raise ExportError(f"{since}..{until} is more than {self.max_days} days; export it in parts")
        return self._run(since, until, today)

    def export_pending(self) -> ExportResult:
        """The scheduled run: the days after the watermark up to today, at most ``max_days_per_run`` of
        them; then move the watermark to the last of those days that is complete (ended at least
        ``settle`` ago). ``result.more`` says that days after the window are still pending."""
        now = self.clock().astimezone(UTC)
        today = now.date()
        watermark = self.read_watermark()
        since = watermark + timedelta(days=1) if watermark else today - timedelta(days=self.initial_days)
        until = min(today, since + timedelta(days=self.max_days_per_run - 1))
        result = self._run(since, until, today)
        result.more = until < today
        complete_through = min((now - self.settle).date() - timedelta(days=1), until)
        if watermark is None or complete_through > watermark:
            self.write_watermark(complete_through, now)
            result.watermark = complete_through
        else:
            result.watermark = watermark
        return result

    # -------------------------------------------------------- the work

    def _run(self, since: date, until: date, today: date) -> ExportResult:
        result = ExportResult(since=since, until=until)
        by_day: dict[date, dict[tuple[str, str], FeedbackRow]] = {d: {} for d in _days(since, until)}
        # An entry of day D sits in the partition of its record's latest feedback, which is D or later.
        # Feedback given during the reads moves its record to the partition of the day it is given:
        # while the clock shows a day whose partition was not read, read it too (a run past midnight).
        first, last = since, today
        while first <= last:
            for partition in _days(first, last):
                result.partitions_read += 1
                for item in self._partition_items(partition):
                    result.items_read += 1
                    for song_id, entry in entries_of(item):
                        self._collect(item, song_id, entry, by_day, result.problems)
            first, last = last + timedelta(days=1), max(last, self.clock().astimezone(UTC).date())
        for day, rows in by_day.items():
            result.days.append(self._write_day(day, rows, result.problems))
        if result.problems:
            logger.warning(
                "feedback entries not exported", extra={"problems": dict(sorted(result.problems.items()))}
            )
        return result

    def _partition_items(self, day: date) -> Iterator[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            IndexName=INDEX_NAME,
            KeyConditionExpression="feedback_day = :day",
            ExpressionAttributeValues={":day": {"S": day.isoformat()}},
        )
        for page in pages:
            for raw in page.get("Items", []):
                yield {k: self._deserializer.deserialize(v) for k, v in raw.items()}

    @staticmethod
    def _collect(
        item: Mapping[str, Any],
        song_id: str,
        entry: Any,
        by_day: dict[date, dict[tuple[str, str], FeedbackRow]],
        problems: Counter[str],
    ) -> None:
        at = entry.get("at") if isinstance(entry, Mapping) else None
        try:
            day = feedback_day(at) if isinstance(at, str) else None
        except ValueError:
            day = None
        if day is None:
            problems["invalid:feedback_at"] += 1
            return
        if day not in by_day:
            return  # another day's row (before ``since``): the run that covers that day exports it
        try:
            row = build_row(item, song_id, entry)
        except ValidationError as exc:
            problems[problem_reason(exc)] += 1
            return
        by_day[day][row.key] = row

    def _write_day(
        self, day: date, fresh: dict[tuple[str, str], FeedbackRow], problems: Counter[str]
    ) -> DayResult:
        """Merge the day's object with ``fresh`` and write it, conditional on the object merged with;
        when another writer got there first, read and merge again (``WRITE_ATTEMPTS`` times)."""
        key = day_key(day, self.prefix)
        for _ in range(WRITE_ATTEMPTS):
            existing_bytes, etag = self._get_with_etag(key)
            seen: Counter[str] = Counter()  # counted once, from the attempt that is kept
            merged: dict[tuple[str, str], FeedbackRow] = {}
            if existing_bytes is not None:
                try:
                    for row in parse_rows(decode_lines(existing_bytes), seen):
                        merged[row.key] = row
                except (OSError, EOFError, UnicodeDecodeError, ValueError):
                    seen["unreadable_existing_object"] += 1
                    logger.warning("existing export object unreadable; rewriting it", extra={"key": key})
            merged.update(fresh)
            if not merged:
                return DayResult(day=day, key=key, rows=0, fresh=0, written=False)
            data = encode_rows(merged.values())
            if data == existing_bytes:
                problems.update(seen)
                return DayResult(day=day, key=key, rows=len(merged), fresh=len(fresh), written=False)
            condition = {"IfMatch": etag} if existing_bytes is not None else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=CONTENT_TYPE,
                    Metadata={"rows": str(len(merged)), "format": "moodtune-feedback-v1"},
                    **condition,
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                # NoSuchKey under If-Match: the object merged with was deleted meanwhile.
                if code in _CONFLICT_CODES or ("IfMatch" in condition and code in {"NoSuchKey", "404"}):
                    logger.info("day object changed while merging; merging again", extra={"key": key})
                    continue
                raise
            problems.update(seen)
            return DayResult(day=day, key=key, rows=len(merged), fresh=len(fresh), written=True)
        raise ExportError(
            f"{key}: changed by another writer on each of {WRITE_ATTEMPTS} attempts; the next run redoes it"
        )

    def _get_with_etag(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None, None
            raise
        return answer["Body"].read(), answer["ETag"]

    def _get(self, key: str) -> bytes | None:
        return self._get_with_etag(key)[0]

    # -------------------------------------------------------- the watermark

    def read_watermark(self) -> date | None:
        """The last day known complete, or None before the first scheduled run."""
        data = self._get(STATE_KEY)
        if data is None:
            return None
        try:
            return date.fromisoformat(json.loads(data)["complete_through"])
        except (ValueError, KeyError, TypeError):
            logger.warning(
                "export state unreadable; starting from the initial window", extra={"key": STATE_KEY}
            )
            return None

    def write_watermark(self, complete_through: date, now: datetime) -> None:
        """Record that every day up to ``complete_through`` is exported and complete."""
        body = {"complete_through": complete_through.isoformat(), "updated_at": now.isoformat()}
        self.s3.put_object(
            Bucket=self.bucket,
            Key=STATE_KEY,
            Body=json.dumps(body, sort_keys=True).encode(),
            ContentType="application/json",
        )


def exporter_from_env(
    *,
    dynamodb_client: Any = None,
    s3_client: Any = None,
    bucket: str | None = None,
    table: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FeedbackExporter:
    """An exporter configured from the environment (FEEDBACK_TABLE, EXPORT_BUCKET, EXPORT_*)."""
    import boto3

    from moodtune.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise ExportError(f"{str(error['loc'][0]).upper()}: {error['msg']}") from None
    return FeedbackExporter(
        dynamodb_client or boto3.client("dynamodb", config=AWS_CONFIG),
        s3_client or boto3.client("s3", config=AWS_CONFIG),
        table_name=table or settings.feedback_table,
        bucket=bucket if bucket is not None else settings.export_bucket,
        initial_days=settings.export_initial_days,
        settle=timedelta(minutes=settings.export_settle_minutes),
        max_days_per_run=settings.export_max_days_per_run,
        **({"clock": clock} if clock else {}),
    )


# ---------------------------------------------------------------- by hand (``moodtune export-feedback``)

LOCAL_BUCKET = "moodtune-exports-local"
REGION = "ap-northeast-2"


def resolve_endpoint(explicit: str | None, use_aws: bool, environ: Mapping[str, str]) -> str | None:
    """Where a command-line run talks to (as ``moodtune ingest``): AWS itself with ``--aws`` (None),
    else ``explicit``, else AWS_ENDPOINT_URL, else the local stack (``make demo``) on MOTO_PORT."""
    if use_aws:
        return None
    return (
        explicit or environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{environ.get('MOTO_PORT', '5000')}"
    )


def aws_clients(endpoint_url: str | None, environ: Mapping[str, str]) -> tuple[Any, Any]:
    """(dynamodb, s3) clients. A local endpoint gets dummy credentials, never a real account's."""
    import boto3

    options: dict[str, Any] = {
        "region_name": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or REGION,
        "config": AWS_CONFIG,
    }
    if endpoint_url:
        options.update(
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )
    return boto3.client("dynamodb", **options), boto3.client("s3", **options)


def export_by_hand(
    since: date,
    until: date | None,
    *,
    bucket: str | None,
    table: str | None,
    endpoint_url: str | None,
    environ: Mapping[str, str],
) -> ExportResult:
    """``moodtune export-feedback``: export ``since``..``until`` against ``endpoint_url`` (None: AWS).

    On a local endpoint a missing bucket is created (the local stack's default is ``LOCAL_BUCKET``);
    in AWS the bucket is the stack's ExportBucket. Every AWS failure becomes one ``ExportError`` line.
    """
    dynamodb, s3 = aws_clients(endpoint_url, environ)
    where = endpoint_url or "AWS"
    bucket = bucket or environ.get("EXPORT_BUCKET") or (LOCAL_BUCKET if endpoint_url else "")
    exporter = exporter_from_env(dynamodb_client=dynamodb, s3_client=s3, bucket=bucket, table=table)
    try:
        if endpoint_url:
            try:
                s3.head_bucket(Bucket=exporter.bucket)
            except ClientError:
                s3.create_bucket(
                    Bucket=exporter.bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
                )
        return exporter.export_days(since, until)
    except EndpointConnectionError:
        raise ExportError(
            f"cannot reach {where}: start the local stack with `make demo`, or pass --aws for AWS itself"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code == "ResourceNotFoundException":
            raise ExportError(
                f"no table {exporter.table_name!r} at {where}: pass --table (or set FEEDBACK_TABLE)"
            ) from None
        if code == "NoSuchBucket":
            raise ExportError(
                f"no bucket {exporter.bucket!r} at {where}: pass --bucket (or set EXPORT_BUCKET; "
                "in AWS the stack output ExportBucketName)"
            ) from None
        raise ExportError(f"{where}: {code}: {exc.response.get('Error', {}).get('Message', '')}") from None
    except BotoCoreError as exc:
        raise ExportError(f"{where}: {exc}") from None
