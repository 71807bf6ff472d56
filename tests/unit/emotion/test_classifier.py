from pathlib import Path

import numpy as np
import pytest

from model_export.toy import build_toy_bundle
from moodtune.emotion.bundle import BundleError
from moodtune.emotion.classifier import EmotionClassifier, softmax, threads_from_env
from moodtune.labels import LABELS


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> EmotionClassifier:
    return EmotionClassifier.from_bundle(
        build_toy_bundle(tmp_path_factory.mktemp("toy") / "bundle"), threads=1
    )


def test_properties(classifier):
    assert classifier.labels == LABELS
    assert classifier.max_length == 16
    assert classifier.model_version.startswith("toy-")


def test_predict_returns_probabilities_in_label_order(classifier):
    probs = classifier.predict(["오늘 정말 행복해", "너무 슬퍼 ㅠㅠ", ""])
    assert probs.shape == (3, len(LABELS))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


def test_batch_padding_does_not_change_results(classifier):
    texts = ["짧아", "이건 조금 더 긴 문장이라서 패딩이 생겨 ㅋㅋ", "그냥 평범한 하루"]
    batch = classifier.predict(texts)
    one_by_one = np.stack([classifier.predict_one(t) for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)


def test_tokenize_pads_per_batch_and_truncates(classifier):
    encoded = classifier.tokenize(["짧아", "행복 " * 100])
    assert set(encoded) == {"input_ids", "attention_mask", "token_type_ids"}
    assert encoded["input_ids"].shape == (2, classifier.max_length)
    assert encoded["input_ids"].dtype == np.int64
    assert encoded["attention_mask"][0].sum() < classifier.max_length
    assert encoded["attention_mask"][1].sum() == classifier.max_length
    short = classifier.tokenize(["짧아"])
    assert short["input_ids"].shape[1] < classifier.max_length  # padded to the batch, not to max_length


def test_text_is_normalized_before_tokenizing(classifier):
    np.testing.assert_array_equal(
        classifier.tokenize(["  행복\u200b해  ㅋㅋ "])["input_ids"],
        classifier.tokenize(["행복해 ㅋㅋ"])["input_ids"],
    )


def test_empty_batch(classifier):
    assert classifier.predict([]).shape == (0, len(LABELS))


def test_manifest_examples_are_reproduced(classifier):
    for example in classifier.bundle.examples:
        np.testing.assert_allclose(classifier.predict_one(example["text"]), example["probs"], atol=1e-5)


def test_threads_from_env(monkeypatch):
    monkeypatch.delenv("ORT_INTRA_OP_THREADS", raising=False)
    assert threads_from_env() == 0
    monkeypatch.setenv("ORT_INTRA_OP_THREADS", "2")
    assert threads_from_env() == 2
    monkeypatch.setenv("ORT_INTRA_OP_THREADS", "two")
    with pytest.raises(ValueError, match="ORT_INTRA_OP_THREADS='two' is not an integer"):
        threads_from_env()
    monkeypatch.setenv("ORT_INTRA_OP_THREADS", "-1")
    with pytest.raises(ValueError, match="negative"):
        threads_from_env()


def test_session_uses_env_threads(monkeypatch, classifier):
    monkeypatch.setenv("ORT_INTRA_OP_THREADS", "1")
    loaded = EmotionClassifier.from_bundle(classifier.bundle.path)
    assert loaded.session.get_session_options().intra_op_num_threads == 1


def test_softmax_is_stable():
    probs = softmax(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs[0], [1.0, 0.0, 0.0], atol=1e-6)


def test_corrupt_model_file_gives_bundle_error(tmp_path: Path):
    import json

    from moodtune.emotion.bundle import sha256_file

    bundle = build_toy_bundle(tmp_path / "b")
    (bundle / "model.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    digest = sha256_file(bundle / "model.onnx")
    manifest["files"]["model.onnx"] = digest
    manifest["model_version"] = "toy-" + digest[:12]
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="onnxruntime cannot load it"):
        EmotionClassifier.from_bundle(bundle)


def _swap_graph(bundle: Path, graph) -> Path:
    """Replace a bundle's model.onnx, re-recording its hash, so only the graph is wrong."""
    import json

    import onnx

    from moodtune.emotion.bundle import sha256_file

    onnx.save(graph, bundle / "model.onnx")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    digest = sha256_file(bundle / "model.onnx")
    manifest["files"]["model.onnx"] = digest
    manifest["model_version"] = "toy-" + digest[:12]
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return bundle


def test_graph_with_another_number_of_labels_is_refused_at_load(tmp_path: Path):
    from model_export.toy import toy_graph

    bundle = build_toy_bundle(tmp_path / "b")
    vocab = EmotionClassifier.from_bundle(bundle).tokenizer.get_vocab_size()
    _swap_graph(bundle, toy_graph(vocab, n_labels=5))
    with pytest.raises(BundleError, match=r"output 'logits' has 5 values per text, but the manifest lists 7"):
        EmotionClassifier.from_bundle(bundle)


def test_graph_with_symbolic_width_is_checked_when_it_runs(tmp_path: Path):
    """onnxruntime infers most widths at load; where one stays symbolic, the first run checks it."""
    from types import SimpleNamespace

    import onnxruntime as ort

    from model_export.toy import toy_graph

    good = EmotionClassifier.from_bundle(build_toy_bundle(tmp_path / "b"))
    five = ort.InferenceSession(
        toy_graph(good.tokenizer.get_vocab_size(), n_labels=5).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )

    class Symbolic:  # a real 5-label session that reports its output width as unknown
        get_inputs = five.get_inputs
        run = five.run

        def get_outputs(self):
            return [SimpleNamespace(name="logits", shape=["batch", "labels"])]

    classifier = EmotionClassifier(good.bundle, Symbolic(), good.tokenizer)  # nothing to check yet
    with pytest.raises(BundleError, match="has 5 values per text"):
        classifier.predict(["오늘 정말 행복해"])
