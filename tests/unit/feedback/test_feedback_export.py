"""The export format: a FeedbackTable item's feedback as rows, the canonical bytes of a day, reading back."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from moodtune.feedback.export import (
    ExportError,
    FeedbackExporter,
    FeedbackRow,
    build_row,
    day_key,
    decode_lines,
    encode_rows,
    entries_of,
    parse_s3_url,
    problem_reason,
    read_export,
)
from moodtune.feedback.rows import Label, latest_feedback
from moodtune.labels import LABELS

SCORES = dict(zip(LABELS, ["0.61", "0.05", "0.04", "0.05", "0.15", "0.02", "0.08"], strict=True))


def item(**changes: Any) -> dict[str, Any]:
    """A FeedbackTable item as boto3's resource reads it (Decimals, a string set)."""
    base = {
        "recommendation_id": "rec-1",
        "created_at": "2026-11-20T09:00:00.000Z",
        "model_version": "demo-a935d474b0e1",
        "mode": "distribution",
        "dominant": "joy",
        "scores": {k: Decimal(v) for k, v in reversed(SCORES.items())},
        "text": "오늘 너무 행복해",
        "songs": [
            {"song_id": "s1", "similarity": Decimal("0.97"), "dominant": "joy"},
            {"song_id": "s2", "similarity": Decimal("0.90"), "dominant": "surprise"},
        ],
        "song_ids": {"s1", "s2"},
        "feedback": {
            "s2": {"satisfied": False, "at": "2026-11-21T08:00:00.000Z"},
            "s1": {"satisfied": True, "at": "2026-11-20T23:59:59.999Z"},
        },
        "feedback_day": "2026-11-21",
        "expires_at": Decimal(1795000000),
    }
    base.update(changes)
    return base


def rows_of(record: dict[str, Any]) -> list[FeedbackRow]:
    return [build_row(record, song, entry) for song, entry in entries_of(record)]


def test_the_row_labels_are_moodtunes_labels() -> None:
    assert get_args(Label) == LABELS


def test_an_item_gives_one_row_per_feedback_with_its_own_day() -> None:
    rows = {r.song_id: r for r in rows_of(item())}
    assert rows["s1"].day == date(2026, 11, 20) and rows["s2"].day == date(2026, 11, 21)
    line = json.loads(rows["s2"].to_json())
    assert list(line) == [
        "recommendation_id",
        "created_at",
        "feedback_at",
        "text",
        "scores",
        "dominant",
        "song_id",
        "song_dominant",
        "satisfied",
        "mode",
        "model_version",
        "kind",  # "recommendation" or "journey"; a journey's rows carry their "step" too
    ]
    assert line["kind"] == "recommendation" and "step" not in line
    assert list(line["scores"]) == list(LABELS)  # label order whatever the item's order
    assert line["scores"]["joy"] == 0.61 and line["song_dominant"] == "surprise"
    assert (line["satisfied"], line["feedback_at"]) == (False, "2026-11-21T08:00:00.000Z")
    without_text = {k: v for k, v in item().items() if k != "text"}
    assert "text" not in json.loads(rows_of(without_text)[0].to_json())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"model_version": "unknown"}, "unknown_model_version"),
        ({"model_version": "demo version with spaces"}, "unknown_model_version"),
        ({"model_version": None}, "unknown_model_version"),  # missing is unknown too
        ({"scores": None}, "missing:scores"),
        ({"scores": {"joy": Decimal("1")}}, "invalid:scores"),
        ({"scores": {k: Decimal("1.5") for k in LABELS}}, "invalid:scores"),
        ({"mode": "random"}, "invalid:mode"),
        ({"dominant": "happiness"}, "invalid:dominant"),
        ({"created_at": "2026-11-20 09:00"}, "invalid:created_at"),
        ({"feedback": {"s9": {"satisfied": True, "at": "2026-11-21T08:00:00Z"}}}, "missing:song_dominant"),
        ({"feedback": {"s1": {"satisfied": "yes", "at": "2026-11-21T08:00:00Z"}}}, "invalid:satisfied"),
        ({"feedback": {"s1": {"at": "2026-11-21T08:00:00Z"}}}, "missing:satisfied"),
    ],
)
def test_an_entry_that_cannot_make_a_row_has_a_countable_reason(changes: dict[str, Any], reason: str) -> None:
    record = {k: v for k, v in item(**changes).items() if v is not None}
    song, entry = next(iter(sorted(entries_of(record))))
    with pytest.raises(ValidationError) as caught:
        build_row(record, song, entry)
    assert problem_reason(caught.value) == reason


def test_a_day_has_one_key_and_canonical_bytes() -> None:
    assert day_key(date(2026, 1, 2)) == "feedback/dt=2026-01-02/feedback-2026-01-02.jsonl.gz"
    rows = rows_of(item()) + rows_of(item(recommendation_id="rec-0"))
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    data = encode_rows(rows)
    assert encode_rows(shuffled) == data
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0: the bytes do not depend on the clock
    decoded = [FeedbackRow.model_validate(v) for v in decode_lines(data)]
    assert decoded == sorted(rows, key=lambda r: (r.feedback_at, r.recommendation_id, r.song_id))


def test_the_latest_answer_of_a_song_wins() -> None:
    first = rows_of(item())[1]
    later = first.model_copy(update={"satisfied": not first.satisfied, "feedback_at": "2026-12-01T00:00:00Z"})
    assert latest_feedback([later, first]) == [later] == latest_feedback([first, later])


