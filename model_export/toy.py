"""A toy bundle for fast tests: a hand-built ONNX graph (masked mean of token embeddings -> linear) and a
small WordPiece tokenizer. Real onnxruntime and tokenizers files, no torch; seconds to build."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_export.bundle_writer import publish, stage_bundle, staging_dir
from model_export.tokenizer import train_wordpiece
from moodtune.emotion.lexical import LexicalHead
from moodtune.labels import NUM_LABELS

TOY_TEXTS = [
    "오늘 정말 행복하고 신나는 하루였어",
    "너무 슬퍼서 눈물이 계속 나와 ㅠㅠ",
    "진짜 화가 나서 참을 수가 없어",
    "밤길이 무섭고 불안해서 떨려",
    "갑자기 이런 일이 생기다니 깜짝 놀랐어",
    "그 냄새는 정말 역겹고 싫어",
    "그냥 평범한 하루였고 별일 없었어",
    "친구랑 웃으면서 맛있는 거 먹었어 ㅋㅋ",
]


def toy_graph(
    vocab_size: int,
    dim: int = 16,
    seed: int = 0,
    n_labels: int = NUM_LABELS,
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """ONNX graph: logits = mean(E[input_ids] + T[token_type_ids] over the attention mask) @ W + b.
    (``n_labels`` other than 7 builds a wrong graph for tests; ``weights`` = (E, T, W, b) sets them
    instead of random ones.)"""
    rng = np.random.default_rng(seed)
    e, t, w, b = weights or (
        rng.normal(0, 1, (vocab_size, dim)),
        rng.normal(0, 0.1, (2, dim)),
        rng.normal(0, 1, (dim, n_labels)),
        rng.normal(0, 0.1, (n_labels,)),
    )
    inits = [
        numpy_helper.from_array(np.asarray(e, dtype=np.float32), "E"),
        numpy_helper.from_array(np.asarray(t, dtype=np.float32), "T"),
        numpy_helper.from_array(np.asarray(w, dtype=np.float32), "W"),
        numpy_helper.from_array(np.asarray(b, dtype=np.float32), "b"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["tok"]),
        helper.make_node("Gather", ["T", "token_type_ids"], ["typ"]),
        helper.make_node("Add", ["tok", "typ"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["summed", "count"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "W"], ["proj"]),
        helper.make_node("Add", ["proj", "b"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_labels])
    graph = helper.make_graph(nodes, "toy_emotion", inputs, [output], inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="moodtune-toy"
    )
    model.ir_version = 8
    return model


def keyword_weights(tokenizer, keywords: dict[str, str], strength: float = 6.0):
    """(E, T, W, b) of a toy graph that reads feelings from words: every token of a keyword points at
    its label, every other token at nothing, so a text's logits are ``strength`` × the share of its
    tokens that belong to each label's keywords (a text with two feelings' words gets both)."""
    from moodtune.labels import LABEL_INDEX

    e = np.zeros((tokenizer.get_vocab_size(), NUM_LABELS))
    for word, label in keywords.items():
        for token in tokenizer.encode(word, add_special_tokens=False).ids:
            e[token, LABEL_INDEX[label]] = 1.0
    return e, np.zeros((2, NUM_LABELS)), np.eye(NUM_LABELS) * strength, np.zeros(NUM_LABELS)


def build_toy_bundle(
    out_dir: Path,
    seed: int = 0,
    max_length: int = 16,
    keywords: dict[str, str] | None = None,
    lexical: LexicalHead | None = None,
    lexical_weight: float = 1.0,
    temperature: float = 1.0,
) -> Path:
    """Write a toy bundle (prefix ``toy``) to ``out_dir`` and return it; ``keywords`` (word -> label)
    builds the keyword-reading graph of ``keyword_weights`` instead of a random one; ``lexical``
    ships that head fused with ``lexical_weight`` at ``temperature``."""
    tokenizer = train_wordpiece(TOY_TEXTS * 3 + list(keywords or ()) * 3, vocab_size=200)
    staging = staging_dir(out_dir)
    try:
        raw = staging / "raw.onnx"
        weights = keyword_weights(tokenizer, keywords) if keywords else None
        dim = NUM_LABELS if keywords else 16
        onnx.save(toy_graph(tokenizer.get_vocab_size(), dim=dim, seed=seed, weights=weights), raw)
        stage_bundle(
            staging / "bundle",
            raw,
            tokenizer,
            prefix="toy",
            max_length=max_length,
            inputs=["input_ids", "attention_mask", "token_type_ids"],
            source={"checkpoint": "toy", "architecture": "masked-mean-linear", "config": {"seed": seed}},
            quantization={"method": "none"},
            example_texts=TOY_TEXTS[:4],
            lexical=lexical,
            extra=(
                {
                    "calibration": {
                        "temperature": temperature,
                        **({"lexical": {"weight": lexical_weight}} if lexical is not None else {}),
                    }
                }
                if lexical is not None or temperature != 1.0
                else None
            ),
        )
        return publish(staging / "bundle", out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
