"""The feedback export end to end, over HTTP against the moto server: recommendations and feedback made
through the handlers, exported by ExportFeedbackFunction, read back from S3; re-runs, a crash mid-run,
late arrivals and rows that cannot be exported.

Each test works on its own days (far in the future, so nothing else in the session's table is on them)
and its own bucket.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from rich.console import Console

from moodtune import service
from moodtune.feedback.export import (
    STATE_KEY,
    ExportError,
    FeedbackExporter,
    FeedbackRow,
    decode_lines,
    encode_rows,
    read_export,
)
from moodtune.feedback.records import RecommendationStore
from moodtune_cli import app as cli
from tests.conftest import REGION, LambdaContextStub

pytestmark = pytest.mark.integration


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def s3(local_aws) -> Any:
    return boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name=REGION)


@pytest.fixture
def bucket(s3) -> str:
    name = f"moodtune-export-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


@pytest.fixture
def exporter_for(local_aws) -> Any:
    """An exporter on the session's FeedbackTable, the given bucket and a fixed clock."""

    def make(bucket: str, now: datetime, **kwargs: Any) -> FeedbackExporter:
        dynamodb = boto3.client("dynamodb", endpoint_url=local_aws.endpoint_url, region_name=REGION)
        return FeedbackExporter(
            dynamodb,
            boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name=REGION),
            table_name=local_aws.feedback_table,
            bucket=bucket,
            clock=lambda: now,
            **kwargs,
        )

    return make


class Users:
    """Recommendations and feedback through the two handlers, feedback at a chosen moment."""

    def __init__(self, handlers: Any, invoke: Any, monkeypatch: pytest.MonkeyPatch, table: Any) -> None:
        self.handlers, self.invoke, self.table = handlers, invoke, table
        self.moment = datetime.now(UTC)
        # The feedback handler stamps feedback with datetime.now(UTC): give it our clock.
        monkeypatch.setattr(handlers.feedback, "datetime", SimpleNamespace(now=lambda tz=None: self.moment))
        self.given: dict[tuple[str, str], dict[str, Any]] = {}  # latest feedback per (id, song)
        self.recommendations: dict[str, dict[str, Any]] = {}

    def recommend(self, text: str, mode: str = "distribution") -> dict[str, Any]:
        before = datetime.now(UTC)
        answer = self.invoke(
            self.handlers.recommend, "POST", "/v1/recommendations", {"text": text, "limit": 3, "mode": mode}
        )
        after = datetime.now(UTC)
        assert answer.status == 201, answer.body
        # The tests give feedback on days years ahead (days of their own); a record answers feedback only
        # until its expires_at, so keep these alive until then.
        self.table.update_item(
            Key={"recommendation_id": answer.body["recommendation_id"]},
            UpdateExpression="SET expires_at = :t",
            ExpressionAttributeValues={":t": int(datetime(2040, 1, 1, tzinfo=UTC).timestamp())},
        )
        self.recommendations[answer.body["recommendation_id"]] = {
            **answer.body,
            "text": text,
            "made_between": (before, after),
        }
        return answer.body

    def feedback(self, rec: dict[str, Any], song: int, satisfied: bool, moment: datetime) -> None:
        self.moment = moment
        rid, song_id = rec["recommendation_id"], rec["songs"][song]["song_id"]
        answer = self.invoke(
            self.handlers.feedback,
            "POST",
            f"/v1/recommendations/{rid}/feedback",
            {"song_id": song_id, "satisfied": satisfied},
        )
        assert answer.status == 200, answer.body
        self.given[(rid, song_id)] = {"satisfied": satisfied, "day": moment.date()}


@pytest.fixture
def users(handlers, invoke, monkeypatch, local_aws) -> Users:
    return Users(handlers, invoke, monkeypatch, local_aws.resource().Table(local_aws.feedback_table))


