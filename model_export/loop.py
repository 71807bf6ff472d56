"""The feedback loop, simulated end to end through the real stack: ``python -m model_export.loop``.

    python -m model_export.loop                     # 3 rounds, learning on (≈ 7 min on 2 cores)
    python -m model_export.loop --control           # the same rounds with learning off
    python -m model_export.loop --learn vectors     # only the feedback-aware song vectors
    python -m model_export.loop --quick             # 1 tiny round with a tiny model (the test suite)

Each round: simulated users ask for songs over HTTP (the local front, the real handlers, moto) and
like or dislike them over HTTP → the real ExportFeedbackFunction handler writes the export to S3 →
the learner (``model_export.learn``) reads only that export → a fine-tuned bundle
(``model_export.train.fit`` from the previous round's checkpoint, ``model_export.export``) → the real
ingestion re-scores the catalog under the new ``model_version`` → the feedback-aware song vectors
are written into that catalog → the model switch's gate (``infra.model_switch check``) → serving
switched to the new bundle → the round is measured.

Ground truth (``data/demo/song_intent.tsv``, the users' true feelings, the eval labels) is read by
``read_truth`` alone and handed only to the simulated users and to the measurement; the learner,
export, ingestion and serving never see it (tests/model_export/test_loop.py proves it).

Artefacts (bundles, checkpoints, each round's export copy, ``loop.json``, the plot) go under
``--out`` (default ``.loop/run``, git-ignored). A round that finished is not run again when the loop
is started again with the same ``--out``: its export copy is re-read, so no feedback is duplicated.
A round whose training or export fails stops the loop; its artefacts stay and the stack still serves
the previous round's bundle until it is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import io
import json
import logging
import math
import os
import random
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from model_export import learn
from model_export.datasets import Example, read_plain, stratified_split
from model_export.errors import ModelExportError, run_cli, setup_logging
from model_export.feedback import load_rows
from moodtune.labels import LABELS, canonical_label

log = logging.getLogger("model_export.loop")

ROOT = Path(__file__).resolve().parents[1]
USERS = ROOT / "data" / "loop" / "users.tsv"
EVAL = ROOT / "data" / "demo" / "reference.tsv"
INTENT = ROOT / "data" / "demo" / "song_intent.tsv"
CATALOG = ROOT / "data" / "demo" / "songs.jsonl"
CORPUS = ROOT / "data" / "demo" / "emotions.tsv"
MIXED = ROOT / "data" / "demo" / "mixed.tsv"
SERVED = ROOT / "models" / "demo"
OUT = ROOT / ".loop" / "run"
BASE = ROOT / ".loop" / "base"
LIMIT = 5
LEARN_MODES = ("both", "vectors", "retrain", "none")


# ---------------------------------------------------------------- ground truth (users, eval, intents)


@dataclass(frozen=True)
class User:
    """A simulated user: a text and the feelings it truly carries (one or two)."""

    text: str
    feelings: tuple[str, ...]


@dataclass(frozen=True)
class Truth:
    """What only the simulated users and the measurement may know."""

    users: tuple[User, ...]
    eval: tuple[tuple[str, str], ...]  # (label, text)
    intent: Mapping[str, str]  # song_id -> the emotion its writer meant
    eval_source: str


def _rows(path: Path, columns: Sequence[str], what: str) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelExportError(f"{path}: cannot read the {what} ({exc}).") from exc
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[: len(columns)]] != list(columns):
        raise ModelExportError(f"{path}:1: the {what} needs the header {'<TAB>'.join(columns)}.")
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(columns):
            raise ModelExportError(
                f"{path}:{number}: {len(row)} columns, the {what} needs {len(columns)} "
                f"({', '.join(columns)})."
            )
        yield number, dict(zip(columns, (cell.strip() for cell in row), strict=False))


def _label(path: Path, number: int, raw: str) -> str:
    label = canonical_label(raw)
    if label is None:
        raise ModelExportError(
            f"{path}:{number}: unknown label {raw!r} (expected one of {', '.join(LABELS)})."
        )
    return label


def read_users(path: Path) -> list[User]:
    """``feeling<TAB>second<TAB>text`` (``second`` may be empty); a bad line is an error naming it."""
    users = []
    for number, row in _rows(path, ("feeling", "second", "text"), "users file"):
        if not row["text"]:
            raise ModelExportError(f"{path}:{number}: empty text.")
        feelings = [_label(path, number, row["feeling"])]
        if row["second"]:
            feelings.append(_label(path, number, row["second"]))
        users.append(User(row["text"], tuple(dict.fromkeys(feelings))))
    if not users:
        raise ModelExportError(f"{path}: no users.")
    return users


def read_eval(path: Path) -> list[tuple[str, str]]:
    """``label<TAB>text`` with a header (data/demo/reference.tsv's layout); errors name the line."""
    rows = []
    for number, row in _rows(path, ("label", "text"), "eval file"):
        if not row["text"]:
            raise ModelExportError(f"{path}:{number}: empty text.")
        rows.append((_label(path, number, row["label"]), row["text"]))
    if not rows:
        raise ModelExportError(f"{path}: no eval texts.")
    return rows


def read_truth(users: Path, eval_path: Path | None, intent: Path, holdout: float, seed: int) -> Truth:
    """The only reader of ground truth. Without ``eval_path``, ``holdout`` of the users are measured
    (never answered) instead of the eval file."""
    people = read_users(users)
    if eval_path is not None:
        evaluation, source = read_eval(eval_path), str(eval_path)
    else:
        order = list(range(len(people)))
        random.Random(seed).shuffle(order)
        cut = max(1, round(len(people) * holdout))
        held = sorted(order[:cut])
        evaluation = [(people[i].feelings[0], people[i].text) for i in held]
        people = [p for i, p in enumerate(people) if i not in set(held)]
        source = f"{users} (held-out {cut} users)"
    meant = {}
    for number, row in _rows(intent, ("song_id", "intended_dominant"), "song intents"):
        meant[row["song_id"]] = _label(intent, number, row["intended_dominant"])
    return Truth(tuple(people), tuple(evaluation), meant, source)


# ---------------------------------------------------------------- HTTP (the simulated clients)


def _call(
    url: str, payload: Mapping[str, Any] | None = None, timeout: float = 60, tries: int = 5
) -> tuple[int, Any]:
    """One JSON request; a 503 (the catalog still loading on a loaded machine) is retried, as a client
    told to retry later would."""
    data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    for attempt in range(tries):
        request = urllib.request.Request(
            url,
            data=data,
            headers={"content-type": "application/json"},
            method="GET" if data is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, json.loads(exc.read() or b"null")
            if status != 503 or attempt == tries - 1:
                return status, body
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def recommend(api: str, text: str, limit: int = LIMIT) -> dict[str, Any]:
    """POST /v1/recommendations; raises on anything but 201."""
    status, body = _call(f"{api}/v1/recommendations", {"text": text, "limit": limit})
    if status != 201:
        # Not the body: it may quote the user's text, which logs and errors never carry.
        raise ModelExportError(f"POST /v1/recommendations answered {status}")
    return body


def simulate_users(
    api: str,
    truth: Truth,
    n: int,
    rng: random.Random,
    noise: float,
    answer_rate: float,
    progress: bool,
    desc: str,
) -> dict[str, int]:
    """``n`` users (drawn from the users file) ask and answer over HTTP; counts of what they said."""
    counts: dict[str, Any] = {
        "users": 0,
        "answers": 0,
        "likes": 0,
        "slot_answers": [0] * LIMIT,
        "slot_likes": [0] * LIMIT,
    }
    for _ in tqdm(range(n), desc=desc, disable=not progress, leave=False):
        user = truth.users[rng.randrange(len(truth.users))]
        answer = recommend(api, user.text)
        for slot, song in enumerate(answer["songs"]):
            if rng.random() >= answer_rate:
                continue
            like = truth.intent.get(song["song_id"]) in user.feelings
            if rng.random() < noise:
                like = not like
            status, _ = _call(
                f"{api}/v1/recommendations/{answer['recommendation_id']}/feedback",
                {"song_id": song["song_id"], "satisfied": like},
            )
            if status != 200:
                raise ModelExportError(f"POST …/feedback answered {status}")
            counts["answers"] += 1
            counts["likes"] += int(like)
            counts["slot_answers"][slot] += 1
            counts["slot_likes"][slot] += int(like)
        counts["users"] += 1
    return counts


# ---------------------------------------------------------------- measurement


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def satisfaction(lists: Sequence[tuple[str, Sequence[str]]], intent: Mapping[str, str]) -> dict[str, Any]:
    """Top-5: the share of (eval text, listed song) pairs whose song was meant for the text's feeling
    (what a noiseless user would like); top-1: the share of texts whose first song was."""
    hits = sum(intent.get(s) == label for label, songs in lists for s in songs)
    pairs = sum(len(songs) for _, songs in lists)
    top1 = sum(bool(songs) and intent.get(songs[0]) == label for label, songs in lists)
    return {
        "eval_satisfaction": round(hits / max(pairs, 1), 4),
        "eval_ci": list(wilson(hits, pairs)),
        "eval_top1": round(top1 / max(len(lists), 1), 4),
        "eval_pairs": pairs,
    }


def serve_exploring(share: float, seed: int, window: int = 0) -> None:
    """Set the served exploration (EXPLORE_SHARE, EXPLORE_WINDOW, EXPLORE_SEED) and start a fresh
    execution environment, as a deploy of the setting would."""
    from moodtune import service

    os.environ["EXPLORE_SHARE"] = str(share)
    os.environ["EXPLORE_WINDOW"] = str(window)
    os.environ["EXPLORE_SEED"] = str(seed)
    service.reset()
    service.warm_recommend()  # the init phase: model and catalog loaded before the first request


def measure_http(api: str, truth: Truth) -> dict[str, Any]:
    """The eval texts through the served API (measured, never answered), exploration off: the figure
    is the model's and the catalog's, the exploration's cost is measured on the users' answers."""
    serve_exploring(0.0, 0)
    lists = [(label, [s["song_id"] for s in recommend(api, text)["songs"]]) for label, text in truth.eval]
    return satisfaction(lists, truth.intent)


def measure_offline(classifier: Any, vectors: Mapping[str, np.ndarray], truth: Truth) -> dict[str, Any]:
    """The same figure with the serving code in-process, for a catalog that is not served (ablation)."""
    from moodtune.catalog.songs import Catalog, ScoredSong
    from moodtune.recommend.ranking import recommend as rank

    catalog = Catalog(
        model_version=classifier.model_version,
        songs=tuple(ScoredSong(s, s, "", tuple(float(x) for x in v)) for s, v in vectors.items()),
    )
    probs = classifier.predict([text for _, text in truth.eval])
    lists = [
        (label, [m.song.song_id for m in rank(catalog, p, limit=LIMIT)])
        for (label, _), p in zip(truth.eval, probs, strict=True)
    ]
    out = satisfaction(lists, truth.intent)
    out["songs_as_meant"] = as_meant(vectors, truth.intent)
    return out


def as_meant(vectors: Mapping[str, np.ndarray], intent: Mapping[str, str]) -> int:
    """Songs whose (served) dominant feeling is the one their writer meant."""
    return sum(LABELS[int(np.argmax(v))] == intent.get(s) for s, v in vectors.items())


# ---------------------------------------------------------------- the base checkpoint (round 0)


@dataclass(frozen=True)
class Recipe:
    """How rounds train: the model shape and the fine-tuning of one round."""

    quick: bool = False
    epochs_per_round: int = 3
    lr: float = 1e-4
    replay: int = 1500  # corpus training texts mixed into a round (against forgetting)
    seed: int = 0


def _splits(seed: int) -> tuple[list[Example], list[Example], list[Example]]:
    examples = read_plain(CORPUS) + (read_plain(MIXED) if MIXED.is_file() else [])
    return stratified_split(examples, 0.1, 0.1, seed=seed)


def ensure_base(base: Path, quick: bool, progress: bool, rebuild: bool = False) -> tuple[Path, Path]:
    """(fp32 checkpoint, its INT8 bundle) of round 0, built once with the demo recipe and cached.

    The full recipe is ``python -m model_export.demo``'s (so on the CPU the committed bundle was made
    on it reproduces models/demo); ``quick`` builds a tiny model in seconds for the tests."""
    from model_export.demo import DemoShape, demo_config, run_demo
    from model_export.demo import build_parser as demo_parser
    from model_export.lexical import LexicalConfig
    from model_export.train import TrainConfig
    from moodtune.emotion.lexical import DEFAULT_BUCKETS

    checkpoint, bundle = base / "checkpoint", base / "bundle"
    if rebuild:
        shutil.rmtree(base, ignore_errors=True)
    if (checkpoint / "config.json").is_file() and (bundle / "manifest.json").is_file():
        return checkpoint, bundle
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    d = demo_parser().parse_args([])
    if quick:
        shape = DemoShape(
            vocab_size=1500,
            embedding_size=32,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
        cfg = TrainConfig(epochs=1, lr=2e-3, batch_size=64, max_length=32, seed=d.seed, progress=progress)
    else:
        shape = DemoShape()
        cfg = demo_config(d, progress)
    log.info("building the round-0 checkpoint in %s (once)", base)
    run_demo(
        CORPUS,
        bundle,
        None if quick else d.reference,
        shape,
        cfg,
        checkpoint,
        concat=d.concat,
        lines_per_chunk=d.lines_per_chunk,
        mixed=MIXED,
        reference_mixed=None if quick else d.reference_mixed,
        mixed_repeat=d.mixed_repeat,
        pairs=d.pairs,
        lexical=LexicalConfig(seed=d.seed, buckets=1 << 14 if quick else DEFAULT_BUCKETS)
        if d.lexical
        else None,
    )
    return checkpoint, bundle


# ---------------------------------------------------------------- learner (never sees Truth)


def lyric_chunks(bundle: Path) -> dict[str, list[str]]:
    """Every catalog song's lyric chunks, cut as ingestion cuts them for ``bundle``."""
    from model_export.feedback import lyric_chunks as chunks_of
    from moodtune.emotion.bundle import load_bundle

    return chunks_of(CATALOG, load_bundle(bundle, verify_hashes=False).lines_per_chunk)


def retrain(
    checkpoint: Path,
    bundle: Path,
    rows: list[dict],
    priors: Mapping[str, np.ndarray],
    out: Path,
    cfg: learn.LearnConfig,
    recipe: Recipe,
    progress: bool,
) -> tuple[Path, Path, dict[str, Any]]:
    """Fine-tune ``checkpoint`` on replayed corpus texts plus lyrics labelled through feedback; export
    the INT8 bundle. Returns (new checkpoint, new bundle, what it learned from)."""
    import torch

    from model_export.export import ExportOptions, export_bundle
    from model_export.feedback import feedback_examples
    from model_export.lexical import export_fields, fuse
    from model_export.train import (
        TrainConfig,
        calibrate,
        encode,
        example_logits,
        fit,
        load_model,
        save_checkpoint,
        set_seed,
    )
    from moodtune.emotion.bundle import load_bundle
    from moodtune.emotion.lexical import LexicalHead

    torch.set_num_threads(1)
    evidence = learn.song_evidence(rows)
    # The rule ``train --feedback`` runs too (model_export.feedback).
    examples = feedback_examples(rows, lyric_chunks(bundle), priors, cfg)
    if not examples:
        raise ModelExportError("no song has enough answers to learn from; raise --users-per-round.")
    user_texts = {r.get("text") for r in rows}
    n_texts = sum(e.text in user_texts for e in examples)
    train, val, test = _splits(recipe.seed)
    replay = random.Random(recipe.seed).sample(train, min(recipe.replay, len(train)))
    old = load_bundle(bundle, verify_hashes=False)
    tcfg = TrainConfig(
        epochs=recipe.epochs_per_round,
        lr=recipe.lr,
        batch_size=32,
        max_length=old.max_length,
        warmup_ratio=0.1,
        seed=recipe.seed,
        progress=progress,
    )
    set_seed(recipe.seed)
    model, tokenizer = load_model(str(checkpoint), tcfg)
    data = replay + examples
    result = fit(
        model,
        tokenizer,
        encode(tokenizer, data, tcfg.max_length),
        encode(tokenizer, val, tcfg.max_length),
        tcfg,
        desc="round",
    )
    val_logits = example_logits(model, tokenizer, val, tcfg)
    calibration = calibrate(model, tokenizer, val, tcfg, val_logits)
    # The round-0 bundle's lexical head goes on with the fine-tuned network, its fusion fit anew.
    head, fusion = (None, None)
    if old.lexical_path is not None:
        head, fusion = fuse(LexicalHead.load(old.lexical_path), val_logits, val)
    new_checkpoint = save_checkpoint(model, tokenizer, out / "checkpoint", tcfg.max_length)
    manifest = export_bundle(
        ExportOptions(
            checkpoint=str(new_checkpoint),
            out_dir=out / "bundle",
            prefix="loop",
            lines_per_chunk=old.lines_per_chunk,
            eval_examples=test,
            eval_name=f"{CORPUS} test split (10%, stratified, seed {recipe.seed})",
            temperature_fit_on=calibration["fit_on"],
            **export_fields(
                calibration["temperature"], head, fusion, len(val), carried_from=old.model_version
            ),
            latency_texts=4,
            latency_repeats=1,
            source_extra={"checkpoint": f"fine-tuned from {checkpoint} by model_export.loop"},
            extra_metrics={
                "loop": {
                    "lyric_examples": len(examples) - n_texts,
                    "text_examples": n_texts,
                    "replay": len(replay),
                    "songs": sum(e.answers_count >= cfg.min_answers for e in evidence.values()),
                    "best_epoch": result.best_epoch,
                }
            },
        )
    )
    return (
        new_checkpoint,
        out / "bundle",
        {
            "lyric_examples": len(examples) - n_texts,
            "text_examples": n_texts,
            "replay": len(replay),
            "model_version": manifest["model_version"],
        },
    )


# ---------------------------------------------------------------- the stack side (catalog, switch, export)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored_vectors(table: Any, model_version: str) -> dict[str, np.ndarray]:
    """The served vectors of one model version's catalog (SongsTable)."""
    from moodtune.catalog.store import load_catalog

    catalog = load_catalog(table, model_version)
    return {s.song_id: np.asarray(s.vector, dtype=np.float32) for s in catalog.songs}


def ingest(table: Any, bundle: Path, progress: bool) -> dict[str, np.ndarray]:
    """Score the catalog with ``bundle`` through the real ingestion; the lyric vectors (the priors)."""
    from moodtune.catalog.ingest import IngestSettings, SongScorer, ingest_file
    from moodtune.emotion.classifier import EmotionClassifier

    classifier = EmotionClassifier.from_bundle(bundle)
    settings = IngestSettings()
    report = ingest_file(
        SongScorer(classifier, settings.lyrics_options(classifier.lines_per_chunk), settings.batch_size),
        table,
        CATALOG,
        max_lyrics_bytes=settings.max_lyrics_bytes,
    )
    log.info(
        "ingested %d songs (%d unchanged) under %s",
        report.written,
        report.unchanged,
        classifier.model_version,
    )
    return {k: v for k, v in stored_vectors(table, classifier.model_version).items()}


def apply_song_vectors(
    table: Any,
    model_version: str,
    priors: Mapping[str, np.ndarray],
    posteriors: Mapping[str, np.ndarray],
    evidence: Mapping[str, learn.Evidence],
) -> int:
    """The scheduled job's write: each song's served vector becomes its feedback posterior, its lyric
    vector kept beside it (``lyrics_vector``) with the answer counts, under this model version only."""
    from moodtune.catalog.songs import encode_vector

    written = 0
    with table.batch_writer(overwrite_by_pkeys=["model_version", "song_id"]) as batch:
        for song_id, vector in sorted(posteriors.items()):
            item = table.get_item(Key={"model_version": model_version, "song_id": song_id}).get("Item")
            if item is None:
                continue
            ev = evidence.get(song_id)
            item.update(
                vector=encode_vector(vector),
                dominant=LABELS[int(np.argmax(vector))],
                lyrics_vector=encode_vector(priors[song_id]),
                feedback_likes=ev.n_likes if ev else 0,
                feedback_dislikes=ev.n_dislikes if ev else 0,
            )
            batch.put_item(Item=item)
            written += 1
    return written


def vector_rows(rows: list[dict], bundle: Path, reread: bool) -> list[dict]:
    """The rows the song vectors learn from; with ``reread``, their texts read again by ``bundle`` (the
    bundle whose catalog the vectors go into), so texts and songs are in the same model's terms."""
    if not reread:
        return rows
    from moodtune.emotion.classifier import EmotionClassifier

    return learn.reread(rows, EmotionClassifier.from_bundle(bundle).predict)


def song_vectors(priors: Mapping[str, np.ndarray], rows: list[dict], cfg: learn.LearnConfig) -> dict:
    """The feedback-aware song vectors of the configured rule (``learn.rule_vectors``)."""
    return learn.rule_vectors(priors, rows, cfg, cfg.strength)


def switch(stack: Any, bundle: Path) -> str:
    """The model switch: the gate, then serving moved to ``bundle``; returns the served version."""
    from infra.model_switch import check
    from moodtune import service

    gate = argparse.Namespace(
        model_dir=bundle,
        catalog=CATALOG,
        aws=False,
        endpoint_url=stack.endpoint_url,
        table=stack.config.songs_table,
    )
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        if check(gate) != 0:
            raise ModelExportError(f"the model switch's gate refused {bundle}: {printed.getvalue().strip()}")
    # The catalog publisher's path (CatalogPublisherFunction in AWS): the version's SongsTable
    # partition, song vectors included, becomes the snapshot serving loads.
    import boto3

    from moodtune.catalog.objects import S3Objects
    from moodtune.catalog.publish import publish_catalog
    from moodtune.emotion.bundle import load_bundle

    version = load_bundle(bundle, verify_hashes=False).model_version
    table = boto3.resource("dynamodb").Table(stack.config.songs_table)
    publish_catalog(table, S3Objects(boto3.client("s3"), stack.config.snapshot_bucket), version)
    os.environ["MODEL_DIR"] = str(bundle)
    service.reset()  # a fresh execution environment: the new bundle and its catalog
    service.warm_recommend()
    status, health = _call(f"{stack.api_url}/v1/health")
    if status != 200:
        raise ModelExportError(f"/v1/health answered {status} after the switch: {health}")
    return str(health["model_version"])


def export_feedback(since: str, out: Path) -> int:
    """Invoke the real ExportFeedbackFunction handler for ``since``..today and copy the export to
    ``out``; returns the rows exported."""
    import boto3

    from infra.local.front import LambdaContext
    from moodtune.feedback.export import LOCAL_BUCKET

    spec = importlib.util.spec_from_file_location(
        "_moodtune_loop_export", ROOT / "functions/export_feedback/app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the handler's annotations through it
    spec.loader.exec_module(module)
    module.lambda_handler({"since": since}, LambdaContext("ExportFeedbackFunction", 256, 900))
    s3 = boto3.client("s3")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LOCAL_BUCKET, Prefix="feedback/"):
        for obj in page.get("Contents", []):
            target = tmp / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=LOCAL_BUCKET, Key=obj["Key"])["Body"].read())
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return len(load_rows(str(out))[0]) if any(out.rglob("*.jsonl.gz")) else 0


def all_rows(out: Path, upto: int) -> list[dict]:
    """Every round's export copy up to ``upto``, one row per (recommendation, song): its latest answer."""
    from model_export.feedback import latest_rows

    rows: list[dict] = []
    for r in range(1, upto + 1):
        directory = out / f"round-{r}" / "feedback"
        if any(directory.rglob("*.jsonl.gz")):
            rows.extend(load_rows(str(directory))[0])
    return latest_rows(rows)


# ---------------------------------------------------------------- the loop


@dataclass
class LoopConfig:
    """Everything a run depends on (``loop.json`` records it)."""

    rounds: int = 3
    users_per_round: int = 1000
    explore: float = 0.3
    explore_window: int = 50
    reread: bool = False  # 'both': song vectors from the texts as the new model reads them
    noise: float = 0.1
    answer_rate: float = 0.6
    seed: int = 0
    learn_mode: str = "retrain"
    learn: learn.LearnConfig = field(default_factory=learn.LearnConfig)
    recipe: Recipe = field(default_factory=Recipe)


def _round_record(
    r: int, version: str, users: int, rows: int, http: Mapping[str, Any], meant: int, acc: Any, **extra: Any
) -> dict[str, Any]:
    return {
        "round": r,
        "model_version": version,
        "users": users,
        "feedback_rows": rows,
        "eval_satisfaction": http["eval_satisfaction"],
        "eval_ci": http["eval_ci"],
        "eval_top1": http["eval_top1"],
        "songs_as_meant": meant,
        "test_accuracy": acc,
        **extra,
    }


def _accuracy(bundle: Path) -> float | None:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return manifest.get("metrics", {}).get("accuracy", {}).get("onnx_int8")


def run_loop(
    cfg: LoopConfig, truth: Truth, out: Path, base: Path, progress: bool = True, rebuild_base: bool = False
) -> dict[str, Any]:
    """Run (or resume) the rounds; returns what ``--json`` writes."""
    from infra.local.stack import LocalStack, StackConfig
    from moodtune.emotion.classifier import EmotionClassifier

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    # Every arm starts from the same bundle: the one the cached round-0 checkpoint exports to.
    checkpoint, bundle = ensure_base(base, cfg.recipe.quick, progress, rebuild_base)
    served_demo = (
        json.loads((SERVED / "manifest.json").read_text())["model_version"] if SERVED.is_dir() else None
    )
    state_path = out / "loop.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state and state.get("config") != _jsonable(cfg):
        raise ModelExportError(f"{out} holds a run with other settings; choose another --out or delete it.")
    rounds: list[dict[str, Any]] = state.get("rounds", [])
    since = state.get("since") or datetime.now(UTC).date().isoformat()
    stack = LocalStack(
        StackConfig(
            moto_port=_free_port(),
            api_port=_free_port(),
            model_dir=bundle.resolve(),
            catalog=CATALOG,
            # The simulated users stand for many people over a day, not one client in a burst: the
            # route throttle (10 requests a second) is off, as for the load test.
            throttle=False,
        )
    )
    saved = {k: os.environ.get(k) for k in ("MODEL_DIR", "EXPLORE_SHARE", "EXPLORE_WINDOW", "EXPLORE_SEED")}
    from moodtune import service

    service.reset()  # a fresh process's singletons, also when a loop ran before in this one
    try:
        with stack, _moto_reset_on_exit(stack):
            table = __import__("boto3").resource("dynamodb").Table(stack.config.songs_table)
            priors = stored_vectors(table, stack.model_version)
            # Resume: serve what the last finished round served.
            for record in rounds[1:]:
                r = record["round"]
                if (out / f"round-{r}" / "bundle" / "manifest.json").is_file():
                    checkpoint, bundle = out / f"round-{r}" / "checkpoint", out / f"round-{r}" / "bundle"
                    priors = ingest(table, bundle, progress)
                if cfg.learn_mode in ("both", "vectors"):
                    rows = vector_rows(all_rows(out, r), bundle, cfg.reread)
                    apply_song_vectors(
                        table,
                        EmotionClassifier.from_bundle(bundle).model_version,
                        priors,
                        song_vectors(priors, rows, cfg.learn),
                        learn.song_evidence(rows),
                    )
                switch(stack, bundle)
            if not rounds:
                http = measure_http(stack.api_url, truth)
                rounds.append(
                    _round_record(
                        0,
                        stack.model_version,
                        0,
                        0,
                        http,
                        as_meant(priors, truth.intent),
                        _accuracy(bundle),
                        models_demo=served_demo,
                    )
                )
                _save(state_path, cfg, since, rounds)
            for r in range(len(rounds), cfg.rounds + 1):
                rdir = out / f"round-{r}"
                rdir.mkdir(parents=True, exist_ok=True)
                rng = random.Random(f"{cfg.seed}:{r}")
                serve_exploring(cfg.explore, cfg.seed * 1000 + r, cfg.explore_window)
                counts = simulate_users(
                    stack.api_url,
                    truth,
                    cfg.users_per_round,
                    rng,
                    cfg.noise,
                    cfg.answer_rate,
                    progress,
                    f"round {r} users",
                )
                export_feedback(since, rdir / "feedback")
                rows = all_rows(out, r)
                old_classifier = EmotionClassifier.from_bundle(bundle)
                extra: dict[str, Any] = {
                    k: counts[k] for k in ("answers", "likes", "slot_answers", "slot_likes")
                }
                if cfg.learn_mode in ("both", "retrain"):
                    checkpoint, bundle, info = retrain(
                        checkpoint, bundle, rows, priors, rdir, cfg.learn, cfg.recipe, progress
                    )
                    old_posteriors = song_vectors(priors, rows, cfg.learn)
                    priors = ingest(table, bundle, progress)
                    extra["learned_from"] = info
                    extra["ablation"] = {
                        "vectors_only_previous_bundle": measure_offline(
                            old_classifier, old_posteriors, truth
                        ),
                        "retrain_only": measure_offline(EmotionClassifier.from_bundle(bundle), priors, truth),
                        "retrain_and_vectors": measure_offline(
                            EmotionClassifier.from_bundle(bundle),
                            song_vectors(priors, rows, cfg.learn),
                            truth,
                        ),
                        "retrain_and_vectors_reread": measure_offline(
                            EmotionClassifier.from_bundle(bundle),
                            song_vectors(priors, vector_rows(rows, bundle, True), cfg.learn),
                            truth,
                        ),
                    }
                version = EmotionClassifier.from_bundle(bundle).model_version
                served = dict(priors)
                if cfg.learn_mode in ("both", "vectors"):
                    vrows = vector_rows(rows, bundle, cfg.reread)
                    served = song_vectors(priors, vrows, cfg.learn)
                    apply_song_vectors(table, version, priors, served, learn.song_evidence(vrows))
                    extra["moved"] = learn.moved_songs(priors, served)
                if cfg.learn_mode != "none":
                    got = switch(stack, bundle)
                    if got != version:
                        raise ModelExportError(f"serving answers {got}, expected {version} after the switch")
                http = measure_http(stack.api_url, truth)
                meant = as_meant(stored_vectors(table, version), truth.intent)
                rounds.append(
                    _round_record(
                        r, version, counts["users"], len(rows), http, meant, _accuracy(bundle), **extra
                    )
                )
                _save(state_path, cfg, since, rounds)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {
        "rounds": rounds,
        "seconds": round(time.perf_counter() - started, 1),
        "eval": truth.eval_source,
        "models_demo": served_demo,
        "cpu": _cpu(),
    }


@contextlib.contextmanager
def _moto_reset_on_exit(stack: Any) -> Iterator[None]:
    """Empty moto's state when the run ends: its threaded server keeps it per process, and a second
    loop in the same process (a test) must start from empty tables and buckets."""
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(
                urllib.request.Request(f"{stack.endpoint_url}/moto-api/reset", data=b"", method="POST"),
                timeout=10,
            ).close()


def _jsonable(cfg: LoopConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg)))


