"""Training examples from exported feedback rows (``feedback/dt=YYYY-MM-DD/…jsonl.gz``).

A row: ``{recommendation_id, created_at, feedback_at, text, scores{label: p}, dominant, song_id,
song_dominant, satisfied, mode, model_version}``. A satisfied row with text becomes an example labelled
with the text's predicted ``dominant`` emotion, with a weight: the user liked a song picked for that
emotion, which is weak evidence that the prediction was right. Unsatisfied rows say nothing certain
about the text's label and are skipped. The same recommendation can have several satisfied songs; its
text is used once.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from model_export.datasets import Example, LoadReport
from model_export.errors import ModelExportError
from moodtune.emotion.text import normalize_text
from moodtune.labels import canonical_label


def _is_rows_file(name: str) -> bool:
    return name.endswith((".jsonl.gz", ".jsonl"))


def _decode(name: str, data: bytes) -> str:
    try:
        return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelExportError(f"{name}: not a gzip JSONL feedback export ({exc}).") from exc


def _local_files(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_file():
        yield str(path), path.read_bytes()
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and _is_rows_file(p.name)):
            yield str(file), file.read_bytes()
    else:
        raise ModelExportError(f"{path}: no such feedback file or directory.")


def _s3_files(uri: str) -> Iterator[tuple[str, bytes]]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ModelExportError(f"{uri}: expected s3://bucket/prefix.")
    where = uri
    try:
        s3 = boto3.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(
            obj["Key"] for page in pages for obj in page.get("Contents", []) if _is_rows_file(obj["Key"])
        )
        for key in keys:
            where = f"s3://{bucket}/{key}"
            yield where, s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ModelExportError(
            f"{where}: S3 refused the read ({error.get('Code', '?')}: {error.get('Message', exc)}). Check "
            "the bucket name and prefix, the region (AWS_REGION) and that your credentials may read it."
        ) from exc
    except BotoCoreError as exc:  # no credentials, no region, endpoint unreachable, …
        raise ModelExportError(
            f"{where}: cannot read the feedback export from S3 ({exc}). Configure AWS credentials and a "
            "region (aws configure, or AWS_PROFILE / AWS_REGION), or download the export and pass a path."
        ) from exc


def _latest_answers(rows: list, report: LoadReport) -> list:
    """One row per (recommendation, song): the latest answer. A song rated again later appears in both
    days' export objects; only what the user said last counts (liked, then disliked: not an example)."""
    latest: dict[tuple[str, str], dict] = {}
    kept: list = []
    for row in rows:
        if not isinstance(row, dict) or "recommendation_id" not in row or "song_id" not in row:
            kept.append(row)
            continue
        key = (str(row["recommendation_id"]), str(row["song_id"]))
        if key in latest:
            report.dropped["superseded by a later answer"] += 1
            if str(row.get("feedback_at", "")) < str(latest[key].get("feedback_at", "")):
                continue
        latest[key] = row
    return kept + list(latest.values())


def load_rows(source: str) -> tuple[list, int]:
    """Every decoded row at ``source`` (file, directory or ``s3://`` prefix) and the number of files."""
    files = _s3_files(source) if source.startswith("s3://") else _local_files(Path(source))
    raw: list = []
    n_files = 0
    for name, data in files:
        n_files += 1
        for number, line in enumerate(_decode(name, data).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ModelExportError(f"{name}:{number}: not valid JSON ({exc.msg}).") from exc
    return raw, n_files


def latest_rows(rows: list) -> list[dict]:
    """One row per (recommendation, song), its latest answer; malformed rows are dropped."""
    report = LoadReport(source="rows")
    return [r for r in _latest_answers(rows, report) if isinstance(r, dict) and "song_id" in r]


def load_feedback(source: str, weight: float = 0.5) -> tuple[list[Example], LoadReport]:
    """Examples from satisfied feedback rows at ``source`` (a .jsonl.gz file, a directory of them, or an
    ``s3://bucket/prefix`` URI read with boto3), each with ``weight``."""
    report = LoadReport(source=f"{source} (feedback)")
    raw, n_files = load_rows(source)
    report.rows = len(raw)
    seen: set[str] = set()
    examples = []
    for row in _latest_answers(raw, report):
        if not isinstance(row, dict) or row.get("satisfied") is not True:
            report.dropped["not satisfied"] += 1
            continue
        text = normalize_text(str(row.get("text") or ""))
        if not text:
            report.dropped["no text (STORE_TEXT off or expired)"] += 1
            continue
        label = canonical_label(str(row.get("dominant", "")))
        if label is None:
            report.dropped[f"unknown dominant {row.get('dominant')!r}"] += 1
            continue
        key = str(row.get("recommendation_id") or text)
        if key in seen:
            report.dropped["same recommendation again"] += 1
            continue
        seen.add(key)
        examples.append(Example(text, label, weight))
        report.kept[label] += 1
    if n_files == 0:
        raise ModelExportError(f"{source}: no .jsonl.gz feedback files there.")
    report.kept = Counter(report.kept)
    return examples, report
