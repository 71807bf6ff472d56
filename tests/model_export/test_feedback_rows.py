"""Feedback export rows -> lyric examples labelled through feedback (local files, directories, S3 via
moto in-process), with the committed demo bundle as the prior."""

import gzip
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from model_export.errors import ModelExportError
from model_export.feedback import catalog_lyrics, load_feedback
from model_export.learn import LearnConfig
from moodtune.labels import LABELS

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "models" / "demo"
SAD = {"sadness": 0.9, "joy": 0.05, "neutral": 0.05}
JOY = {"joy": 0.9, "sadness": 0.05, "neutral": 0.05}
SONGS = [
    {"song_id": "s1", "title": "비", "artist": "가", "lyrics": "비가 내려\n너 없는 밤이 길어\n울었어"},
    {"song_id": "s2", "title": "해", "artist": "나", "lyrics": "햇살이 좋아\n오늘은 신나는 날\n같이 웃자"},
]


def row(rid: str, song: str, satisfied: bool, scores: dict | None = None, at: str = "10:01") -> dict:
    return {
        "recommendation_id": rid,
        "created_at": "2026-11-24T10:00:00Z",
        "feedback_at": f"2026-11-24T{at}:00Z",
        "text": None,  # the rule reads the text's scores, never its text (STORE_TEXT=false rows count)
        "scores": scores or SAD,
        "dominant": max(scores or SAD, key=(scores or SAD).get),
        "song_id": song,
        "song_dominant": "sadness",
        "satisfied": satisfied,
        "mode": "distribution",
        "model_version": "demo-0123456789ab",
    }


ROWS = [
    row("r1", "s1", True),
    row("r2", "s1", True),
    row("r3", "s1", False, JOY),
    row("r4", "s2", True),  # one answer: below min_answers
    row("r5", "s9", True),  # not in the catalog
    {"recommendation_id": "r6", "song_id": "s2", "satisfied": True},  # no scores
]


def gz(rows: list[dict]) -> bytes:
    return gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8"))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "songs.jsonl"
    path.write_text("\n".join(json.dumps(s, ensure_ascii=False) for s in SONGS) + "\n", encoding="utf-8")
    return path


def test_answered_songs_lyrics_become_soft_examples_moved_by_the_answers(tmp_path, catalog):
    path = tmp_path / "part-0.jsonl.gz"
    path.write_bytes(gz(ROWS))
    examples, report = load_feedback(str(path), catalog, BUNDLE)
    chunks, priors = catalog_lyrics(catalog, BUNDLE)
    assert [e.text for e in examples] == chunks["s1"] and examples  # only s1 has enough answers
    sad = LABELS.index("sadness")
    for e in examples:
        assert e.soft is not None and abs(sum(e.soft) - 1) < 1e-4
        # two likes from sad texts, one dislike from a joyful one: more sadness than the lyrics' prior
        assert e.soft[sad] > priors["s1"][sad]
        assert e.weight == pytest.approx(3 / (3 + LearnConfig.strength))
    assert report.rows == 6
    assert report.dropped["song with fewer than 2 answers"] == 1
    assert report.dropped["song not in the catalog"] == 1
    assert report.dropped["row without scores or answer"] == 1


def test_a_song_never_liked_counts_unless_a_like_is_required_and_the_weight_is_capped(tmp_path, catalog):
    path = tmp_path / "part-0.jsonl.gz"
    path.write_bytes(gz([row("a", "s2", False), row("b", "s2", False), *ROWS[:3]]))
    examples, report = load_feedback(str(path), catalog, BUNDLE, LearnConfig(max_weight=0.2, need_like=True))
    assert {e.weight for e in examples} == {0.2}
    assert report.dropped["song never liked"] == 1
    chunks, _ = catalog_lyrics(catalog, BUNDLE)
    assert [e.text for e in examples] == chunks["s1"]
    # by default a song only disliked counts too: its target moves away from the texts' feelings
    examples, _ = load_feedback(str(path), catalog, BUNDLE)
    assert [e.text for e in examples] == chunks["s1"] + chunks["s2"]