def objects(s3, bucket: str, prefix: str = "feedback/") -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def rows_by_key(data: dict[str, bytes]) -> dict[str, list[FeedbackRow]]:
    return {key: [FeedbackRow.model_validate(v) for v in decode_lines(body)] for key, body in data.items()}


def test_every_feedback_is_exported_exactly_once_under_its_own_day(
    users, s3, bucket, exporter_for, monkeypatch
) -> None:
    d1, d2, d3 = date(2031, 3, 1), date(2031, 3, 2), date(2031, 3, 3)
    r1 = users.recommend("오늘 시험 끝나서 너무 행복해")
    r2 = users.recommend("혼자 남겨진 것 같아 슬퍼")
    r3 = users.recommend("너무 슬퍼서 눈물이 나", mode="dominant")
    users.feedback(r1, 0, True, at(d1, 9))
    users.feedback(r2, 0, False, at(d1, 10))
    users.feedback(r2, 1, True, at(d1, 23, 59))
    users.feedback(r1, 1, False, at(d2, 8))  # r1 moves to d2's index partition
    users.feedback(r3, 0, True, at(d2, 12))
    users.feedback(r2, 2, True, at(d3, 7))  # r2 moves to d3's

    app = importlib.import_module("export_feedback.app")
    monkeypatch.setattr(app, "_exporter", exporter_for(bucket, at(d3, 12)))
    summary = app.lambda_handler({"since": "2031-03-01", "until": "2031-03-03"}, LambdaContextStub())
    assert summary["rows"] == 6 and summary["fresh"] == 6 and summary["rejected"] == 0

    first = objects(s3, bucket)
    assert sorted(first) == [
        f"feedback/dt={d}/feedback-{d}.jsonl.gz" for d in ("2031-03-01", "2031-03-02", "2031-03-03")
    ]
    exported = rows_by_key(first)
    seen = Counter(row.key for rows in exported.values() for row in rows)
    assert seen == Counter(list(users.given))  # every feedback, exactly once
    for key, rows in exported.items():
        for row in rows:
            assert key == f"feedback/dt={row.day}/feedback-{row.day}.jsonl.gz"
            given = users.given[row.key]
            assert (row.satisfied, row.day) == (given["satisfied"], given["day"])
            rec = users.recommendations[row.recommendation_id]
            song = next(s for s in rec["songs"] if s["song_id"] == row.song_id)
            assert row.song_dominant == song["dominant"]
            assert row.text == rec["text"]
            assert row.scores == pytest.approx(rec["emotion"]["scores"], abs=1e-6)
            assert (row.dominant, row.mode, row.model_version) == (
                rec["emotion"]["dominant"],
                rec["mode"],
                rec["model_version"],
            )
            # created_at is the record's own: stamped while its request ran (milliseconds kept).
            made_from, made_to = rec["made_between"]
            created = datetime.fromisoformat(row.created_at)
            assert made_from - timedelta(milliseconds=1) <= created <= made_to

    # The first day alone: its rows now sit in the d2 and d3 partitions, and are still found, by a
    # run into an empty bucket as by a run over the existing object.
    other = f"moodtune-export-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": REGION})
    alone = exporter_for(other, at(d3, 12)).export_days(d1, d1)
    assert alone.fresh == 3 and objects(s3, other) == {k: v for k, v in first.items() if "03-01" in k}
    again = app.lambda_handler({"since": "2031-03-01", "until": "2031-03-01"}, LambdaContextStub())
    assert again["days"] == [{**summary["days"][0], "written": False}]
    # The whole range again: the same objects, byte for byte, and nothing rewritten.
    third = app.lambda_handler({"since": "2031-03-01", "until": "2031-03-03"}, LambdaContextStub())
    assert not any(d["written"] for d in third["days"])
    assert objects(s3, bucket) == first


