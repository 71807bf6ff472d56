"""The snapshot bucket over boto3: ``catalog.snapshot.Objects`` for S3 (GET, conditional GET, PUT)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from moodtune.catalog.snapshot import Fetched, ObjectMissing


class S3Objects:
    """Objects under one S3 bucket. A missing key is ``ObjectMissing`` (the functions hold
    ``s3:ListBucket``, so S3 answers 404 rather than 403); other S3 errors propagate as botocore's."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def get(self, key: str, if_none_match: str | None = None) -> Fetched | None:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_none_match:
            request["IfNoneMatch"] = if_none_match
        try:
            answer = self.client.get_object(**request)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 304 or code == "304":
                return None
            if code in ("NoSuchKey", "404") or status == 404:
                raise ObjectMissing(f"no object s3://{self.bucket}/{key}") from exc
            raise
        with answer["Body"] as body:
            return Fetched(body.read(), str(answer.get("ETag", "")))

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
