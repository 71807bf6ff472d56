"""Random-weight bundles with a real model shape, built through the export code and cached."""

import json
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from model_export.errors import ModelExportError
from model_export.shapes import SHAPES, build_random_bundle, random_checkpoint
from moodtune.emotion.bundle import load_bundle
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.labels import NUM_LABELS


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
    assert bundle.manifest["quantization"]["reduce_range"] is True
    build_random_bundle(out, shape="tiny", seed=3, reduce_range=False)  # another weight range: rebuilt
    assert load_bundle(out).manifest["quantization"]["reduce_range"] is False


def test_tiny_bundle_graph_has_the_shapes_dimensions(tmp_path):
    """The exported graph itself, not the table: embedding and layer matrices have the shape's sizes."""
    dims = SHAPES["tiny"]
    out = build_random_bundle(tmp_path / "tiny", shape="tiny", seed=0)
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(out / "model.onnx").graph.initializer}
    embedding = (dims["vocab_size"], dims["embedding_size"])
    assert weights["electra.embeddings.word_embeddings.weight_quantized"].shape == embedding
    assert weights["electra.embeddings.position_embeddings.weight_quantized"].shape == (
        dims["max_position_embeddings"],
        dims["embedding_size"],
    )
    shapes = Counter(w.shape for w in weights.values() if w.dtype == np.int8 and w.ndim == 2)
    assert shapes[(dims["hidden_size"], dims["intermediate_size"])] == dims["num_hidden_layers"]
    assert shapes[(dims["intermediate_size"], dims["hidden_size"])] == dims["num_hidden_layers"]
    assert shapes[(dims["hidden_size"], NUM_LABELS)] == 1  # the classifier's output layer


def test_koelectra_small_checkpoint_matches_the_published_model(tmp_path):
    """What random_checkpoint writes for the benchmark shape: monologg/koelectra-small-v3-discriminator's
    sizes (its config.json: 12 layers, embedding 128, hidden 256, 4 heads, intermediate 1024, vocab
    35,000) and its ~14M parameters."""
    checkpoint = random_checkpoint(tmp_path / "small", "koelectra-small", seed=0)
    config = json.loads((checkpoint / "config.json").read_text())
    published = {
        "vocab_size": 35000,
        "embedding_size": 128,
        "hidden_size": 256,
        "num_hidden_layers": 12,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
        "max_position_embeddings": 512,
    }
    assert {k: config[k] for k in published} == published
    tokenizer = json.loads((checkpoint / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(tokenizer["model"]["vocab"]) == 35000
    params = (checkpoint / "model.safetensors").stat().st_size / 4  # fp32
    assert 13.5e6 < params < 14.5e6


def test_unknown_shape(tmp_path):
    with pytest.raises(ModelExportError, match="unknown shape 'huge'"):
        build_random_bundle(tmp_path / "x", shape="huge")