def test_text_is_left_out_of_rows_whose_record_has_none(users, s3, bucket, exporter_for, monkeypatch) -> None:
    day = date(2031, 3, 10)
    recommend_service = service.get_recommend_service()
    private = RecommendationStore(recommend_service.store.table, store_text=False, retention_days=1)
    monkeypatch.setattr(recommend_service, "store", private)
    rec = users.recommend("말하고 싶지 않은 이야기")
    users.feedback(rec, 0, True, at(day, 12))
    exporter_for(bucket, at(day, 13)).export_days(day)
    (body,) = objects(s3, bucket).values()
    (line,) = decode_lines(body)
    assert "text" not in line and line["recommendation_id"] == rec["recommendation_id"]


@pytest.mark.parametrize(
    ("service_name", "operation", "nth"),
    [("s3", "PutObject", 2), ("dynamodb", "Query", 3)],
    ids=["s3-put-fails", "dynamodb-query-fails"],
)
def test_a_crash_mid_run_then_a_rerun_loses_nothing_and_duplicates_nothing(
    users, s3, exporter_for, service_name, operation, nth
) -> None:
    d1 = date(2031, 4, 1) + timedelta(days=10 * (service_name == "dynamodb"))
    d2, d3 = d1 + timedelta(days=1), d1 + timedelta(days=2)
    recs = [users.recommend(t) for t in ("행복해", "무서워", "화가 나")]
    for i, day in enumerate((d1, d2, d3)):
        users.feedback(recs[i], 0, True, at(day, 10))
        users.feedback(recs[(i + 1) % 3], 1, False, at(day, 11))
    now = at(d3, 6)

    buckets = []
    for _ in range(2):
        name = f"moodtune-export-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        buckets.append(name)
    clean_bucket, crash_bucket = buckets
    exporter_for(clean_bucket, now, initial_days=2).export_pending()
    reference = objects(s3, clean_bucket)
    assert len(reference) == 3

    crashing = exporter_for(crash_bucket, now, initial_days=2)
    client = crashing.s3 if service_name == "s3" else crashing.dynamodb
    calls = Counter()

    def fail_on_nth(**_: Any) -> None:
        calls[operation] += 1
        if calls[operation] == nth:
            raise EndpointConnectionError(endpoint_url="http://unreachable.invalid")

    client.meta.events.register(f"before-call.{service_name}.{operation}", fail_on_nth)
    with pytest.raises(EndpointConnectionError):
        crashing.export_pending()
    # The S3 failure hits day 2's write (day 1 is in place); the DynamoDB one the 3rd partition's read.
    assert len(objects(s3, crash_bucket)) == (1 if service_name == "s3" else 0)
    assert objects(s3, crash_bucket, prefix=STATE_KEY) == {}  # the watermark did not move

    rerun = exporter_for(crash_bucket, now, initial_days=2).export_pending()
    assert rerun.watermark == d2  # d3 is today: still open
    assert objects(s3, crash_bucket) == reference
    exported = Counter(row.key for row in read_export(f"s3://{crash_bucket}/feedback/", s3_client=s3))
    expected = Counter(k for k, v in users.given.items() if d1 <= v["day"] <= d3)
    assert exported == expected and set(exported.values()) == {1}


def test_the_schedule_moves_the_watermark_and_picks_up_late_arrivals(users, s3, bucket, exporter_for) -> None:
    d1, d2 = date(2031, 5, 1), date(2031, 5, 2)
    rec = users.recommend("그냥 평범한 하루였어")
    users.feedback(rec, 0, True, at(d1, 20))
    first = exporter_for(bucket, at(d1, 22), initial_days=0).export_pending()
    assert first.watermark == d1 - timedelta(days=1) and first.rows == 1

    # Written just before midnight, after the export ran: d1 is still open, the next run has it.
    users.feedback(rec, 1, False, at(d1, 23, 59))
    users.feedback(rec, 2, True, at(d2, 0, 5))
    second = exporter_for(bucket, at(d2, 0, 30)).export_pending()
    assert (second.since, second.until, second.watermark) == (d1, d2, d1)
    by_day = {d.day: d.rows for d in second.days}
    assert by_day == {d1: 2, d2: 1}

    third = exporter_for(bucket, at(d2, 18)).export_pending()
    assert third.since == d2 and [d.day for d in third.days] == [d2]
    assert Counter(r.key for r in read_export(f"s3://{bucket}/", s3_client=s3)) == Counter(
        {key: 1 for key in users.given}
    )


