"""template.yaml's security scan: checkov (`make lint`, pinned in .venv-checkov) reports no failed check,
and every check it is told to skip carries its reason next to the resource. Also the fixes the scan
asked for: encrypted queues, reserved concurrency from parameters, dead-letter paths for every
asynchronous invocation, S3 server access logs. README.md, "Security", lists the same skips."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import load_template

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
CHECKOV = ROOT / ".venv-checkov/bin/checkov"


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in RESOURCES.items() if v["Type"] == kind}


def skips() -> list[tuple[str, str, str]]:
    """(resource, check id, comment) for every checkov skip in the template."""
    found = []
    for logical_id, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found.append((logical_id, skip.get("id", ""), str(skip.get("comment", "")).strip()))
    return found


def test_every_skip_names_a_check_and_gives_a_reason() -> None:
    found = skips()
    assert found, "no checkov skip found in any resource's Metadata"
    for logical_id, check_id, comment in found:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id), f"{logical_id}: {check_id!r} is not a checkov AWS id"
        # A sentence a reviewer can judge, not a placeholder.
        assert len(comment.split()) >= 8, f"{logical_id} skips {check_id} without a reason: {comment!r}"
    pairs = [(r, c) for r, c, _ in found]
    assert len(pairs) == len(set(pairs)), "a check is skipped twice on one resource"


def test_skips_live_only_next_to_their_resources() -> None:
    """No blanket skip-check in .checkov.yaml: each skip must sit (with its reason) in a resource."""
    config = (ROOT / ".checkov.yaml").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(skip-check|skip-path|soft-fail)", config, re.MULTILINE), config


def test_readme_security_section_lists_every_skipped_check() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Security\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Security' section"
    section = match.group(1)
    for logical_id, check_id, _ in skips():
        assert check_id in section, f"README's Security section does not explain {check_id} ({logical_id})"


def test_every_queue_is_encrypted_at_rest() -> None:
    queues = of_type("AWS::SQS::Queue")
    assert len(queues) >= 4
    for logical_id, queue in queues.items():
        properties = queue["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or properties.get("KmsMasterKeyId"), logical_id


def test_every_table_is_encrypted_at_rest() -> None:
    for logical_id, table in of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True, logical_id


def test_reserved_concurrency_of_every_function_comes_from_a_parameter() -> None:
    """Every function is capped. The export's 1 is a correctness constant (two runs would race on the
    same day's object), not a knob; every other cap is a Number parameter with a sane range."""
    functions = of_type("AWS::Serverless::Function")
    assert len(functions) >= 5
    for logical_id, function in functions.items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved is not None, f"{logical_id} has no reserved concurrency"
        if logical_id in ("ExportFeedbackFunction", "CatalogPublisherFunction"):
            assert reserved == 1  # one export / one publish at a time
            continue
        assert isinstance(reserved, dict) and set(reserved) == {"Ref"}, f"{logical_id}: {reserved!r}"
        parameter = PARAMETERS[reserved["Ref"]]
        assert parameter["Type"] == "Number", reserved["Ref"]
        assert 1 <= parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"] <= 1000


def test_the_worker_reserves_what_its_event_source_may_run() -> None:
    """AWS: an SQS event source's MaximumConcurrency above the function's reserved concurrency throttles
    receives, and throttled messages count towards the dead-letter queue's maxReceiveCount."""
    worker = RESOURCES["IngestFunction"]["Properties"]
    scaling = worker["Events"]["SongBatches"]["Properties"]["ScalingConfig"]
    assert worker["ReservedConcurrentExecutions"] == scaling["MaximumConcurrency"]


def test_the_reserved_total_leaves_the_account_its_unreserved_minimum() -> None:
    """At the defaults the caps add up to well under an account's default 1,000 (Lambda keeps 100
    unreserved): README, "Security", names the total."""
    total = 0
    for function in of_type("AWS::Serverless::Function").values():
        reserved = function["Properties"]["ReservedConcurrentExecutions"]
        total += PARAMETERS[reserved["Ref"]]["Default"] if isinstance(reserved, dict) else reserved
    assert total <= 900
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{total} reserved" in readme, f"README should state the {total} reserved environments"


def test_every_asynchronous_invocation_has_a_dead_letter_path() -> None:
    """S3 and the scheduler invoke asynchronously: their failures must land in a queue, not vanish.
    The HTTP API and the SQS event source invoke synchronously (the caller, or the queue's redrive
    policy, handles a failure)."""
    asynchronous = 0
    for logical_id, function in of_type("AWS::Serverless::Function").items():
        properties = function["Properties"]
        kinds = {event["Type"] for event in properties.get("Events", {}).values()}
        assert kinds <= {"HttpApi", "SQS", "S3", "ScheduleV2"}, f"{logical_id}: review its dead-letter path"
        if kinds & {"S3", "ScheduleV2"}:
            asynchronous += 1
            on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
            assert on_failure["Type"] == "SQS", logical_id
            queue = on_failure["Destination"]["Fn::GetAtt"][0]
            assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", logical_id
        for event in properties.get("Events", {}).values():
            if event["Type"] == "ScheduleV2":
                schedule = event["Properties"]
                assert schedule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in RESOURCES
                assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                assert "deadLetterTargetArn" in RESOURCES[queue]["Properties"]["RedrivePolicy"], queue
    assert asynchronous == 3  # the catalog splitter (S3), the feedback export and the publisher (schedules)


def test_every_bucket_but_the_log_bucket_writes_access_logs_there() -> None:
    buckets = of_type("AWS::S3::Bucket")
    logging = {k for k, v in buckets.items() if "LoggingConfiguration" in v["Properties"]}
    assert logging == set(buckets) - {"AccessLogsBucket"}
    prefixes = set()
    for logical_id in logging:
        config = buckets[logical_id]["Properties"]["LoggingConfiguration"]
        assert config["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}, logical_id
        assert config["LogFilePrefix"].startswith("s3/"), logical_id
        prefixes.add(config["LogFilePrefix"])
    assert len(prefixes) == len(logging), "two buckets share a log prefix"
    # Log delivery by bucket policy, only from these buckets of this account, under s3/.
    (allow,) = [
        s
        for s in RESOURCES["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    sources = {arn["Fn::GetAtt"][0] for arn in allow["Condition"]["ArnLike"]["aws:SourceArn"]}
    assert sources == logging
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # Server access logging delivers only to SSE-S3 buckets.
    encryption = buckets["AccessLogsBucket"]["Properties"]["BucketEncryption"]
    assert encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


def test_checkov_reports_no_failed_check() -> None:
    """The real scanner with the settings `make lint` uses. `make test` builds .venv-checkov first (lint
    depends on it); elsewhere (`make unit` on a machine without it) the test says how to get it, and
    in CI a missing scanner is a failure, not a skip."""
    if not CHECKOV.exists():
        message = f"{CHECKOV.relative_to(ROOT)} is missing: run `make checkov`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [str(CHECKOV), "--config-file", ".checkov.yaml", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, f"checkov failed checks: {failed}"
    assert summary["parsing_errors"] == 0, summary
    assert done.returncode == 0, done.stderr[-2000:]
    # Every skip in the template matched a check checkov ran on that resource (no stale or mistyped id).
    skipped = {(c["resource"].split(".", 1)[1], c["check_id"]) for c in report["results"]["skipped_checks"]}
    assert skipped == {(r, c) for r, c, _ in skips()}
    assert summary["passed"] > 0
