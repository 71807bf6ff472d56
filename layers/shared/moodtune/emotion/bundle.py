"""The model bundle: a directory with ``model.onnx``, ``tokenizer.json`` and ``manifest.json``.

``load_bundle`` reads the manifest and checks it against the files before anything is served: the
labels must be ``moodtune.labels.LABELS`` in order, every listed file must exist with the recorded
sha256, and ``model_version`` must end with the first 12 hex digits of ``version_hash``: the sha256 of
``model.onnx``, or, where the bundle carries a lexical head (``lexical.npz``), the sha256 of both
files' digests (``moodtune.emotion.lexical``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodtune.emotion.lexical import LEXICAL_FILE
from moodtune.labels import LABELS

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
DEFAULT_LINES_PER_CHUNK = 4  # the original system's rule: 4 lyric lines = 1 chunk
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
VERSION_HASH_CHARS = 12


class BundleError(Exception):
    """A bundle directory that cannot be served; the message names the file and what to do."""


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: where its files are and what its manifest says."""

    path: Path
    model_version: str
    labels: tuple[str, ...]
    max_length: int
    inputs: tuple[str, ...]
    manifest: dict[str, Any] = field(repr=False)
    # Lyric lines per chunk the model reads songs in (manifest ``lyrics.lines_per_chunk``; the
    # original's rule, 4, where the manifest does not say). Catalog vectors belong to one model
    # version, so the chunking that suits the model travels with it.
    lines_per_chunk: int = DEFAULT_LINES_PER_CHUNK
    # Temperature scaling fit after training (manifest ``calibration.temperature``): the runtime
    # divides the logits by it before the softmax. 1.0 (no scaling) where the manifest has none.
    temperature: float = 1.0
    # The lexical head's fusion weight (manifest ``calibration.lexical.weight``); None: no head.
    lexical_weight: float | None = None

    @property
    def lexical_path(self) -> Path | None:
        """``lexical.npz`` where the bundle carries a lexical head, else None."""
        return None if self.lexical_weight is None else self.path / LEXICAL_FILE

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE

    @property
    def examples(self) -> list[dict[str, Any]]:
        """Sentences with the probabilities the export measured for them (for reproduction tests)."""
        return list(self.manifest.get("examples", []))


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def version_hash(files: dict[str, str]) -> str:
    """The digest a bundle's version names: model.onnx's sha256, or with a lexical head the sha256 of
    ``"<model sha256>:<lexical sha256>"`` (a new head is a new model version: the catalog's vectors
    belong to one)."""
    model_sha = str(files[MODEL_FILE])
    if LEXICAL_FILE not in files:
        return model_sha
    return hashlib.sha256(f"{model_sha}:{files[LEXICAL_FILE]}".encode()).hexdigest()