def test_a_song_rated_again_on_a_later_day_keeps_both_answers(users, s3, bucket, exporter_for) -> None:
    d1, d2 = date(2031, 6, 1), date(2031, 6, 2)
    rec = users.recommend("너무 슬퍼서 눈물이 나")
    users.feedback(rec, 0, True, at(d1, 9))
    exporter_for(bucket, at(d1, 10)).export_days(d1)
    users.feedback(rec, 0, False, at(d2, 9))  # the table now only knows the second answer
    exporter_for(bucket, at(d2, 10)).export_days(d1, d2)
    exported = rows_by_key(objects(s3, bucket))
    answers = {row.day: row.satisfied for rows in exported.values() for row in rows}
    assert answers == {d1: True, d2: False}  # what was said when; consumers keep the latest


def test_rows_that_cannot_be_exported_are_counted_not_fatal(
    users, local_aws, s3, bucket, exporter_for
) -> None:
    day = date(2031, 7, 1)
    good = users.recommend("오늘 기분 최고야")
    users.feedback(good, 0, True, at(day, 9))
    table = local_aws.resource().Table(local_aws.feedback_table)
    item = table.get_item(Key={"recommendation_id": good["recommendation_id"]}, ConsistentRead=True)["Item"]
    stamp = {"feedback_day": day.isoformat(), "feedback_at": "2031-07-01T10:00:00.000Z"}
    entry = {"satisfied": True, "at": "2031-07-01T10:00:00.000Z"}
    song = good["songs"][0]["song_id"]
    broken = {
        "unknown-version": {**item, "model_version": "unknown", "feedback": {song: entry}},
        "no-scores": {k: v for k, v in item.items() if k != "scores"} | {"feedback": {song: entry}},
        "foreign-song": {**item, "feedback": {"no-such-song": entry}},
        "bad-time": {**item, "feedback": {song: {"satisfied": True, "at": "yesterday"}}},
    }
    for rid, bad in broken.items():
        table.put_item(Item={**bad, **stamp, "recommendation_id": f"{rid}-{uuid.uuid4().hex[:6]}"})
    result = exporter_for(bucket, at(day, 12)).export_days(day)
    assert result.problems == Counter(
        {
            "unknown_model_version": 1,
            "missing:scores": 1,
            "missing:song_dominant": 1,
            "invalid:feedback_at": 1,
        }
    )
    assert result.rows == 1 and result.summary()["rejected"] == 4


def test_bad_requests_are_refused_with_a_clear_message(bucket, exporter_for, monkeypatch) -> None:
    app = importlib.import_module("export_feedback.app")
    exporter = exporter_for(bucket, at(date(2031, 8, 1), 12))
    monkeypatch.setattr(app, "_exporter", exporter)
    with pytest.raises(ExportError, match="since: Input should be a valid date"):
        app.lambda_handler({"since": "yesterday"}, LambdaContextStub())
    with pytest.raises(ExportError, match="'until' needs 'since'"):
        app.lambda_handler({"until": "2031-08-01"}, LambdaContextStub())
    with pytest.raises(ExportError, match="is after"):
        exporter.export_days(date(2031, 8, 1), date(2031, 7, 1))
    with pytest.raises(ExportError, match="in the future"):
        exporter.export_days(date(2031, 8, 1), date(2031, 8, 2))
    with pytest.raises(ExportError, match="more than 400 days"):
        exporter.export_days(date(2029, 1, 1), date(2031, 8, 1))


