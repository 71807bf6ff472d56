"""template.yaml's catalog snapshot: the bucket, who may read and write it, the publisher, the alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.local.aws import load_template

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _statements(function: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in RESOURCES[function]["Properties"].get("Policies", [])
        for statement in policy.get("Statement", [])
    ]


def _snapshot_actions(function: str) -> dict[str, set[str]]:
    """Action -> resources of ``function``'s grants on the snapshot bucket."""
    grants: dict[str, set[str]] = {}
    for statement in _statements(function):
        if "SnapshotBucket" not in json.dumps(statement["Resource"]):
            continue
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            grants.setdefault(action, set()).add(json.dumps(statement["Resource"]))
    return grants


def test_the_snapshot_bucket_is_private_encrypted_versioned_and_logged() -> None:
    bucket = RESOURCES["SnapshotBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
    policy = RESOURCES["SnapshotBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls = {s["Sid"]: s for s in policy}
    assert tls["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["DenyInsecureTransport"]["Effect"] == "Deny"
    assert tls["DenyTlsBelow12"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": 1.2}}


def test_serving_reads_only_the_snapshot_prefix_and_only_the_publisher_writes() -> None:
    prefix = json.dumps({"Fn::Sub": "${SnapshotBucket.Arn}/snapshots/*"})
    bucket = json.dumps({"Fn::GetAtt": ["SnapshotBucket", "Arn"]})
    assert _snapshot_actions("RecommendFunction") == {"s3:GetObject": {prefix}, "s3:ListBucket": {bucket}}
    assert _snapshot_actions("CatalogPublisherFunction") == {
        "s3:GetObject": {prefix},
        "s3:PutObject": {prefix},
        "s3:ListBucket": {bucket},
    }
    writers = [
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function" and "s3:PutObject" in _snapshot_actions(name)
    ]
    assert writers == ["CatalogPublisherFunction"]
    # The ingest functions score and write SongsTable; they never read a snapshot, so they get no grant.
    assert not _snapshot_actions("IngestFunction") and not _snapshot_actions("IngestSplitterFunction")
    recommend = RESOURCES["RecommendFunction"]["Properties"]["Environment"]["Variables"]
    publisher = RESOURCES["CatalogPublisherFunction"]["Properties"]["Environment"]["Variables"]
    assert recommend["SNAPSHOT_BUCKET"] == publisher["SNAPSHOT_BUCKET"] == {"Ref": "SnapshotBucket"}


def test_the_publisher_runs_the_ingest_bundle_on_a_schedule_and_its_failures_are_watched() -> None:
    function = RESOURCES["CatalogPublisherFunction"]
    properties = function["Properties"]
    assert function["Metadata"]["DockerBuildArgs"] == {"MODEL_DIR": {"Ref": "IngestModelDir"}}
    assert properties["ImageConfig"]["Command"] == ["publisher.lambda_handler"]
    assert (ROOT / "functions/ingest/publisher.py").is_file()
    dockerfile = (ROOT / function["Metadata"]["Dockerfile"]).read_text(encoding="utf-8")
    assert "functions/ingest/publisher.py" in dockerfile
    (event,) = properties["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == {"Ref": "CatalogPublishSchedule"}
    assert properties["Environment"]["Variables"]["INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}
    actions = {
        s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"])
        for s in _statements("CatalogPublisherFunction")
    }
    assert "dynamodb:Query" in actions and "sqs:GetQueueAttributes" in actions
    alarm = RESOURCES["CatalogPublishFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CatalogPublisherFunction"}}]


def test_the_load_failure_alarm_watches_the_metric_the_service_counts() -> None:
    import io
    import os
    from contextlib import redirect_stdout

    from moodtune.service import count_catalog_failure

    alarm = RESOURCES["CatalogLoadFailedAlarm"]["Properties"]
    out = io.StringIO()
    saved = os.environ.get("POWERTOOLS_SERVICE_NAME")
    os.environ["POWERTOOLS_SERVICE_NAME"] = "moodtune"
    try:
        with redirect_stdout(out):
            count_catalog_failure(ValueError("bad snapshot"))
    finally:
        if saved is None:
            os.environ.pop("POWERTOOLS_SERVICE_NAME")
        else:
            os.environ["POWERTOOLS_SERVICE_NAME"] = saved
    emf = json.loads(out.getvalue().strip().splitlines()[-1])
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == alarm["Namespace"] == "MoodTune"
    assert [m["Name"] for m in directive["Metrics"]] == [alarm["MetricName"]]
    assert directive["Dimensions"] == [[d["Name"] for d in alarm["Dimensions"]]]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": emf["service"]}
    dashboard = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "${CatalogLoadFailedAlarm.Arn}" in dashboard and "${CatalogPublishFailedAlarm.Arn}" in dashboard
