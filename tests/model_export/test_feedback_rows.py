"""Feedback export rows -> weighted training examples (local files, directories, S3 via moto in-process)."""

import gzip
import json

import boto3
import pytest
from moto import mock_aws

from model_export.datasets import Example
from model_export.errors import ModelExportError
from model_export.feedback import load_feedback


def row(rid: str, text: str | None, dominant: str, satisfied: bool, song: str = "s1") -> dict:
    return {
        "recommendation_id": rid,
        "created_at": "2026-11-24T10:00:00Z",
        "feedback_at": "2026-11-24T10:01:00Z",
        "text": text,
        "scores": {"joy": 0.7, "sadness": 0.3},
        "dominant": dominant,
        "song_id": song,
        "song_dominant": dominant,
        "satisfied": satisfied,
        "mode": "distribution",
        "model_version": "demo-0123456789ab",
    }


ROWS = [
    row("r1", "오늘 진짜 신나 ㅋㅋ", "joy", True),
    row("r1", "오늘 진짜 신나 ㅋㅋ", "joy", True, song="s2"),  # same recommendation, second liked song
    row("r2", "비가 와서 우울해", "sadness", False),
    row("r3", None, "anger", True),
    row("r4", "  ", "fear", True),
    row("r5", "문이 갑자기 열려서 놀랐어", "surprise", True),
]


def gz(rows: list[dict]) -> bytes:
    return gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8"))


def test_satisfied_rows_become_weighted_examples(tmp_path):
    path = tmp_path / "part-0.jsonl.gz"
    path.write_bytes(gz(ROWS))
    examples, report = load_feedback(str(path), weight=0.3)
    assert examples == [
        Example("오늘 진짜 신나 ㅋㅋ", "joy", 0.3),
        Example("문이 갑자기 열려서 놀랐어", "surprise", 0.3),
    ]
    assert report.rows == 6
    assert report.dropped["not satisfied"] == 1
    assert report.dropped["no text (STORE_TEXT off or expired)"] == 2
    assert report.dropped["same recommendation again"] == 1


def test_directory_of_daily_partitions(tmp_path):
    for day, rows in (("2026-11-23", ROWS[:2]), ("2026-11-24", ROWS[2:])):
        (tmp_path / f"dt={day}").mkdir()
        (tmp_path / f"dt={day}" / "part-0.jsonl.gz").write_bytes(gz(rows))
    examples, _ = load_feedback(str(tmp_path))
    assert [e.label for e in examples] == ["joy", "surprise"]


def test_s3_prefix(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        s3.put_object(Bucket="exports", Key="feedback/dt=2026-11-24/a.jsonl.gz", Body=gz(ROWS))
        s3.put_object(Bucket="exports", Key="other/dt=2026-11-24/b.jsonl.gz", Body=gz(ROWS))
        examples, report = load_feedback("s3://exports/feedback/")
    assert len(examples) == 2 and report.rows == 6


def test_bad_inputs(tmp_path):
    with pytest.raises(ModelExportError, match="no such feedback file"):
        load_feedback(str(tmp_path / "missing"))
    with pytest.raises(ModelExportError, match=r"no \.jsonl\.gz feedback files"):
        load_feedback(str(tmp_path))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ModelExportError, match=r"broken\.jsonl\.gz: not a gzip JSONL"):
        load_feedback(str(broken))
    bad_line = tmp_path / "d" / "x.jsonl.gz"
    bad_line.parent.mkdir()
    bad_line.write_bytes(gzip.compress(b'{"satisfied": true}\n{nope'))
    with pytest.raises(ModelExportError, match=r"x\.jsonl\.gz:2: not valid JSON"):
        load_feedback(str(bad_line.parent))


def test_only_the_latest_answer_for_a_song_counts(tmp_path):
    liked = row("r9", "시험 끝나서 신난다", "joy", True)
    disliked = {**row("r9", "시험 끝나서 신난다", "joy", False), "feedback_at": "2026-11-25T09:00:00Z"}
    for day, rows in (("2026-11-24", [liked]), ("2026-11-25", [disliked])):
        (tmp_path / f"dt={day}").mkdir()
        (tmp_path / f"dt={day}" / "part-0.jsonl.gz").write_bytes(gz(rows))
    examples, report = load_feedback(str(tmp_path))
    assert examples == []
    assert report.dropped["superseded by a later answer"] == 1
    assert report.dropped["not satisfied"] == 1
    # and the other way round: disliked first, liked later is an example
    (tmp_path / "dt=2026-11-24" / "part-0.jsonl.gz").write_bytes(
        gz([{**disliked, "feedback_at": "2026-11-24T08:00:00Z"}])
    )
    (tmp_path / "dt=2026-11-25" / "part-0.jsonl.gz").write_bytes(
        gz([{**liked, "feedback_at": "2026-11-25T08:00:00Z"}])
    )
    examples, _ = load_feedback(str(tmp_path))
    assert examples == [Example("시험 끝나서 신난다", "joy", 0.5)]


def test_s3_missing_bucket_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), pytest.raises(ModelExportError) as error:
        load_feedback("s3://no-such-bucket/feedback/")
    message = str(error.value)
    assert message.startswith("s3://no-such-bucket/feedback/: S3 refused the read (NoSuchBucket")
    assert "Check the bucket name" in message


def test_s3_without_credentials_is_a_clear_error(monkeypatch, tmp_path):
    # AWS_ENDPOINT_URL too: the session's local endpoint (tests/conftest.py) would answer instead.
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    with pytest.raises(ModelExportError, match=r"s3://exports/feedback/: cannot read the feedback export"):
        load_feedback("s3://exports/feedback/")