def test_the_export_feedback_command(users, local_aws, s3, bucket, capsys) -> None:
    rec = users.recommend("오늘 하루 정말 행복했어")
    now = datetime.now(UTC)
    users.feedback(rec, 0, True, now)
    console = Console(file=io.StringIO())
    args = ["export-feedback", "--since", now.date().isoformat(), "--endpoint-url", local_aws.endpoint_url]
    assert cli.main([*args, "--bucket", bucket, "--json"], console) == 0
    summary = json.loads(console.file.getvalue())
    (day,) = summary["days"]
    rows = [
        FeedbackRow.model_validate(v)
        for v in decode_lines(s3.get_object(Bucket=bucket, Key=day["key"])["Body"].read())
    ]
    assert (rec["recommendation_id"], rec["songs"][0]["song_id"]) in {r.key for r in rows}

    console = Console(file=io.StringIO())
    report = ["report", f"s3://{bucket}/feedback/", "--endpoint-url", local_aws.endpoint_url, "--json"]
    assert cli.main(report, console) == 0
    assert json.loads(console.file.getvalue())["feedback"] == len(rows)

    # A bucket that does not exist yet on the local endpoint is created; an unreachable endpoint is one line.
    fresh = f"moodtune-export-{uuid.uuid4().hex[:12]}"
    assert cli.main([*args, "--bucket", fresh], Console(file=io.StringIO())) == 0
    assert s3.list_objects_v2(Bucket=fresh)["KeyCount"] == 1
    unreachable = ["export-feedback", "--since", "2026-01-01", "--endpoint-url", "http://127.0.0.1:9"]
    assert cli.main(unreachable, Console(file=io.StringIO())) == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["export-feedback", "--since", "last week"])
    assert usage.value.code == 2 and "not a date (YYYY-MM-DD)" in capsys.readouterr().err


def new_bucket(s3) -> str:
    name = f"moodtune-export-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def test_a_concurrent_writer_of_the_same_day_loses_no_rows(users, s3, bucket, exporter_for) -> None:
    """Another export writes the day between this run's read and its write: the conditional write is
    refused, the day is read and merged again, and both runs' rows are in the object."""
    day = date(2031, 9, 1)
    mine = users.recommend("오늘은 정말 행복해")
    users.feedback(mine, 0, True, at(day, 9))
    first = exporter_for(bucket, at(day, 12)).export_days(day)  # the day's first object
    (existing,) = read_export(f"s3://{bucket}/feedback/", s3_client=s3)
    other_rows = [existing.model_copy(update={"recommendation_id": f"other-{n}"}) for n in range(2)]

    users.feedback(mine, 1, False, at(day, 10))
    exporter = exporter_for(bucket, at(day, 12))
    puts: list[str] = []

    def another_writer_first(params: dict[str, Any], **_: Any) -> None:
        puts.append(params["Key"])
        if len(puts) <= len(other_rows):  # before each of our first writes, the other run's lands
            current = list(read_export(f"s3://{bucket}/feedback/", s3_client=s3))
            s3.put_object(
                Bucket=bucket, Key=params["Key"], Body=encode_rows([*current, other_rows[len(puts) - 1]])
            )

    exporter.s3.meta.events.register("provide-client-params.s3.PutObject", another_writer_first)
    result = exporter.export_days(day)
    assert first.days[0].written and result.days[0].written
    assert len(puts) == 3  # refused twice (the object changed each time), then written
    keys = Counter(r.key for r in read_export(f"s3://{bucket}/feedback/", s3_client=s3))
    rid = mine["recommendation_id"]
    expected = {(rid, mine["songs"][0]["song_id"]), (rid, mine["songs"][1]["song_id"])}
    assert keys == Counter(expected | {r.key for r in other_rows})


