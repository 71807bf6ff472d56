"""End to end: tiny ELECTRA from a config -> a few fine-tuning steps -> Optimum ONNX export -> INT8 ->
bundle -> moodtune's classifier. Plus the refusals: low INT8 agreement, wrong labels."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from model_export import export as export_module
from model_export.errors import run_cli
from model_export.export import main as export_main
from model_export.shapes import random_checkpoint
from model_export.train import main as train_main
from moodtune.bundle import load_bundle, sha256_file
from moodtune.classifier import EmotionClassifier
from moodtune.labels import LABELS

PHRASES = {
    "joy": "기분 좋아 신나",
    "sadness": "슬퍼서 눈물 나",
    "anger": "화나 짜증나",
    "fear": "무서워 떨려",
    "surprise": "깜짝 놀랐어",
    "disgust": "역겨워 싫어",
    "neutral": "밥 먹었어",
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny ELECTRA built from a config and fine-tuned for a few steps by the train command."""
    root = tmp_path_factory.mktemp("e2e")
    base = random_checkpoint(root / "base", "tiny", seed=0)
    data = root / "data.tsv"
    lines = [f"{label}\t{phrase} {i}번" for label, phrase in PHRASES.items() for i in range(10)]
    data.write_text("label\ttext\n" + "\n".join(lines) + "\n", encoding="utf-8")
    out = root / "finetuned"
    argv = ["--checkpoint", str(base), "--data", str(data), "--out", str(out), "--epochs", "2"]
    argv += ["--batch-size", "16", "--lr", "1e-3", "--max-length", "32", "--no-progress", "--seed", "1"]
    assert train_main(argv) == 0
    return out


