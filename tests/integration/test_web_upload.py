"""`make deploy`'s last step: the page goes to the web bucket with the right types and cache policy."""

from __future__ import annotations

import boto3
import pytest

from infra import deploy_web

pytestmark = pytest.mark.integration


def test_upload_page_writes_every_file_with_type_and_cache_policy(local_aws):
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="ap-northeast-2")
    bucket = "moodtune-web-test"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})

    keys = deploy_web.upload_page(s3, bucket)

    assert set(keys) >= {"index.html", "app.js", "style.css"}
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert stored == set(keys)
    index = s3.get_object(Bucket=bucket, Key="index.html")
    assert index["ContentType"] == "text/html; charset=utf-8"
    assert index["CacheControl"] == "no-cache"
    assert index["Body"].read() == (deploy_web.WEB_DIR / "index.html").read_bytes()
    script = s3.head_object(Bucket=bucket, Key="app.js")
    assert script["ContentType"].startswith(("text/javascript", "application/javascript"))
    assert script["CacheControl"] == "public, max-age=300"
