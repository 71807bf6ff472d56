"""Writes a model bundle atomically: everything goes into a temporary sibling directory that is renamed
into place at the end, so a reader never sees half a bundle."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from model_export.errors import ModelExportError
from moodtune.emotion.bundle import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    load_bundle,
    model_version_for,
    sha256_file,
    version_hash,
)
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.emotion.lexical import LEXICAL_FILE, LexicalHead
from moodtune.labels import LABELS


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write a manifest as stable, readable JSON (fixed key order, UTF-8, trailing newline)."""
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def stage_bundle(
    staging: Path,
    model_file: Path,
    tokenizer: Tokenizer,
    *,
    prefix: str,
    max_length: int,
    inputs: Sequence[str],
    source: dict[str, Any],
    quantization: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    graph_optimization: dict[str, Any] | None = None,
    example_texts: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    lexical: LexicalHead | None = None,
) -> dict[str, Any]:
    """Fill ``staging`` with model.onnx, tokenizer.json (and lexical.npz: ``lexical``, whose fusion
    weight ``extra["calibration"]["lexical"]`` names) and manifest.json; return the manifest.

    The manifest's ``examples`` are computed by ``moodtune``'s own classifier on the staged files, so a
    test can reproduce them exactly with the runtime.
    """
    staging.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, staging / MODEL_FILE)
    tokenizer.save(str(staging / TOKENIZER_FILE))
    files = {
        MODEL_FILE: sha256_file(staging / MODEL_FILE),
        TOKENIZER_FILE: sha256_file(staging / TOKENIZER_FILE),
    }
    if lexical is not None:
        files[LEXICAL_FILE] = sha256_file(lexical.save(staging / LEXICAL_FILE))
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_version": model_version_for(prefix, version_hash(files)),
        "labels": list(LABELS),
        "max_length": max_length,
        "inputs": list(inputs),
        "files": files,
        "source": source,
        "quantization": quantization,
        "graph_optimization": graph_optimization or {"saved": False},
        "metrics": metrics or {},
        **(extra or {}),
        "examples": [],
    }
    write_manifest(staging / MANIFEST_FILE, manifest)
    if example_texts:
        # One text at a time: dynamic INT8 quantizes activations with a scale computed over the whole
        # batch, so a text's probabilities move slightly with its batch-mates.
        classifier = EmotionClassifier.from_bundle(staging, threads=1)
        manifest["examples"] = [
            {"text": text, "probs": [round(float(p), 6) for p in classifier.predict_one(text)]}
            for text in example_texts
        ]
        write_manifest(staging / MANIFEST_FILE, manifest)
    load_bundle(staging)  # the runtime's own checks, before anything is published
    return manifest


def check_target(out_dir: Path, checkpoint: str | Path | None = None) -> None:
    """Refuse an ``out_dir`` that publishing would wrongly delete: only an absent path, an empty
    directory or an existing bundle (a directory with manifest.json) may be replaced, and never the
    checkpoint being exported or a directory that holds it."""
    out = Path(out_dir).resolve()
    if checkpoint is not None and Path(checkpoint).exists():
        source = Path(checkpoint).resolve()
        if source == out or out in source.parents:
            raise ModelExportError(
                f"{out_dir}: is (or holds) the checkpoint {checkpoint}; writing the bundle there would "
                "delete it. Choose another --out directory."
            )
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise ModelExportError(f"{out_dir}: exists and is not a directory. Choose another --out path.")
    if any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        raise ModelExportError(
            f"{out_dir}: not empty and not a model bundle (no {MANIFEST_FILE}); it would be replaced "
            "entirely. Choose a new or empty directory, or an existing bundle to replace."
        )


def publish(staging: Path, out_dir: Path) -> Path:
    """Move a staged bundle to ``out_dir``, replacing any bundle there, by renames only (see
    ``check_target`` for what may be replaced)."""
    check_target(out_dir)
    out_dir = out_dir.resolve()
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        old.rmdir()
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old)
    else:
        staging.rename(out_dir)
    return out_dir


def staging_dir(out_dir: Path) -> Path:
    """A fresh temporary directory beside ``out_dir`` (same filesystem, so the final rename is atomic)."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
