"""template.yaml's catalog ingestion and feedback-export operations: the queue and its dead-letter path,
the failure destinations and alarms, the worker's event source, the images' handlers (`make lint` runs
cfn-lint and `sam validate --lint` on the whole file)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import load_template

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def props(logical_id: str) -> dict[str, Any]:
    return RESOURCES[logical_id]["Properties"]


def alarms_on(namespace: str, metric: str) -> dict[str, Any]:
    """Alarm logical id -> the Ref/GetAtt its first dimension names, for one metric."""
    return {
        k: v["Properties"]["Dimensions"][0]["Value"]
        for k, v in RESOURCES.items()
        if v["Type"] == "AWS::CloudWatch::Alarm"
        and (v["Properties"]["Namespace"], v["Properties"]["MetricName"]) == (namespace, metric)
    }


def test_the_ingest_queue_redrives_to_its_dead_letter_queue_and_the_depth_alarms() -> None:
    queue = props("IngestQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert 1 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 5
    # AWS: an SQS source's visibility timeout at least six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * props("IngestFunction")["Timeout"]
    assert props("IngestDeadLetterQueue")["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    depth = alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert depth["IngestDeadLetterAlarm"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "QueueName"]}
    alarm = props("IngestDeadLetterAlarm")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_worker_reports_partial_batch_failures_with_a_concurrency_parameter() -> None:
    (event,) = props("IngestFunction")["Events"].values()
    assert event["Type"] == "SQS"
    source = event["Properties"]
    assert source["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "IngestMaxConcurrency"}
    parameter = TEMPLATE["Parameters"]["IngestMaxConcurrency"]
    # SQS event sources take a MaximumConcurrency of 2..1000.
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 2 and parameter["MaxValue"] <= 1000
    assert parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]


@pytest.mark.parametrize(
    ("logical_id", "module", "handler"),
    [
        ("IngestFunction", "worker", "lambda_handler"),
        ("IngestSplitterFunction", "splitter", "lambda_handler"),
    ],
)
def test_each_ingest_function_runs_its_handler_in_the_recommend_image(
    logical_id: str, module: str, handler: str
) -> None:
    resource = RESOURCES[logical_id]
    assert resource["Properties"]["PackageType"] == "Image"
    assert resource["Properties"]["ImageConfig"]["Command"] == [f"{module}.{handler}"]
    assert resource["Metadata"]["Dockerfile"] == "functions/recommend/Dockerfile"
    assert resource["Metadata"]["DockerBuildArgs"] == {"MODEL_DIR": {"Ref": "IngestModelDir"}}
    source = ROOT / "functions" / "ingest" / f"{module}.py"
    assert re.search(rf"^def {handler}\(", source.read_text(encoding="utf-8"), re.MULTILINE)
    dockerfile = (ROOT / "functions/recommend/Dockerfile").read_text(encoding="utf-8")
    copy = next(line for line in dockerfile.splitlines() if line.startswith("COPY functions/ingest/"))
    assert f"functions/ingest/{module}.py" in copy.split() and copy.endswith("${LAMBDA_TASK_ROOT}/")


def test_a_failed_split_is_kept_and_alarmed_and_both_functions_have_errors_alarms() -> None:
    config = props("IngestSplitterFunction")["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["IngestSplitterFailureQueue", "Arn"]}}
    assert config["MaximumRetryAttempts"] <= 2
    assert RESOURCES["IngestSplitterFailureQueue"]["Type"] == "AWS::SQS::Queue"
    depth = alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert depth["IngestSplitterFailureAlarm"] == {"Fn::GetAtt": ["IngestSplitterFailureQueue", "QueueName"]}
    errors = {json.dumps(v) for v in alarms_on("AWS/Lambda", "Errors").values()}
    for function in ("IngestSplitterFunction", "IngestFunction"):
        assert json.dumps({"Ref": function}) in errors, f"no Errors alarm for {function}"


def test_the_dashboard_shows_the_ingest_errors_and_alarms() -> None:
    body = props("OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))["widgets"]
    errors = next(w["properties"] for w in widgets if w["properties"]["title"] == "Errors")
    plotted = {tuple(m[:4]) for m in errors["metrics"] if isinstance(m[0], str)}
    for function in ("IngestSplitterFunction", "IngestFunction"):
        assert ("AWS/Lambda", "Errors", "FunctionName", f"<{function}>") in plotted
    alarms = next(w["properties"]["alarms"] for w in widgets if w["type"] == "alarm")
    every_alarm = {k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {a.removeprefix("<").removesuffix(".Arn>") for a in alarms} == every_alarm


def test_the_splitter_may_read_the_version_its_event_names() -> None:
    assert props("CatalogBucket")["VersioningConfiguration"] == {"Status": "Enabled"}
    (statement,) = [
        s
        for s in props("IngestSplitterPolicy")["PolicyDocument"]["Statement"]
        if s["Resource"] == {"Fn::Sub": "${CatalogBucket.Arn}/*"}
    ]
    assert set(statement["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}


def test_the_export_runs_one_at_a_time() -> None:
    assert props("ExportFeedbackFunction")["ReservedConcurrentExecutions"] == 1