def model_version_for(prefix: str, digest: str) -> str:
    """The model version a bundle gets: ``<prefix>-<first 12 hex of its version_hash>``."""
    return f"{prefix}-{digest[:VERSION_HASH_CHARS]}"


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(
            f"{manifest_path}: no manifest. Point MODEL_DIR at a bundle directory written by "
            "`python -m model_export.export` (or `make demo-model`)."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc}). Re-export the bundle.") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object. Re-export the bundle.")
    return manifest


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    """Read and check the bundle at ``path``; raise ``BundleError`` with a clear message if it is unusable."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(
            f"{root}: no such bundle directory. Set MODEL_DIR to a directory with {MANIFEST_FILE}."
        )
    manifest = _read_manifest(root)
    where = root / MANIFEST_FILE

    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{where}: format_version {manifest.get('format_version')!r} is not {FORMAT_VERSION}. "
            "Re-export the bundle with this version of model_export."
        )
    labels = manifest.get("labels")
    if not isinstance(labels, list) or tuple(labels) != LABELS:
        raise BundleError(
            f"{where}: labels {labels!r} differ from moodtune's {list(LABELS)}. The model's outputs would be "
            "read as the wrong emotions; re-export from a checkpoint whose id2label follows moodtune.labels."
        )
    max_length = manifest.get("max_length")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
        raise BundleError(f"{where}: max_length must be an integer >= 2, got {max_length!r}.")
    inputs = manifest.get("inputs")
    if not isinstance(inputs, list) or "input_ids" not in inputs or "attention_mask" not in inputs:
        raise BundleError(f"{where}: inputs must list at least input_ids and attention_mask, got {inputs!r}.")

    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{where}: 'files' must map file names to sha256 digests.")
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"{where}: 'files' lacks {name}. Re-export the bundle.")
    for name, expected in files.items():
        file_path = root / name
        if Path(name).name != name or not file_path.is_file():
            raise BundleError(
                f"{file_path}: listed in the manifest but missing. Copy the whole bundle directory."
            )
        if verify_hashes:
            actual = sha256_file(file_path)
            if actual != expected:
                raise BundleError(
                    f"{file_path}: sha256 {actual[:16]}… differs from the manifest's {str(expected)[:16]}…. "
                    "The file was changed or truncated; copy the bundle again or re-export it."
                )

    lyrics = manifest.get("lyrics", {})
    lines_per_chunk = (
        lyrics.get("lines_per_chunk", DEFAULT_LINES_PER_CHUNK) if isinstance(lyrics, dict) else None
    )
    if (
        not isinstance(lines_per_chunk, int)
        or isinstance(lines_per_chunk, bool)
        or not 1 <= lines_per_chunk <= 64
    ):
        raise BundleError(
            f"{where}: lyrics.lines_per_chunk must be an integer from 1 to 64, got {lines_per_chunk!r}."
        )

    temperature = _temperature(manifest, where)
    lexical_weight = _lexical_weight(manifest, files, where)

    model_version = manifest.get("model_version")
    digest = version_hash(files)
    if not isinstance(model_version, str) or not model_version.endswith("-" + digest[:VERSION_HASH_CHARS]):
        what = f"{MODEL_FILE}'s sha256" if LEXICAL_FILE not in files else f"{MODEL_FILE} + {LEXICAL_FILE}"
        raise BundleError(
            f"{where}: model_version {model_version!r} must be '<prefix>-{digest[:VERSION_HASH_CHARS]}' "
            f"(the first {VERSION_HASH_CHARS} hex of the version hash of {what}). Re-export the bundle."
        )
    return Bundle(
        path=root,
        model_version=model_version,
        labels=tuple(labels),
        max_length=max_length,
        inputs=tuple(inputs),
        manifest=manifest,
        lines_per_chunk=lines_per_chunk,
        temperature=temperature,
        lexical_weight=lexical_weight,
    )


def _temperature(manifest: dict[str, Any], where: Path) -> float:
    """``calibration.temperature``: a positive finite number; 1.0 when the manifest has no calibration."""
    calibration = manifest.get("calibration")
    if calibration is None:
        return 1.0
    value = calibration.get("temperature") if isinstance(calibration, dict) else None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise BundleError(
            f"{where}: calibration.temperature must be a positive finite number, got {value!r}. "
            "Re-export the bundle (model_export fits it on the validation split)."
        )
    return float(value)


def _lexical_weight(manifest: dict[str, Any], files: dict[str, Any], where: Path) -> float | None:
    """``calibration.lexical.weight``: a non-negative finite number with lexical.npz listed in ``files``;
    None when the manifest names no lexical head (and then no lexical.npz may be listed)."""
    calibration = manifest.get("calibration")
    lexical = calibration.get("lexical") if isinstance(calibration, dict) else None
    if lexical is None:
        if LEXICAL_FILE in files:
            raise BundleError(
                f"{where}: 'files' lists {LEXICAL_FILE} but calibration.lexical does not say how to fuse it. "
                "Re-export the bundle."
            )
        return None
    value = lexical.get("weight") if isinstance(lexical, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise BundleError(
            f"{where}: calibration.lexical.weight must be a non-negative finite number, got {value!r}. "
            "Re-export the bundle (model_export fits it on the validation split)."
        )
    if LEXICAL_FILE not in files:
        raise BundleError(
            f"{where}: calibration.lexical is set but 'files' lacks {LEXICAL_FILE}. Copy the whole bundle "
            "directory, or re-export it."
        )
    return float(value)