def test_train_writes_checkpoint_metrics_and_plots(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(7)] == list(LABELS)
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    test = metrics["final"]["test"]
    assert set(test) >= {"accuracy", "macro_f1", "per_class_f1", "confusion_matrix"}
    assert np.array(test["confusion_matrix"]).sum() == metrics["data"]["splits"]["test"] == 7
    assert len(metrics["final"]["history"]) == 2
    for png in ("learning_curves.png", "confusion_matrix.png"):
        assert (checkpoint / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_and_classify(checkpoint, tmp_path, capsys):
    out = tmp_path / "bundle"
    rc = export_main(
        ["--checkpoint", str(checkpoint), "--out", str(out), "--eval", str(checkpoint / "test.tsv")]
    )
    assert rc == 0
    bundle = load_bundle(out)
    assert bundle.model_version == "moodtune-" + sha256_file(out / "model.onnx")[:12]
    assert bundle.max_length == 32  # from the checkpoint's tokenizer, as trained
    m = bundle.manifest
    assert m["quantization"] == {
        "method": "onnxruntime.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": True,
    }
    assert m["metrics"]["parity"]["onnx_int8_vs_pytorch"]["top1_agreement"] >= 0.98
    assert m["metrics"]["parity"]["onnx_fp32_vs_pytorch"]["max_abs_diff"] < 1e-4
    assert set(m["metrics"]["accuracy"]) == {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    assert set(m["metrics"]["latency_ms"]) >= {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    assert m["metrics"]["sizes"]["onnx_int8_bytes"] < m["metrics"]["sizes"]["onnx_fp32_bytes"]

    classifier = EmotionClassifier.from_bundle(out, threads=1)
    probs = classifier.predict(["기분 좋아 신나", "무서워 떨려"])
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert len(m["examples"]) == 10
    for example in m["examples"]:
        np.testing.assert_allclose(classifier.predict_one(example["text"]), example["probs"], atol=1e-5)
    assert "wrote" in capsys.readouterr().out

    # The export is deterministic: the same checkpoint gives the same model.onnx and model_version.
    again = tmp_path / "again"
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(again)]) == 0
    assert load_bundle(again).model_version == bundle.model_version


def _break_classifier_bias(real):
    """A quantizer with a label-order bug: it rotates the classifier's output columns. A really broken
    INT8 model, measured for real by the export's validation."""

    def quantize(fp32, out, weight_type, per_channel):
        real(fp32, out, weight_type, per_channel)
        model = onnx.load(out)
        for init in model.graph.initializer:
            if init.name.startswith("classifier.out_proj."):
                rotated = np.roll(numpy_helper.to_array(init), 1, axis=-1)
                init.CopyFrom(numpy_helper.from_array(rotated, init.name))
        onnx.save(model, out)
        return out

    return quantize


def test_low_agreement_is_refused_and_leaves_no_bundle(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export_module, "quantize_int8", _break_classifier_bias(export_module.quantize_int8))
    parent = tmp_path / "models"
    parent.mkdir()
    rc = run_cli(export_main, ["--checkpoint", str(checkpoint), "--out", str(parent / "bundle")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error: refused: INT8 top-1 agreement with PyTorch fp32 is" in err
    assert "below --min-agreement 0.98" in err
    assert list(parent.iterdir()) == []  # no bundle, no staging directory left behind


def test_refusal_keeps_the_existing_bundle(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "bundle"
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(export_module, "quantize_int8", _break_classifier_bias(export_module.quantize_int8))
    assert run_cli(export_main, ["--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_checkpoint_with_wrong_number_of_labels(tmp_path, capsys):
    from transformers import ElectraConfig, ElectraForSequenceClassification

    model = ElectraForSequenceClassification(
        ElectraConfig(
            vocab_size=50,
            embedding_size=8,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=8,
            num_labels=3,
        )
    )
    model.save_pretrained(tmp_path / "three")
    assert run_cli(export_main, ["--checkpoint", str(tmp_path / "three"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "three: the classifier has 3 labels, moodtune needs 7" in err
    assert not (tmp_path / "b").exists()


def test_checkpoint_with_labels_in_another_order(checkpoint, tmp_path, capsys):
    import shutil

    copy = Path(shutil.copytree(checkpoint, tmp_path / "reordered"))
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(reversed(LABELS))}
    (copy / "config.json").write_text(json.dumps(config))
    assert run_cli(export_main, ["--checkpoint", str(copy), "--out", str(tmp_path / "b")]) == 2
    assert "is not moodtune's order" in capsys.readouterr().err


def test_train_rejects_bad_data_with_one_clear_line(tmp_path, capsys):
    rc = run_cli(
        train_main, ["--checkpoint", "x", "--data", str(tmp_path / "none.tsv"), "--out", str(tmp_path)]
    )
    assert rc == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'none.tsv'}: no such file. Download the dataset and pass its path."
    )


def test_train_folds_balance_and_feedback(tmp_path):
    import gzip

    base = random_checkpoint(tmp_path / "base", "tiny", seed=0)
    data = tmp_path / "data.tsv"
    lines = [f"{label}\t{phrase} {i}번" for label, phrase in PHRASES.items() for i in range(12)]
    data.write_text("label\ttext\n" + "\n".join(lines) + "\n", encoding="utf-8")
    feedback = tmp_path / "feedback.jsonl.gz"
    rows = [
        {"recommendation_id": "a", "text": "새 문장 기분 최고", "dominant": "joy", "satisfied": True},
        {"recommendation_id": "b", "text": "별로야", "dominant": "sadness", "satisfied": False},
    ]
    feedback.write_bytes(gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()))
    out = tmp_path / "out"
    argv = [
        "--checkpoint",
        str(base),
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--folds",
        "2",
    ]
    argv += [
        "--balance",
        "10",
        "--class-weights",
        "--feedback",
        str(feedback),
        "--no-progress",
        "--max-length",
        "16",
    ]
    assert train_main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["folds"]["k"] == 2 and len(metrics["folds"]["per_fold"]) == 2
    assert set(metrics["folds"]["accuracy"]) == {"mean", "std"}
    assert metrics["data"]["feedback"]["added"] == 1
    assert (
        metrics["data"]["splits"]["train"]
        + metrics["data"]["splits"]["val"]
        + metrics["data"]["splits"]["test"]
        == 7 * 10 + 1
    )