def _save(path: Path, cfg: LoopConfig, since: str, rounds: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"config": _jsonable(cfg), "since": since, "rounds": rounds}, indent=2, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return f"unknown CPU ({os.cpu_count()} cores)"


# ---------------------------------------------------------------- output


def print_table(result: Mapping[str, Any], console: Console, title: str) -> None:
    """The per-round table (and the ablation, where a round has one)."""
    table = Table(title=f"{title} — eval {result['eval']}, {result['cpu']}")
    for column in (
        "round",
        "model_version",
        "users",
        "feedback rows",
        "eval top-5 [95% CI]",
        "top-1",
        "songs as meant /300",
        "test acc.",
    ):
        table.add_column(column)
    for r in result["rounds"]:
        lo, hi = r["eval_ci"]
        acc = r["test_accuracy"]
        table.add_row(
            str(r["round"]),
            r["model_version"],
            str(r["users"]),
            str(r["feedback_rows"]),
            f"{r['eval_satisfaction']:.3f} [{lo:.3f}, {hi:.3f}]",
            f"{r['eval_top1']:.3f}",
            str(r["songs_as_meant"]),
            "-" if acc is None else f"{acc:.3f}",
        )
    console.print(table)
    ablation = [r for r in result["rounds"] if "ablation" in r]
    if ablation:
        t = Table(title="ablation (offline, same serving code): eval top-5 / songs as meant")
        keys = (
            "vectors_only_previous_bundle",
            "retrain_only",
            "retrain_and_vectors",
            "retrain_and_vectors_reread",
        )
        for column in (
            "round",
            "vectors only (previous bundle)",
            "retrain only",
            "retrain + vectors",
            "retrain + vectors, texts re-read",
            "served",
        ):
            t.add_column(column)
        for r in ablation:
            a = r["ablation"]
            t.add_row(
                str(r["round"]),
                *(
                    f"{a[k]['eval_satisfaction']:.3f} / {a[k]['songs_as_meant']}" if k in a else "-"
                    for k in keys
                ),
                f"{r['eval_satisfaction']:.3f} / {r['songs_as_meant']}",
            )
        console.print(t)
    r0 = result["rounds"][0]["model_version"]
    same = (
        "the same bundle"
        if r0 == result.get("models_demo")
        else f"models/demo is {result.get('models_demo')}"
    )
    console.print(f"round 0 serves {r0} ({same}); {result['seconds']:.0f} s on {result['cpu']}")


