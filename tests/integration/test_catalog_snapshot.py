"""The catalog snapshot over moto S3: conditional refresh, a broken snapshot at cold start, the CLI."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from moodtune import service
from moodtune.catalog import CatalogCache, S3Objects, SnapshotSource
from moodtune.catalog.snapshot import pointer_key

pytestmark = pytest.mark.integration


def _counting_s3(local_aws) -> tuple[object, list[tuple[str, int, int]]]:
    """An S3 client that records (operation, HTTP status, body bytes) of every call it makes."""
    client = local_aws.s3()
    calls: list[tuple[str, int, int]] = []

    def record(http_response, model, **_: object) -> None:
        # Content-Length, not .content: reading the body here would consume GetObject's stream.
        calls.append(
            (model.name, http_response.status_code, int(http_response.headers.get("content-length", 0)))
        )

    client.meta.events.register("after-call.s3", record)
    return client, calls


def test_an_unchanged_catalog_costs_one_304_per_refresh(local_aws, scored_catalog, demo_classifier) -> None:
    client, calls = _counting_s3(local_aws)
    source = SnapshotSource(S3Objects(client, local_aws.snapshot_bucket), demo_classifier.model_version)
    first = source()
    assert len(first) == len(scored_catalog)
    assert [(op, status) for op, status, _ in calls] == [("GetObject", 200)] * 3  # pointer, 2 files
    calls.clear()
    assert source() is first
    assert [(op, status, size) for op, status, size in calls] == [("GetObject", 304, 0)]


def test_a_changed_pointer_swaps_the_catalog(local_aws, scored_catalog, demo_classifier) -> None:
    from moodtune.catalog import CatalogColumns, publish_snapshot

    bucket = f"moodtune-snapshots-swap-{uuid.uuid4().hex[:8]}"
    s3 = local_aws.s3()
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    objects = S3Objects(s3, bucket)
    version = demo_classifier.model_version
    publish_snapshot(
        objects, version, CatalogColumns.from_songs(sorted(scored_catalog, key=lambda s: s.song_id))
    )
    source = SnapshotSource(objects, version)
    first = source()
    smaller = sorted(scored_catalog, key=lambda s: s.song_id)[:3]
    publish_snapshot(objects, version, CatalogColumns.from_songs(smaller))
    second = source()
    assert second is not first and [second.songs[i] for i in range(3)] == smaller


def test_a_broken_snapshot_at_cold_start_answers_503(
    handlers, invoke, local_aws, demo_classifier, monkeypatch, caplog
) -> None:
    bucket = f"moodtune-snapshots-broken-{uuid.uuid4().hex[:8]}"
    s3 = local_aws.s3()
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    good = s3.get_object(Bucket=local_aws.snapshot_bucket, Key=pointer_key(demo_classifier.model_version))
    pointer = json.loads(good["Body"].read())
    pointer["files"]["vectors.npy"]["sha256"] = "0" * 64  # the files are not even there: either refuses
    s3.put_object(Bucket=bucket, Key=pointer_key(demo_classifier.model_version), Body=json.dumps(pointer))
    source = SnapshotSource(S3Objects(s3, bucket), demo_classifier.model_version)
    recommend_service = service.get_recommend_service()
    monkeypatch.setattr(recommend_service, "catalogs", CatalogCache(source, 300))
    with caplog.at_level(logging.ERROR, logger="moodtune.service"):
        answer = invoke(handlers.recommend, "POST", "/v1/recommendations", {"text": "오늘 기분 좋아"})
    assert answer.status == 503 and answer.headers["retry-after"] == "1"
    assert answer.body["message"] == "the song catalog is unavailable; retry later"  # no bucket or key
    assert any("snapshot" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records)
    assert invoke(handlers.recommend, "GET", "/v1/songs/t01").status == 503
    assert invoke(handlers.recommend, "GET", "/v1/health").status == 503


def test_the_cli_publishes_and_finds_nothing_new_the_second_time(
    local_aws, scored_catalog, demo_classifier, capsys
) -> None:
    from moodtune_cli.app import main

    bucket = f"moodtune-snapshots-cli-{uuid.uuid4().hex[:8]}"
    local_aws.s3().create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    argv = ["catalog", "publish", "--bucket", bucket, "--endpoint-url", local_aws.endpoint_url]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["published"] and first["songs"] == len(scored_catalog)
    assert first["model_version"] == demo_classifier.model_version
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert not second["published"] and second["snapshot"] == first["snapshot"]
    assert main([*argv, "--model-version", "no-such-version"]) == 1
    assert json.loads(capsys.readouterr().out)["skipped"] == "no songs"


def test_the_publisher_waits_for_a_drained_queue_then_publishes(
    local_aws, scored_catalog, demo_classifier, monkeypatch
) -> None:
    import importlib

    import boto3

    from moodtune import settings
    from tests.conftest import LambdaContextStub

    sqs = boto3.client("sqs", endpoint_url=local_aws.endpoint_url, region_name="ap-northeast-2")
    queue_url = sqs.create_queue(QueueName=f"ingest-publish-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    bucket = f"moodtune-snapshots-pub-{uuid.uuid4().hex[:8]}"
    local_aws.s3().create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    monkeypatch.setenv("SNAPSHOT_BUCKET", bucket)
    monkeypatch.setenv("INGEST_QUEUE_URL", queue_url)
    settings.get_settings.cache_clear()
    try:
        publisher = importlib.import_module("ingest.publisher")
        sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
        waiting = publisher.lambda_handler({}, LambdaContextStub())
        assert not waiting["published"] and "pending" in waiting["skipped"]
        forced = publisher.lambda_handler({"force": True}, LambdaContextStub())
        assert forced["published"] and forced["songs"] == len(scored_catalog)
        sqs.purge_queue(QueueUrl=queue_url)
        again = publisher.lambda_handler({}, LambdaContextStub())
        assert again["snapshot"] == forced["snapshot"] and not again["published"]  # unchanged: no write
        source = SnapshotSource(S3Objects(local_aws.s3(), bucket), demo_classifier.model_version)
        assert len(source()) == len(scored_catalog)
    finally:
        settings.get_settings.cache_clear()