def test_a_day_that_keeps_changing_fails_the_run_and_keeps_the_watermark(users, s3, exporter_for) -> None:
    from moodtune.feedback.export import WRITE_ATTEMPTS

    day = date(2031, 9, 5)
    users.feedback(users.recommend("무서워"), 0, True, at(day, 9))
    bucket = new_bucket(s3)
    exporter = exporter_for(bucket, at(day + timedelta(days=1), 12), initial_days=1)
    puts: list[str] = []

    def always_first(params: dict[str, Any], **_: Any) -> None:
        puts.append(params["Key"])
        s3.put_object(Bucket=bucket, Key=params["Key"], Body=f"another writer {len(puts)}".encode())

    exporter.s3.meta.events.register("provide-client-params.s3.PutObject", always_first)
    with pytest.raises(ExportError, match=f"changed by another writer on each of {WRITE_ATTEMPTS} attempts"):
        exporter.export_pending()
    assert len(puts) == WRITE_ATTEMPTS
    assert objects(s3, bucket, prefix=STATE_KEY) == {}


def test_a_run_that_crosses_midnight_reads_the_new_days_partition(users, local_aws, s3, bucket) -> None:
    """A record re-rated after midnight, while the run reads, moves to the new day's index partition:
    the run reads that partition too, so the earlier days it marks complete are whole."""
    d1, d2, d3 = date(2031, 10, 1), date(2031, 10, 2), date(2031, 10, 3)
    rec = users.recommend("너무 슬퍼서 눈물이 나")
    users.feedback(rec, 0, True, at(d1, 10))
    users.feedback(rec, 1, False, at(d2, 23, 50))  # the record now sits in d2's partition
    now = [at(d2, 23, 59)]
    dynamodb = boto3.client("dynamodb", endpoint_url=local_aws.endpoint_url, region_name=REGION)
    exporter = FeedbackExporter(
        dynamodb,
        boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name=REGION),
        table_name=local_aws.feedback_table,
        bucket=bucket,
        initial_days=1,
        clock=lambda: now[0],
    )

    def midnight_passes(params: dict[str, Any], **_: Any) -> None:
        if params["ExpressionAttributeValues"][":day"]["S"] == d2.isoformat() and now[0].date() == d2:
            users.feedback(rec, 2, True, at(d3, 0, 1))  # moves the record to d3's partition
            now[0] = at(d3, 0, 2)

    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", midnight_passes)
    result = exporter.export_pending()
    assert (result.since, result.until, result.watermark) == (d1, d2, d1)
    assert result.partitions_read == 3  # d1, d2, then d3 once the clock showed it
    by_day = {row.day: row for row in read_export(f"s3://{bucket}/feedback/", s3_client=s3)}
    assert {d: (r.song_id, r.satisfied) for d, r in by_day.items()} == {
        d1: (rec["songs"][0]["song_id"], True),
        d2: (rec["songs"][1]["song_id"], False),
    }


class _Context(LambdaContextStub):
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_a_long_outage_is_caught_up_a_window_at_a_time(users, s3, exporter_for, monkeypatch) -> None:
    d0 = date(2031, 11, 1)
    days = [d0 + timedelta(days=i) for i in range(1, 6)]
    for i, day in enumerate(days):
        users.feedback(users.recommend(f"기분이 {i}번째로 좋아"), 0, True, at(day, 9))
    now = at(days[-1], 12)

    bucket = new_bucket(s3)
    exporter = exporter_for(bucket, now, max_days_per_run=2)
    exporter.write_watermark(d0, at(d0, 23))
    runs = [exporter.export_pending() for _ in range(3)]
    assert [(r.since, r.until, r.watermark, r.more) for r in runs] == [
        (days[0], days[1], days[1], True),
        (days[2], days[3], days[3], True),
        (days[4], days[4], days[3], False),  # today is still open
    ]
    assert [[d.day for d in r.days] for r in runs] == [days[:2], days[2:4], days[4:]]
    exported = Counter(r.key for r in read_export(f"s3://{bucket}/feedback/", s3_client=s3))
    expected = Counter(k for k, v in users.given.items() if v["day"] in days)
    assert exported == expected and set(exported.values()) == {1}

    # The scheduled handler goes on window after window while it has time for another.
    app = importlib.import_module("export_feedback.app")
    for remaining_ms, windows in ((300_000, 3), (20_000, 1)):
        fresh = new_bucket(s3)
        handler_exporter = exporter_for(fresh, now, max_days_per_run=2)
        handler_exporter.write_watermark(d0, at(d0, 23))
        monkeypatch.setattr(app, "_exporter", handler_exporter)
        summary = app.lambda_handler({}, _Context(remaining_ms))
        assert len(summary["days"]) == 2 * windows - (windows == 3)
        assert (summary["watermark"], summary["more"]) == (
            (days[3].isoformat(), False) if windows == 3 else (days[1].isoformat(), True)
        )