def plot(
    result: Mapping[str, Any], path: Path, title: str, others: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """Satisfaction (with its interval) and songs as meant by round; ``others``: more runs drawn
    beside it (e.g. the control), by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = result["rounds"]
    x = [r["round"] for r in rounds]
    y = [r["eval_satisfaction"] for r in rounds]
    err = [
        [r["eval_satisfaction"] - r["eval_ci"][0] for r in rounds],
        [r["eval_ci"][1] - r["eval_satisfaction"] for r in rounds],
    ]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.errorbar(x, y, yerr=err, marker="o", capsize=4, label="this run top-5")
    a.plot(x, [r["eval_top1"] for r in rounds], marker="s", label="top-1")
    for name, other in (others or {}).items():
        ox = [r["round"] for r in other["rounds"]]
        a.plot(
            ox,
            [r["eval_satisfaction"] for r in other["rounds"]],
            linestyle="--",
            marker=".",
            label=f"{name} top-5",
        )
        b.plot(ox, [r["songs_as_meant"] for r in other["rounds"]], linestyle="--", marker=".", label=name)
    a.set(xlabel="round", ylabel="eval satisfaction", title=title, ylim=(0, 1), xticks=x)
    a.legend()
    b.plot(x, [r["songs_as_meant"] for r in rounds], marker="o", label="this run")
    b.set(xlabel="round", ylabel="songs scored as meant (of 300)", ylim=(0, 300), xticks=x)
    if others:
        b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_export.loop", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=Path, default=USERS, help=f"feeling<TAB>second<TAB>text (default {USERS})")
    p.add_argument("--eval", type=Path, default=EVAL, help=f"label<TAB>text, measured only (default {EVAL})")
    p.add_argument(
        "--holdout",
        type=float,
        default=None,
        metavar="SHARE",
        help="measure this share of the users file instead of --eval",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--users-per-round",
        type=int,
        default=1000,
        help="simulated users a round (≈ 3,000 answers; docs/retraining.md: how many a real round needs)",
    )
    p.add_argument("--noise", type=float, default=0.1, help="probability a user's answer is flipped")
    p.add_argument("--answer-rate", type=float, default=0.6, help="probability a listed song is answered")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--explore",
        type=float,
        default=0.3,
        metavar="SHARE",
        help="share of lists whose last (5th) slot is a song ranked below the list (0: off)",
    )
    p.add_argument("--control", action="store_true", help="learning off (the same as --learn none)")
    p.add_argument(
        "--learn",
        choices=LEARN_MODES,
        default="retrain",
        help="what a round learns: a fine-tuned model (default: the ablation's choice, docs/retraining.md), "
        "song vectors, both, none",
    )
    p.add_argument("--epochs-per-round", type=int, default=3)
    p.add_argument(
        "--replay", type=int, default=1500, help="corpus texts mixed into each round's fine-tuning"
    )
    p.add_argument(
        "--strength", type=float, default=learn.LearnConfig.strength, help="lyric prior, in answers"
    )
    p.add_argument("--against", type=float, default=learn.LearnConfig.against, help="weight of a dislike")
    p.add_argument(
        "--rule",
        choices=("additive", "bayes", "joint"),
        default=learn.LearnConfig.rule,
        help="how answers move a song's vector and its lyrics' targets (model_export.learn)",
    )
    p.add_argument(
        "--explore-window",
        type=int,
        default=50,
        metavar="N",
        help="the exploration slot draws from the N songs ranked best below the list (0: from all)",
    )
    p.add_argument(
        "--reread",
        action="store_true",
        help="with --learn both/vectors: the vectors' evidence from the texts as the new bundle reads them",
    )
    p.add_argument(
        "--min-answers",
        type=int,
        default=learn.LearnConfig.min_answers,
        help="answers a song needs before its lyrics become examples",
    )
    p.add_argument(
        "--target-strength",
        type=float,
        default=learn.LearnConfig.target_strength,
        help="the lyric prior's weight (in answers) in the fine-tuning targets",
    )
    p.add_argument(
        "--need-like",
        action="store_true",
        help="a song's lyrics become examples only once a user liked it (default: disliked songs count too)",
    )
    p.add_argument(
        "--sharp",
        action="store_true",
        help="served song vectors as sharp as the answers make them (default: as the lyrics' at most)",
    )
    p.add_argument(
        "--text-weight",
        type=float,
        default=learn.LearnConfig.text_weight,
        help="users' texts labelled through their answers join the fine-tuning at this weight (0: off)",
    )
    p.add_argument("--quick", action="store_true", help="1 round, 12 users, a tiny model (the test suite)")
    p.add_argument("--out", type=Path, default=None, help=f"artefacts (default {OUT}[-control|-quick])")
    p.add_argument("--base", type=Path, default=None, help=f"round-0 checkpoint cache (default {BASE})")
    p.add_argument(
        "--rebuild-base",
        action="store_true",
        help="train the round-0 checkpoint again (after models/demo's recipe or data changed)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the rounds as JSON there")
    p.add_argument("--png", type=Path, default=None, help="the plot (default OUT/loop.png)")
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="draw another run's --json beside this one in the plot (e.g. control=reports/loop-control.json)",
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging()
    # Powertools notes a metric dimension set twice by the feedback handler: noise on a console.
    warnings.filterwarnings("ignore", category=UserWarning, module="aws_lambda_powertools")
    for name in ("noise", "answer_rate"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.rounds < 1 or args.users_per_round < 1:
        parser.error("--rounds and --users-per-round must be at least 1")
    mode = "none" if args.control else args.learn
    recipe = Recipe(
        quick=args.quick,
        epochs_per_round=1 if args.quick else args.epochs_per_round,
        replay=200 if args.quick else args.replay,
        lr=5e-4 if args.quick else 1e-4,
        seed=0,
    )
    if not 0 <= args.explore <= 0.5:
        parser.error("--explore must be between 0 and 0.5")
    cfg = LoopConfig(
        rounds=1 if args.quick else args.rounds,
        explore=args.explore,
        explore_window=args.explore_window,
        reread=args.reread,
        users_per_round=12 if args.quick else args.users_per_round,
        noise=args.noise,
        answer_rate=args.answer_rate,
        seed=args.seed,
        learn_mode=mode,
        learn=replace(
            learn.LearnConfig(),
            strength=args.strength,
            against=args.against,
            rule=args.rule,
            min_answers=1 if args.quick else args.min_answers,
            target_strength=args.target_strength,
            need_like=args.need_like,
            keep_sharpness=not args.sharp,
            text_weight=args.text_weight,
        ),
        recipe=recipe,
    )
    # Bad users/eval lines stop the run here, before any round.
    truth = read_truth(
        args.users, None if args.holdout else args.eval, INTENT, args.holdout or 0.2, args.seed
    )
    suffix = ("-quick" if args.quick else "") + (
        "" if mode == "retrain" else f"-{'control' if mode == 'none' else mode}"
    )
    out = args.out or OUT.with_name(OUT.name + suffix)
    base = args.base or (BASE.with_name("base-quick") if args.quick else BASE)
    result = run_loop(cfg, truth, out, base, progress=not args.no_progress, rebuild_base=args.rebuild_base)
    title = {
        "retrain": "learning: fine-tuned on feedback-labelled lyrics",
        "both": "learning: fine-tuned + song vectors",
        "none": "control",
        "vectors": "song vectors only",
    }[mode]
    print_table(result, Console(), f"moodtune loop ({title})")
    others = {}
    for spec in args.compare:
        name, _, file = spec.partition("=")
        others[name] = json.loads(Path(file).read_text(encoding="utf-8"))
    png = plot(result, args.png or out / "loop.png", title, others)
    print(f"plot: {png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
