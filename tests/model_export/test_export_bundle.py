"""End to end: tiny ELECTRA from a config -> a few fine-tuning steps -> Optimum ONNX export -> INT8 ->
bundle -> moodtune's classifier. Plus the refusals: low INT8 agreement, wrong labels."""

import json
import platform
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from model_export import export as export_module
from model_export.errors import run_cli
from model_export.export import INT8_CPU_FLAGS
from model_export.export import main as export_main
from model_export.shapes import random_checkpoint
from model_export.train import main as train_main
from moodtune.emotion.bundle import load_bundle, sha256_file, version_hash
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.emotion.lexical import LEXICAL_FILE
from moodtune.labels import LABELS

ROOT = Path(__file__).resolve().parents[2]
PHRASES = {
    "joy": "기분 좋아 신나",
    "sadness": "슬퍼서 눈물 나",
    "anger": "화나 짜증나",
    "fear": "무서워 떨려",
    "surprise": "깜짝 놀랐어",
    "disgust": "역겨워 싫어",
    "neutral": "밥 먹었어",
}


def max_int8_weight(model: Path) -> int:
    """The largest |value| among the graph's quantized int8 weight matrices."""
    arrays = [numpy_helper.to_array(i) for i in onnx.load(model).graph.initializer]
    return max(int(np.abs(a.astype(np.int32)).max()) for a in arrays if a.dtype == np.int8 and a.ndim == 2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny ELECTRA built from a config and fine-tuned for a few steps by the train command."""
    root = tmp_path_factory.mktemp("e2e")
    base = random_checkpoint(root / "base", "tiny", seed=0)
    data = root / "data.tsv"
    lines = [f"{label}\t{phrase} {i}번" for label, phrase in PHRASES.items() for i in range(10)]
    data.write_text("label\ttext\n" + "\n".join(lines) + "\n", encoding="utf-8")
    out = root / "finetuned"
    argv = ["--checkpoint", str(base), "--data", str(data), "--out", str(out), "--epochs", "2", "--lexical"]
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
    # train fit a lexical head beside the network (validation chose a weight above 0 here): the export
    # ships it, its weight and the fused temperature from calibration.json, and the version names both.
    calibration = json.loads((checkpoint / "calibration.json").read_text(encoding="utf-8"))
    assert (checkpoint / LEXICAL_FILE).is_file() and calibration["lexical"]["weight"] > 0
    assert bundle.lexical_weight == calibration["lexical"]["weight"]
    assert bundle.temperature == calibration["lexical"]["temperature"]
    assert sha256_file(out / LEXICAL_FILE) == sha256_file(checkpoint / LEXICAL_FILE)
    assert bundle.model_version == "moodtune-" + version_hash(bundle.manifest["files"])[:12]
    assert bundle.max_length == 32  # from the checkpoint's tokenizer, as trained
    m = bundle.manifest
    exported_on = m["quantization"].pop("exported_on")
    assert m["quantization"] == {
        "method": "onnxruntime.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": True,
        "reduce_range": True,
    }
    assert exported_on["machine"] == platform.machine()
    if Path("/proc/cpuinfo").is_file():
        flags = Path("/proc/cpuinfo").read_text().split()
        assert exported_on["flags"] == [f for f in INT8_CPU_FLAGS if f in flags]
    assert max_int8_weight(out / "model.onnx") <= 64  # 7-bit weights: no int16 saturation on AVX2
    assert m["metrics"]["parity"]["onnx_int8_vs_pytorch"]["top1_agreement"] >= 0.98
    assert m["metrics"]["parity"]["onnx_fp32_vs_pytorch"]["max_abs_diff"] < 1e-4
    assert set(m["metrics"]["accuracy"]) == {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    assert set(m["metrics"]["latency_ms"]) >= {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    assert m["metrics"]["sizes"]["onnx_int8_bytes"] < m["metrics"]["sizes"]["onnx_fp32_bytes"]
    assert m["lyrics"] == {"lines_per_chunk": 4} and bundle.lines_per_chunk == 4  # the original's rule

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

    def quantize(fp32, out, *args):
        real(fp32, out, *args)
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


def test_no_reduce_range_gives_8_bit_weights(checkpoint, tmp_path, capsys):
    out = tmp_path / "bundle"
    args = ["--checkpoint", str(checkpoint), "--out", str(out), "--no-reduce-range", "--lines-per-chunk", "2"]
    assert export_main(args) == 0
    assert load_bundle(out).manifest["quantization"]["reduce_range"] is False
    assert load_bundle(out).lines_per_chunk == 2
    assert max_int8_weight(out / "model.onnx") > 100  # the full int8 range, so VPMADDUBSW can saturate
    # Without --eval the export says how little it could check.
    assert "no --eval file: validating on 24 built-in unlabelled sentences" in capsys.readouterr().err


def test_out_equal_to_checkpoint_is_refused(checkpoint, tmp_path, capsys):
    copy = Path(shutil.copytree(checkpoint, tmp_path / "ckpt"))
    before = sorted(p.name for p in copy.iterdir())
    for out in (copy, tmp_path):  # the checkpoint itself, or a directory holding it
        assert run_cli(export_main, ["--checkpoint", str(copy), "--out", str(out)]) == 2
        assert "writing the bundle there would delete it" in capsys.readouterr().err
    assert sorted(p.name for p in copy.iterdir()) == before


def test_out_that_is_not_a_bundle_is_refused(checkpoint, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    assert run_cli(export_main, ["--checkpoint", str(checkpoint), "--out", str(notes)]) == 2
    assert "not empty and not a model bundle (no manifest.json)" in capsys.readouterr().err
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]
    afile = tmp_path / "file"
    afile.write_text("x")
    assert run_cli(export_main, ["--checkpoint", str(checkpoint), "--out", str(afile)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(empty)]) == 0
    assert load_bundle(empty).labels == LABELS


def test_checkpoint_without_weights_names_the_checkpoint(checkpoint, tmp_path, capsys):
    copy = Path(shutil.copytree(checkpoint, tmp_path / "noweights"))
    (copy / "model.safetensors").unlink()
    assert run_cli(export_main, ["--checkpoint", str(copy), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"error: {copy}: Optimum could not export it to ONNX")
    assert "Traceback" not in err
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noweights"]  # no staging directory left


def test_architecture_optimum_cannot_export_names_the_checkpoint(checkpoint, tmp_path, capsys):
    from transformers import FunnelConfig, FunnelForSequenceClassification

    funnel = tmp_path / "funnel"
    config = FunnelConfig(
        vocab_size=2000, block_sizes=[1], d_model=16, n_head=2, d_head=8, d_inner=32, num_labels=7
    )
    config.id2label, config.label2id = dict(enumerate(LABELS)), {lb: i for i, lb in enumerate(LABELS)}
    FunnelForSequenceClassification(config).save_pretrained(funnel)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(checkpoint / name, funnel / name)
    argv = ["--checkpoint", str(funnel), "--out", str(tmp_path / "b"), "--eval", str(checkpoint / "test.tsv")]
    assert run_cli(export_main, argv) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"error: {funnel}: Optimum could not export it to ONNX")
    assert not (tmp_path / "b").exists()


def test_max_length_above_position_embeddings_is_refused(checkpoint, tmp_path, capsys):
    argv = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "b"), "--max-length", "129"]
    assert run_cli(export_main, argv) == 2
    assert "max length 129 is above the model's max_position_embeddings 128" in capsys.readouterr().err


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
    catalog = tmp_path / "songs.jsonl"
    song = {"song_id": "s1", "title": "비", "artist": "가", "lyrics": "비가 내려\n너 없는 밤\n혼자 울었어"}
    catalog.write_text(json.dumps(song, ensure_ascii=False) + "\n", encoding="utf-8")
    sad = {"sadness": 0.9, "neutral": 0.1}
    rows = [
        {"recommendation_id": r, "song_id": "s1", "scores": sad, "satisfied": True, "feedback_at": "x"}
        for r in ("a", "b")
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
        "--feedback-bundle",
        str(ROOT / "models" / "demo"),
        "--feedback-catalog",
        str(catalog),
        "--no-progress",
        "--max-length",
        "16",
    ]
    assert train_main(argv) == 0
    assert not (out / LEXICAL_FILE).exists()  # no lexical head unless --lexical asks for one
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["folds"]["k"] == 2 and len(metrics["folds"]["per_fold"]) == 2
    assert set(metrics["folds"]["accuracy"]) == {"mean", "std"}
    chunks = metrics["data"]["feedback"]["added"]
    assert chunks >= 1  # the liked song's lyric chunks, labelled through the two likes
    assert (
        metrics["data"]["splits"]["train"]
        + metrics["data"]["splits"]["val"]
        + metrics["data"]["splits"]["test"]
        == 7 * 10 + chunks
    )