def test_a_text_with_answers_becomes_an_example_of_what_its_user_liked(tmp_path, catalog):
    # read as joy (narrowly) by the model, but its users liked the sad song and disliked the happy one
    reading = {"joy": 0.55, "sadness": 0.4, "neutral": 0.05}
    misread = [
        {**row(f"m{i}", song, song == "s1", reading), "text": "오늘따라 괜히 그래"}
        for i in range(2)
        for song in ("s1", "s2")
    ]
    path = tmp_path / "part-0.jsonl.gz"
    path.write_bytes(gz(misread))
    examples, report = load_feedback(str(path), catalog, BUNDLE)
    (text,) = [e for e in examples if e.text == "오늘따라 괜히 그래"]
    assert text.label == "sadness"  # not the model's joy
    assert text.weight == pytest.approx(4 / (4 + LearnConfig.strength))
    assert report.kept["sadness"] >= 1
    off, _ = load_feedback(str(path), catalog, BUNDLE, LearnConfig(text_weight=0.0))
    assert "오늘따라 괜히 그래" not in {e.text for e in off}
    assert len(off) == len(examples) - 1  # the lyrics are the same either way


def test_directory_of_daily_partitions(tmp_path, catalog):
    for day, rows in (("2026-11-23", ROWS[:2]), ("2026-11-24", ROWS[2:])):
        (tmp_path / f"dt={day}").mkdir()
        (tmp_path / f"dt={day}" / "part-0.jsonl.gz").write_bytes(gz(rows))
    examples, _ = load_feedback(str(tmp_path), catalog, BUNDLE)
    single = tmp_path / "one.jsonl.gz"
    single.write_bytes(gz(ROWS))
    assert examples == load_feedback(str(single), catalog, BUNDLE)[0]


def test_s3_prefix(monkeypatch, catalog):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        s3.put_object(Bucket="exports", Key="feedback/dt=2026-11-24/a.jsonl.gz", Body=gz(ROWS))
        s3.put_object(Bucket="exports", Key="other/dt=2026-11-24/b.jsonl.gz", Body=gz(ROWS))
        examples, report = load_feedback("s3://exports/feedback/", catalog, BUNDLE)
    assert examples and report.rows == 6


def test_bad_inputs(tmp_path, catalog):
    with pytest.raises(ModelExportError, match="no such feedback file"):
        load_feedback(str(tmp_path / "missing"), catalog, BUNDLE)
    with pytest.raises(ModelExportError, match=r"no \.jsonl\.gz feedback files"):
        load_feedback(str(tmp_path), catalog, BUNDLE)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ModelExportError, match=r"broken\.jsonl\.gz: not a gzip JSONL"):
        load_feedback(str(broken), catalog, BUNDLE)
    bad_line = tmp_path / "d" / "x.jsonl.gz"
    bad_line.parent.mkdir()
    bad_line.write_bytes(gzip.compress(b'{"satisfied": true}\n{nope'))
    with pytest.raises(ModelExportError, match=r"x\.jsonl\.gz:2: not valid JSON"):
        load_feedback(str(bad_line.parent), catalog, BUNDLE)
    (tmp_path / "ok.jsonl.gz").write_bytes(gz(ROWS))
    with pytest.raises(ModelExportError, match="no such catalog file"):
        load_feedback(str(tmp_path / "ok.jsonl.gz"), tmp_path / "none.jsonl", BUNDLE)


def test_only_the_latest_answer_for_a_song_counts(tmp_path, catalog):
    liked = [row("r9", "s2", True, JOY, at="10:01"), row("r8", "s2", True, JOY)]
    # r9's like of s2 was taken back the next day: s2 has one like, one dislike from r9 (latest)
    disliked = {**row("r9", "s2", False, JOY), "feedback_at": "2026-11-25T09:00:00Z"}
    for day, rows in (("2026-11-24", liked), ("2026-11-25", [disliked])):
        (tmp_path / f"dt={day}").mkdir()
        (tmp_path / f"dt={day}" / "part-0.jsonl.gz").write_bytes(gz(rows))
    examples, report = load_feedback(str(tmp_path), catalog, BUNDLE)
    assert report.dropped["superseded by a later answer"] == 1
    joy = LABELS.index("joy")
    # 1 like + 1 dislike from joyful texts: weight 2/(2+2); had the like stood, 2 likes would weigh the same
    assert examples and {e.weight for e in examples} == {0.5}
    retracted = examples[0].soft[joy]
    (tmp_path / "dt=2026-11-25" / "part-0.jsonl.gz").write_bytes(gz([]))
    kept, _ = load_feedback(str(tmp_path), catalog, BUNDLE)
    assert kept[0].soft[joy] > retracted  # two standing likes say more joy than a like and a dislike


def test_s3_missing_bucket_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), pytest.raises(ModelExportError) as error:
        load_feedback("s3://no-such-bucket/feedback/", ROOT / "data/demo/songs.jsonl", BUNDLE)
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
        load_feedback("s3://exports/feedback/", ROOT / "data/demo/songs.jsonl", BUNDLE)
