"""The AWS path against the moto server over HTTP: an uploaded catalog -> splitter -> SQS -> worker.

The queue is built as template.yaml builds IngestQueue (a dead-letter queue, maxReceiveCount): a
poisoned message fails alone, is reported as a batch item failure, and ends in the dead-letter queue;
the other messages' songs are written and those messages deleted, as Lambda's event source mapping does.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from moodtune import settings
from tests.conftest import REGION, ROOT, TEMPLATE, LambdaContextStub

pytestmark = pytest.mark.integration

DEMO_CATALOG = ROOT / "data" / "demo" / "songs.jsonl"


class Aws:
    """Bucket, queue + DLQ and a SongsTable of one test on the session's moto server."""

    def __init__(self, endpoint_url: str) -> None:
        kwargs = {"endpoint_url": endpoint_url, "region_name": REGION}
        self.s3 = boto3.client("s3", **kwargs)
        self.sqs = boto3.client("sqs", **kwargs)
        self.dynamodb = boto3.resource("dynamodb", **kwargs)
        suffix = uuid.uuid4().hex[:8]
        self.bucket = f"moodtune-catalog-{suffix}"
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.dlq_url = self.sqs.create_queue(QueueName=f"ingest-dlq-{suffix}")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.queue_url = self.sqs.create_queue(
            QueueName=f"ingest-{suffix}",
            Attributes={
                "VisibilityTimeout": "1",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
            },
        )["QueueUrl"]
        from infra.local.aws import create_tables

        self.table_name = f"moodtune-songs-worker-{suffix}"
        create_tables(TEMPLATE, self.dynamodb.meta.client, {"SongsTable": self.table_name})
        self.table = self.dynamodb.Table(self.table_name)

    def receive(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for _ in range(5):
            answer = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
            )
            got = answer.get("Messages", [])
            messages.extend(got)
            if not got:
                break
        return messages


@pytest.fixture
def aws(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    env = Aws(local_aws.endpoint_url)
    monkeypatch.setenv("SONGS_TABLE", env.table_name)
    monkeypatch.setenv("INGEST_QUEUE_URL", env.queue_url)
    monkeypatch.setenv("INGEST_SONGS_PER_MESSAGE", "10")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    settings.get_settings.cache_clear()
    worker = importlib.import_module("ingest.worker")
    worker._pipeline.cache_clear()
    yield env
    settings.get_settings.cache_clear()
    worker._pipeline.cache_clear()


def s3_put_event(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key.replace(" ", "+"), "size": 1}
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def sqs_event(messages: list[dict[str, Any]], queue_url: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    arn = f"arn:aws:sqs:{REGION}:123456789012:{queue_url.rsplit('/', 1)[-1]}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def test_upload_split_and_worker_with_a_poisoned_record(aws: Aws) -> None:
    splitter = importlib.import_module("ingest.splitter")
    worker = importlib.import_module("ingest.worker")
    lines = DEMO_CATALOG.read_bytes().splitlines(keepends=True)[:25]
    lines.insert(3, b'{"song_id": "bad", "title": 1}\n')
    key = "uploads/new catalog.jsonl"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"".join(lines))

    summary = splitter.lambda_handler(s3_put_event(aws.bucket, key), LambdaContextStub())
    (split,) = summary["files"]
    assert split["source"] == f"s3://{aws.bucket}/{key}"
    assert (split["songs"], split["messages"], split["skipped"]) == (25, 3, 1)
    assert split["rejected"][0]["line"] == 4 and split["rejected"][0]["field"] == "title"

    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody='{"format": 1, "songs": "poison"}')
    messages = aws.receive(aws.queue_url)
    assert len(messages) == 4
    poisoned = next(m["MessageId"] for m in messages if "poison" in m["Body"])

    answer = worker.lambda_handler(sqs_event(messages, aws.queue_url), LambdaContextStub())
    assert answer == {"batchItemFailures": [{"itemIdentifier": poisoned}]}
    # As the event source mapping does: the records that succeeded are deleted.
    for m in messages:
        if m["MessageId"] != poisoned:
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])

    items = aws.table.scan()["Items"]
    assert len(items) == 25
    assert {i["song_id"] for i in items} == {json.loads(x)["song_id"] for x in lines if b'"bad"' not in x}

    # The failed record comes back after the visibility timeout; past maxReceiveCount it goes to the DLQ.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (dead := aws.receive(aws.dlq_url)):
        aws.receive(aws.queue_url)
        time.sleep(0.5)
    assert [m["MessageId"] for m in dead] == [poisoned]

    # A redelivered good message (at-least-once delivery) writes nothing at all: no BatchWriteItem
    # call, every item as it was.
    before = {i["song_id"]: i for i in aws.table.scan()["Items"]}
    writes: list[str] = []
    _, worker_table, _ = worker._pipeline()
    worker_table.meta.client.meta.events.register(
        "before-call.dynamodb.BatchWriteItem", lambda **kw: writes.append("BatchWriteItem")
    )
    again = [m for m in messages if m["MessageId"] != poisoned][:1]
    assert worker.lambda_handler(sqs_event(again, aws.queue_url), LambdaContextStub()) == {
        "batchItemFailures": []
    }
    assert writes == []
    assert {i["song_id"]: i for i in aws.table.scan()["Items"]} == before
    # The same message after one of its songs changed in the table: exactly one write, so the
    # counter above does see the worker's writes.
    changed = json.loads(again[0]["Body"])["songs"][0]["song"]["song_id"]
    aws.table.update_item(
        Key={"model_version": before[changed]["model_version"], "song_id": changed},
        UpdateExpression="SET content_hash = :h",
        ExpressionAttributeValues={":h": "outdated"},
    )
    worker.lambda_handler(sqs_event(again, aws.queue_url), LambdaContextStub())
    assert writes == ["BatchWriteItem"]
    after = {i["song_id"]: i for i in aws.table.scan()["Items"]}
    assert after[changed]["content_hash"] == before[changed]["content_hash"]
    assert {k: v for k, v in after.items() if k != changed} == {
        k: v for k, v in before.items() if k != changed
    }


