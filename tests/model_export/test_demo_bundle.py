"""The committed demo bundle: it loads, its hashes match, and its recorded predictions are reproduced."""

import json
from pathlib import Path

import numpy as np
import pytest

from moodtune.bundle import load_bundle, sha256_file
from moodtune.classifier import EmotionClassifier
from moodtune.labels import LABELS

DEMO = Path(__file__).resolve().parents[2] / "models" / "demo"


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier.from_bundle(DEMO, threads=1)


def test_manifest_and_hashes():
    manifest = json.loads((DEMO / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["labels"] == list(LABELS)
    for name, digest in manifest["files"].items():
        assert sha256_file(DEMO / name) == digest, name
    assert manifest["model_version"] == "demo-" + manifest["files"]["model.onnx"][:12]
    assert load_bundle(DEMO).model_version == manifest["model_version"]


def test_bundle_is_small_and_int8():
    total = sum(p.stat().st_size for p in DEMO.iterdir())
    assert total < 10 * 1024 * 1024
    manifest = load_bundle(DEMO).manifest
    assert manifest["quantization"]["weight_type"] == "QInt8"
    assert manifest["metrics"]["parity"]["onnx_int8_vs_pytorch"]["top1_agreement"] >= 0.98


def test_manifest_examples_are_reproduced(classifier):
    examples = classifier.bundle.examples
    assert len(examples) >= 10
    for example in examples:
        np.testing.assert_allclose(classifier.predict_one(example["text"]), example["probs"], atol=1e-4)


def test_batch_predictions_match_recorded_top1(classifier):
    examples = classifier.bundle.examples
    batch = classifier.predict([e["text"] for e in examples])
    assert (batch.argmax(1) == np.array([np.argmax(e["probs"]) for e in examples])).all()
