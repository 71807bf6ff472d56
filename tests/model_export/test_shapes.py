"""Random-weight bundles with a real model shape, built through the export code and cached."""

import pytest

from model_export.errors import ModelExportError
from model_export.shapes import SHAPES, build_random_bundle
from moodtune.bundle import load_bundle
from moodtune.classifier import EmotionClassifier


def test_tiny_random_bundle_is_built_once_and_reused(tmp_path):
    out = tmp_path / "tiny"
    assert build_random_bundle(out, shape="tiny", seed=3) == out
    bundle = load_bundle(out)
    assert bundle.model_version.startswith("random-tiny-")
    assert bundle.manifest["source"]["random_shape"] == {"shape": "tiny", "seed": 3}
    assert bundle.manifest["source"]["config"]["hidden_size"] == SHAPES["tiny"]["hidden_size"]
    mtime = (out / "model.onnx").stat().st_mtime_ns
    build_random_bundle(out, shape="tiny", seed=3)  # cached: not rebuilt
    assert (out / "model.onnx").stat().st_mtime_ns == mtime
    probs = EmotionClassifier.from_bundle(out).predict(["아무 말", "두 번째 문장 ㅋㅋ"])
    assert probs.shape == (2, 7)
    tokenizer = EmotionClassifier.from_bundle(out).tokenizer
    assert tokenizer.get_vocab_size() == SHAPES["tiny"]["vocab_size"]


def test_koelectra_small_shape_matches_the_published_model():
    assert SHAPES["koelectra-small"] | {} == {
        "vocab_size": 35000,
        "embedding_size": 128,
        "hidden_size": 256,
        "num_hidden_layers": 12,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
        "max_position_embeddings": 512,
    }


def test_unknown_shape(tmp_path):
    with pytest.raises(ModelExportError, match="unknown shape 'huge'"):
        build_random_bundle(tmp_path / "x", shape="huge")
