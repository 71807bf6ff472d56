"""Reading the web bucket and distribution from the stack's Outputs; uploading and pruning the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import deploy_web


def test_stack_without_web_outputs_is_refused_with_a_clear_message():
    class FakeCloudFormation:
        def describe_stacks(self, StackName):
            return {"Stacks": [{"Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://x"}]}]}

    with pytest.raises(SystemExit, match="no WebBucketName output"):
        deploy_web.stack_target("moodtune-dev", FakeCloudFormation())


def test_stack_outputs_name_the_bucket_and_distribution():
    class FakeCloudFormation:
        def describe_stacks(self, StackName):
            outputs = {"WebBucketName": "b", "WebDistributionId": "E123", "ApiUrl": "https://x"}
            return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}

    assert deploy_web.stack_target("moodtune-dev", FakeCloudFormation()) == deploy_web.Target("b", "E123")


@pytest.mark.parametrize(
    ("env", "stack"), [("default", "moodtune-dev"), ("dev", "moodtune-dev"), ("prod", "moodtune-prod")]
)
def test_stack_name_and_region_come_from_samconfig(env, stack):
    assert deploy_web.samconfig_stack(env) == (stack, "ap-northeast-2")


def test_unknown_config_env_is_refused():
    with pytest.raises(SystemExit, match=r"no \[staging\] environment"):
        deploy_web.samconfig_stack("staging")


# ---------------------------------------------------------------- against S3 on a moto server, over HTTP


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """An S3 client for a moto server of this module's own (a separate process, over HTTP)."""
    from infra.local.aws import start_moto_process

    server = start_moto_process()
    try:
        yield boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="ap-northeast-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        server.stop()


def _versioned_bucket(s3: Any, name: str) -> str:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _page(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    (web / "img").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>t</title>", encoding="utf-8")
    (web / "app.js").write_text("'use strict';", encoding="utf-8")
    (web / "img" / "logo.svg").write_text("<svg/>", encoding="utf-8")
    return web


def test_files_removed_from_web_are_deleted_from_the_bucket(s3, tmp_path):
    bucket = _versioned_bucket(s3, "web-stale")
    web = _page(tmp_path)
    for key in ("old.js", "img/old.png", "app.js"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"old")

    keys = deploy_web.upload_page(s3, bucket, web)
    deleted = deploy_web.delete_stale(s3, bucket, keys)

    assert sorted(deleted) == ["img/old.png", "old.js"]
    assert _keys(s3, bucket) == {"index.html", "app.js", "img/logo.svg"}
    assert s3.get_object(Bucket=bucket, Key="app.js")["Body"].read() == b"'use strict';"
    # versioned: the deleted page file is a delete marker, recoverable until the lifecycle rule runs
    versions = s3.list_object_versions(Bucket=bucket, Prefix="old.js")
    assert [m["Key"] for m in versions.get("DeleteMarkers", [])] == ["old.js"]
    # a second deploy of the same page deletes nothing
    assert deploy_web.delete_stale(s3, bucket, deploy_web.upload_page(s3, bucket, web)) == []


def test_stale_keys_beyond_one_listing_page_and_one_delete_batch_all_go(s3, tmp_path):
    bucket = _versioned_bucket(s3, "web-many")
    stale = {f"old/{i}.txt" for i in range(5)}
    for key in stale:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")

    keys = deploy_web.upload_page(s3, bucket, _page(tmp_path))
    # pages of 2 keys: four listing pages (8 objects) and three delete batches
    assert set(deploy_web.delete_stale(s3, bucket, keys, page_size=2)) == stale
    assert _keys(s3, bucket) == set(keys)


def test_a_folder_without_index_html_is_not_uploaded_and_nothing_is_deleted(s3, tmp_path):
    bucket = _versioned_bucket(s3, "web-guard")
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"live")
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(SystemExit, match=r"no index\.html"):
        deploy_web.upload_page(s3, bucket, empty)
    assert _keys(s3, bucket) == {"index.html"}