def test_the_splitter_reads_the_version_its_event_names(aws: Aws) -> None:
    """Two quick uploads to one key: each event splits its own file, not the newest."""
    splitter = importlib.import_module("ingest.splitter")
    aws.s3.put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
    lines = DEMO_CATALOG.read_bytes().splitlines(keepends=True)
    key = "catalogs/daily.jsonl"
    first = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"".join(lines[:3]))["VersionId"]
    second = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"".join(lines[:7]))["VersionId"]
    assert first != second
    (old,) = splitter.lambda_handler(s3_put_event(aws.bucket, key, first), LambdaContextStub())["files"]
    (new,) = splitter.lambda_handler(s3_put_event(aws.bucket, key, second), LambdaContextStub())["files"]
    assert (old["songs"], new["songs"]) == (3, 7)
    # An event without a version (an unversioned bucket) reads the object as it is.
    (plain,) = splitter.lambda_handler(s3_put_event(aws.bucket, key), LambdaContextStub())["files"]
    assert plain["songs"] == 7


def test_a_song_too_big_for_a_message_is_skipped_and_the_split_goes_on(aws: Aws) -> None:
    splitter = importlib.import_module("ingest.splitter")
    lines = DEMO_CATALOG.read_bytes().splitlines(keepends=True)[:4]
    ids = {f"id{i}": "\x01" * 256 for i in range(32)}
    heavy = {"song_id": "heavy", "title": "t", "artist": "a", "lyrics": "\x01" * 30_000 + "\n가사"}
    lines.insert(2, json.dumps({**heavy, "external_ids": ids}).encode() + b"\n")
    aws.s3.put_object(Bucket=aws.bucket, Key="big.jsonl", Body=b"".join(lines))
    (split,) = splitter.lambda_handler(s3_put_event(aws.bucket, "big.jsonl"), LambdaContextStub())["files"]
    assert (split["songs"], split["skipped"]) == (4, 1)
    assert (split["rejected"][0]["line"], split["rejected"][0]["song_id"]) == (3, "heavy")
    bodies = [m["Body"] for m in aws.receive(aws.queue_url)]
    assert sum(len(json.loads(b)["songs"]) for b in bodies) == 4


def test_the_shipped_events_run_through_the_handlers(aws: Aws) -> None:
    """events/ingest/*.json (for `sam local invoke`) through the handlers against moto."""
    splitter = importlib.import_module("ingest.splitter")
    worker = importlib.import_module("ingest.worker")
    events = ROOT / "events" / "ingest"

    batches = json.loads((events / "song-batches.json").read_text(encoding="utf-8"))
    answer = worker.lambda_handler(batches, LambdaContextStub())
    poisoned = batches["Records"][1]["messageId"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": poisoned}]}
    assert aws.table.scan()["Count"] == 2

    uploaded = json.loads((events / "catalog-uploaded.json").read_text(encoding="utf-8"))
    record = uploaded["Records"][0]["s3"]
    bucket, key = record["bucket"]["name"], record["object"]["key"]
    with contextlib.suppress(aws.s3.exceptions.BucketAlreadyOwnedByYou):
        aws.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_object(Bucket=bucket, Key=key, Body=b"".join(DEMO_CATALOG.read_bytes().splitlines(True)[:12]))
    (split,) = splitter.lambda_handler(uploaded, LambdaContextStub())["files"]
    assert (split["songs"], split["messages"], split["skipped"]) == (12, 2, 0)
