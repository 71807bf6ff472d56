"""Upload web/ to the stack's WebBucket and refresh CloudFront (the last step of `make deploy`).

    python -m infra.deploy_web --config-env dev

The stack name and region come from samconfig.toml's section for the config environment, and the
bucket and distribution from the stack's Outputs (WebBucketName, WebDistributionId), so nothing is
configured twice. The page is not fingerprinted, so HTML is revalidated on every load and
CSS/JS are cached briefly; an invalidation makes a new version visible at once. Objects that are no
longer in web/ are deleted after the upload (the bucket is versioned, so they stay recoverable until
the noncurrent-version lifecycle rule expires them).
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
WEB_DIR = ROOT / "web"
SAMCONFIG = ROOT / "samconfig.toml"
CACHE_CONTROL = {
    ".html": "no-cache",
    ".css": "public, max-age=300",
    ".js": "public, max-age=300",
}
DEFAULT_CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class Target:
    """Where the page goes: the stack's web bucket and its CloudFront distribution."""

    bucket: str
    distribution_id: str | None


def samconfig_stack(config_env: str, samconfig: Path = SAMCONFIG) -> tuple[str, str | None]:
    """The stack name and region that `sam deploy --config-env CONFIG_ENV` uses."""
    config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    if config_env not in config:
        raise SystemExit(f"{samconfig.name} has no [{config_env}] environment (have: {', '.join(config)})")
    section = config[config_env]
    stack_name = section.get("deploy", {}).get("parameters", {}).get("stack_name")
    if not stack_name:
        raise SystemExit(f"{samconfig.name} [{config_env}.deploy.parameters] has no stack_name")
    return stack_name, section.get("global", {}).get("parameters", {}).get("region")


def stack_target(stack_name: str, cloudformation: Any) -> Target:
    """Read WebBucketName and WebDistributionId from the deployed stack's Outputs."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if "WebBucketName" not in outputs:
        raise SystemExit(f"stack {stack_name} has no WebBucketName output: deploy template.yaml first")
    return Target(bucket=outputs["WebBucketName"], distribution_id=outputs.get("WebDistributionId"))


def page_files(web_dir: Path = WEB_DIR) -> list[Path]:
    """Every file of the page, in a stable order."""
    return sorted(p for p in web_dir.rglob("*") if p.is_file())


def upload_page(s3: Any, bucket: str, web_dir: Path = WEB_DIR) -> list[str]:
    """Put each file with its content type and cache policy; return the keys written."""
    files = page_files(web_dir)
    if web_dir / "index.html" not in files:
        # Also keeps delete_stale from emptying the bucket when pointed at the wrong folder.
        raise SystemExit(f"{web_dir} has no index.html: not uploading")
    keys = []
    for path in files:
        key = path.relative_to(web_dir).as_posix()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in {"application/javascript", "text/javascript"}:
            content_type += "; charset=utf-8"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=content_type,
            CacheControl=CACHE_CONTROL.get(path.suffix, DEFAULT_CACHE_CONTROL),
        )
        keys.append(key)
    return keys


def delete_stale(s3: Any, bucket: str, keep: list[str], page_size: int = 1000) -> list[str]:
    """Delete every object of the bucket whose key is not in ``keep``; return the deleted keys.

    ``page_size``: keys per listing page and per DeleteObjects call (S3 allows at most 1000).
    """
    wanted = set(keep)
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": page_size}
    )
    stale = [obj["Key"] for page in pages for obj in page.get("Contents", []) if obj["Key"] not in wanted]
    for start in range(0, len(stale), page_size):
        batch = stale[start : start + page_size]
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            failed = ", ".join(f"{e['Key']} ({e.get('Code')})" for e in answer["Errors"])
            raise SystemExit(f"could not delete stale objects from s3://{bucket}/: {failed}")
    return stale


def invalidate(cloudfront: Any, distribution_id: str) -> str:
    """Ask CloudFront to drop its cached copies of the page; return the invalidation id."""
    answer = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
    )
    return answer["Invalidation"]["Id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy_web", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config-env", default="default", help="samconfig.toml environment (default, dev, prod)"
    )
    args = parser.parse_args(argv)

    stack_name, region = samconfig_stack(args.config_env)
    session = boto3.session.Session(region_name=region)
    target = stack_target(stack_name, session.client("cloudformation"))
    s3 = session.client("s3")
    keys = upload_page(s3, target.bucket)
    print(f"uploaded {len(keys)} files to s3://{target.bucket}/")
    stale = delete_stale(s3, target.bucket, keys)
    if stale:
        print(f"deleted {len(stale)} files no longer in web/: {', '.join(stale)}")
    if target.distribution_id:
        print(f"invalidation {invalidate(session.client('cloudfront'), target.distribution_id)} started")
    return 0


if __name__ == "__main__":
    sys.exit(main())