def test_the_days_per_run_come_from_the_environment(monkeypatch) -> None:
    from moodtune.feedback.export import MAX_DAYS_PER_RUN, exporter_from_env
    from moodtune.settings import get_settings

    monkeypatch.delenv("EXPORT_MAX_DAYS_PER_RUN", raising=False)
    get_settings.cache_clear()
    assert exporter_from_env(bucket="b").max_days_per_run == MAX_DAYS_PER_RUN
    monkeypatch.setenv("EXPORT_MAX_DAYS_PER_RUN", "7")
    get_settings.cache_clear()
    assert exporter_from_env(bucket="b").max_days_per_run == 7
    monkeypatch.setenv("EXPORT_MAX_DAYS_PER_RUN", "0")
    get_settings.cache_clear()
    with pytest.raises(ExportError, match="EXPORT_MAX_DAYS_PER_RUN"):
        exporter_from_env(bucket="b")
    monkeypatch.delenv("EXPORT_MAX_DAYS_PER_RUN")
    get_settings.cache_clear()


# ---------------------------------------------------------------- events/export_feedback (sam local invoke)

# Runs in a process laid out like the zip function: invoke each event, report errors as Lambda does.
LAMBDA_RUNNER = """
import importlib, json, sys
spec = json.loads(sys.stdin.read())
module_name, _, function_name = spec["handler"].rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)

class Context:
    function_name = "ExportFeedbackFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:ExportFeedbackFunction"
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    def get_remaining_time_in_millis(self):
        return 300_000

answers = {}
for name, event in spec["events"].items():
    try:
        answers[name] = handler(event, Context())
    except Exception as exc:
        answers[name] = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
print("@@ANSWERS@@" + json.dumps(answers))
"""


def test_event_files_through_the_laid_out_function(local_aws, s3, bucket, tmp_path) -> None:
    from tests.integration.test_events import EVENTS, lay_out

    files = {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in (EVENTS / "export_feedback").glob("*.json")
    }
    assert set(files) == {"scheduled.json", "range.json", "invalid.json"}
    env = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))["ExportFeedbackFunction"]
    paths, _, handler = lay_out("ExportFeedbackFunction", tmp_path)
    process_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "AWS_SAM_LOCAL": "true",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **env,
        "AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "FEEDBACK_TABLE": local_aws.feedback_table,
        "EXPORT_BUCKET": bucket,
    }
    done = subprocess.run(
        [sys.executable, "-c", LAMBDA_RUNNER],
        input=json.dumps({"handler": handler, "events": files}),
        cwd=paths[0],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.split("@@ANSWERS@@", 1)[1])
    assert (answers["range.json"]["since"], answers["range.json"]["until"]) == ("2026-11-20", "2026-11-24")
    assert answers["scheduled.json"]["watermark"] is not None
    assert answers["invalid.json"]["errorType"] == "ExportError"
    assert "until: Input should be a valid date" in answers["invalid.json"]["errorMessage"]
    assert "state/export-feedback.json" in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