def test_read_export_reads_a_directory_and_counts_bad_rows(tmp_path: Path) -> None:
    day = tmp_path / "feedback" / "dt=2026-11-21"
    day.mkdir(parents=True)
    good = rows_of(item())
    lines = [r.to_json() for r in good] + [json.dumps({"recommendation_id": "x"})]
    (day / "feedback-2026-11-21.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    problems: Counter[str] = Counter()
    assert read_export(tmp_path, problems=problems) == good
    assert problems == Counter({"missing:created_at": 1})

    (day / "junk.jsonl.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ExportError, match=r"junk\.jsonl\.gz is not gzip JSONL"):
        read_export(tmp_path)
    with pytest.raises(ExportError, match="neither a directory"):
        read_export(tmp_path / "missing")


def test_s3_urls_and_a_missing_bucket() -> None:
    assert parse_s3_url("s3://bucket/feedback/dt=2026-11-21/") == ("bucket", "feedback/dt=2026-11-21/")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(ExportError, match="not an S3 URL"):
        parse_s3_url("https://bucket/feedback")
    with pytest.raises(ExportError, match="EXPORT_BUCKET"):
        FeedbackExporter(None, None, table_name="t", bucket="")


def test_the_export_handler_imports_only_what_its_layer_ships() -> None:
    """A fresh process imports functions/export_feedback/app.py as Lambda would: the report's
    matplotlib and rich, the CLI's requests, the model runtime and numpy stay out."""
    root = Path(__file__).resolve().parents[3]
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('export_app', 'functions/export_feedback/app.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(root / "layers/shared"),
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"moodtune", "aws_lambda_powertools", "pydantic", "boto3"} <= loaded
    # Not in the layer (or not needed here: numpy is only for the model-side modules).
    heavy = {"matplotlib", "rich", "requests", "yaml", "tqdm", "moto", "numpy"}
    model_runtime = {"onnxruntime", "tokenizers", "torch", "transformers"}
    assert not loaded & (heavy | model_runtime), f"imported: {sorted(loaded & (heavy | model_runtime))}"


# ---------------------------------------------------------------- the export's part of template.yaml


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from infra.local.aws import load_template

    return load_template(Path(__file__).resolve().parents[3] / "template.yaml")


def test_the_export_bucket_is_private_encrypted_versioned_and_expires(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    bucket = resources["ExportBucket"]["Properties"]
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert (
        all(bucket["PublicAccessBlockConfiguration"].values())
        and len(bucket["PublicAccessBlockConfiguration"]) == 4
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Prefix"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["feedback/"]["ExpirationInDays"] == {"Ref": "ExportRetentionDays"}
    assert "NoncurrentVersionExpiration" in rules["feedback/"]
    policy = resources["ExportBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tls = next(s for s in policy if s["Sid"] == "DenyInsecureTransport")
    assert (tls["Effect"], tls["Action"], tls["Condition"]) == (
        "Deny",
        "s3:*",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_the_export_function_is_scheduled_and_least_privileged(template: dict[str, Any]) -> None:
    function = template["Resources"]["ExportFeedbackFunction"]["Properties"]
    assert (function["CodeUri"], function["Runtime"], function["Layers"]) == (
        "functions/export_feedback",
        "python3.12",
        [{"Ref": "SharedLayer"}],
    )
    (event,) = function["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == {"Ref": "ExportSchedule"}
    assert template["Parameters"]["ExportSchedule"]["Default"] == "cron(30 0 * * ? *)"  # daily, 00:30 UTC
    assert function["Environment"]["Variables"] == {
        "FEEDBACK_TABLE": {"Ref": "FeedbackTable"},
        "EXPORT_BUCKET": {"Ref": "ExportBucket"},
    }
    statements = [s for p in function["Policies"] for s in p["Statement"]]
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"dynamodb:Query", "s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    query = next(s for s in statements if s["Action"] == "dynamodb:Query")
    assert query["Resource"] == {"Fn::Sub": "${FeedbackTable.Arn}/index/ByFeedbackDay"}
    assert function["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_alarms_and_the_dashboard(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    alarms = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {
        (a["Namespace"], a["MetricName"], json.dumps(a["Dimensions"][0]["Value"])) for a in alarms.values()
    }
    for expected in [
        ("AWS/ApiGateway", "5xx", '{"Ref": "HttpApi"}'),
        ("AWS/Lambda", "Errors", '{"Ref": "RecommendFunction"}'),
        ("AWS/Lambda", "Errors", '{"Ref": "FeedbackFunction"}'),
        ("AWS/Lambda", "Errors", '{"Ref": "ExportFeedbackFunction"}'),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            '{"Fn::GetAtt": ["ExportFeedbackDLQ", "QueueName"]}',
        ),
    ]:
        assert expected in watched
    body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    known = set(resources) | set(template["Parameters"])
    assert {n.split(".")[0] for n in names if not n.startswith("AWS::")} <= known
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    titles = {w["properties"]["title"]: w["properties"] for w in widgets}
    rate = titles["Satisfaction rate by model version (%, daily)"]
    expressions = [m[0]["expression"] for m in rate["metrics"] if isinstance(m[0], dict)]
    assert "100 * FILL(c1, 0) / (FILL(c1, 0) + FILL(c0, 0))" in expressions
    assert {"Recommendations by model version", "Latency (ms)", "Errors", "Feedback export"} <= set(titles)
