"""Training examples from exported feedback rows (``feedback/dt=YYYY-MM-DD/…jsonl.gz``).

A row: ``{recommendation_id, created_at, feedback_at, text, scores{label: p}, dominant, song_id,
song_dominant, satisfied, mode, model_version}``. The rule is the feedback loop's
(``model_export.learn``, measured in docs/retraining.md): **lyrics labelled through feedback**. Each
song's answers (liked and disliked, only a recommendation's latest answer per song) are evidence
about the feeling the song carries; the lyric chunks of a song with enough answers become soft,
evidence-weighted training examples whose target is the song's lyric vector (scored by the bundle in
service, the prior) moved by that evidence. The user's text is not needed (only its ``scores``), so
rows exported with ``STORE_TEXT=false`` count too.

(The older rule, a satisfied text labelled with the model's own predicted ``dominant``, is gone: it
could only confirm what the model already believed and dropped the dislikes.)
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model_export import learn
from model_export.datasets import Example, LoadReport
from model_export.errors import ModelExportError


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


def lyric_chunks(catalog: Path, lines_per_chunk: int) -> dict[str, list[str]]:
    """Every catalog song's lyric chunks, cut as ingestion cuts them for a bundle's chunking."""
    from moodtune.catalog.ingest import CatalogEntry, IngestSettings, read_catalog_file
    from moodtune.catalog.lyrics import prepare_lyrics

    if not catalog.is_file():
        raise ModelExportError(f"{catalog}: no such catalog file (the JSONL that ingestion reads).")
    rules = IngestSettings().lyrics_options(lines_per_chunk)
    return {
        p.song.song_id: list(prepare_lyrics(p.song.lyrics, rules).chunks)
        for p in read_catalog_file(catalog)
        if isinstance(p, CatalogEntry)
    }


def catalog_lyrics(catalog: Path, bundle: Path) -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
    """``lyric_chunks`` for ``bundle``, and every song's lyric vector as ingestion scores it with
    ``bundle`` (the rule's prior: the bundle that served the feedback)."""
    from moodtune.catalog.ingest import CatalogEntry, IngestSettings, SongScorer, read_catalog_file
    from moodtune.emotion.classifier import EmotionClassifier

    classifier = EmotionClassifier.from_bundle(bundle)
    chunks = lyric_chunks(catalog, classifier.lines_per_chunk)
    settings = IngestSettings()
    rules = settings.lyrics_options(classifier.lines_per_chunk)
    entries = [p.song for p in read_catalog_file(catalog) if isinstance(p, CatalogEntry)]
    scores = SongScorer(classifier, rules, settings.batch_size).score([song.lyrics for song in entries])
    priors = {
        song.song_id: np.asarray(score.vector, dtype=np.float64)
        for song, score in zip(entries, scores, strict=True)
        if score is not None
    }
    return chunks, priors


def feedback_examples(
    rows: Sequence[Mapping[str, Any]],
    chunks: Mapping[str, Sequence[str]],
    priors: Mapping[str, np.ndarray],
    cfg: learn.LearnConfig,
    report: LoadReport | None = None,
) -> list[Example]:
    """The loop's rule on ``rows`` (latest answers): ``learn.lyric_examples``, then (``text_weight``
    above 0, joint rule) ``learn.text_examples`` for the rows that carry text; ``report`` counts what
    was kept (per target label) and which songs were left out and why."""
    evidence = learn.song_evidence(rows)
    # Targets as sharp as the answers make them: measured, targets held to the lyrics' peak (soft,
    # near-flat) cost 4 points of test accuracy in one round (docs/retraining.md).
    joint = learn.joint_inference(priors, rows, cfg) if cfg.rule == "joint" else None
    targets = joint.blended(cfg.target_strength) if joint is not None else None
    examples = learn.lyric_examples(chunks, priors, evidence, cfg, targets)
    if joint is not None and cfg.text_weight > 0:
        examples += learn.text_examples(joint, cfg)
    if report is not None:
        for song_id, ev in evidence.items():
            if song_id not in priors:
                report.dropped["song not in the catalog"] += 1
            elif ev.answers_count < cfg.min_answers:
                report.dropped[f"song with fewer than {cfg.min_answers} answers"] += 1
            elif ev.n_likes == 0 and cfg.need_like:
                report.dropped["song never liked"] += 1
        report.dropped["row without scores or answer"] += len(rows) - sum(
            ev.answers_count for ev in evidence.values()
        )
        report.dropped = +report.dropped
        report.kept = Counter(e.label for e in examples)
        report.soft = sum(e.soft is not None for e in examples)
    return examples


def load_feedback(
    source: str, catalog: Path, bundle: Path, cfg: learn.LearnConfig | None = None
) -> tuple[list[Example], LoadReport]:
    """Lyric examples labelled through the feedback at ``source`` (a .jsonl.gz file, a directory of
    them, or an ``s3://bucket/prefix`` URI read with boto3): ``catalog``'s songs, their chunks and
    priors from ``bundle`` (the bundle that served the feedback)."""
    report = LoadReport(source=f"{source} (feedback)")
    raw, n_files = load_rows(source)
    if n_files == 0:
        raise ModelExportError(f"{source}: no .jsonl.gz feedback files there.")
    report.rows = len(raw)
    rows = _latest_answers(raw, report)
    malformed = [r for r in rows if not isinstance(r, dict) or "song_id" not in r]
    if malformed:
        report.dropped["malformed row"] += len(malformed)
    rows = [r for r in rows if isinstance(r, dict) and "song_id" in r]
    chunks, priors = catalog_lyrics(catalog, bundle)
    return feedback_examples(rows, chunks, priors, cfg or learn.LearnConfig(), report), report
