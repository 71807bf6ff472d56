"""The lexical head: hashed n-gram features, logits as sums of rows, a byte-stable file, and the
bundle that fuses it with the graph."""

import hashlib
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from model_export.toy import build_toy_bundle
from moodtune.emotion.bundle import BundleError, load_bundle, sha256_file
from moodtune.emotion.classifier import LEXICAL_KEY, EmotionClassifier, softmax
from moodtune.emotion.lexical import LEXICAL_FILE, LexicalHead, features
from moodtune.labels import LABEL_INDEX, NUM_LABELS

BUCKETS = 1 << 12


def _head(seed: int = 0, buckets: int = BUCKETS) -> LexicalHead:
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(buckets, NUM_LABELS)).astype(np.float16).astype(np.float32)
    return LexicalHead(weights, rng.normal(size=NUM_LABELS).astype(np.float32))


def test_features_are_the_hashed_ngrams_and_words_of_the_normalised_text():
    ids = features("기뻐 ㅋ", BUCKETS)
    padded = " 기뻐 ㅋ "
    keys = {f"{n}{padded[i : i + n]}" for n in (1, 2, 3) for i in range(len(padded) - n + 1)}
    keys |= {"w기뻐", "wㅋ"}
    expected = sorted({zlib.crc32(k.encode()) % BUCKETS for k in keys})
    assert ids.tolist() == expected
    assert features("  기뻐\u200b ㅋ ", BUCKETS).tolist() == expected  # normalised first
    assert (ids >= 0).all() and (ids < BUCKETS).all()


def test_logits_are_the_sum_of_the_feature_rows_plus_the_bias():
    head = _head()
    texts = ["시험 끝나서 홀가분해", "무서워"]
    logits = head.logits(texts)
    assert logits.shape == (2, NUM_LABELS) and logits.dtype == np.float32
    for row, text in zip(logits, texts, strict=True):
        np.testing.assert_allclose(row, head.weights[features(text, BUCKETS)].sum(0) + head.bias, rtol=1e-5)


def test_two_cues_add_up():
    weights = np.zeros((BUCKETS, NUM_LABELS), dtype=np.float32)
    for word, label in (("기뻐", "joy"), ("무서워", "fear")):
        weights[features(word, BUCKETS), LABEL_INDEX[label]] += 1.0
    head = LexicalHead(weights, np.zeros(NUM_LABELS, dtype=np.float32))
    both = head.logits(["기뻐 무서워"])[0]
    assert set(np.argsort(-both)[:2]) == {LABEL_INDEX["joy"], LABEL_INDEX["fear"]}


def test_the_file_is_byte_stable_and_round_trips(tmp_path):
    head = _head()
    a, b = head.save(tmp_path / "a.npz"), head.save(tmp_path / "b.npz")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    loaded = LexicalHead.load(a)
    np.testing.assert_array_equal(loaded.weights, head.weights)  # float16-exact weights survive
    np.testing.assert_array_equal(loaded.bias, head.bias)


def test_a_file_that_is_not_a_head_is_refused(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a lexical head file"):
        LexicalHead.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "shape.npz", weights=np.zeros((4, 3)), bias=np.zeros(7))
    with pytest.raises(ValueError, match="must be"):
        LexicalHead.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "nan.npz", weights=np.full((4, 7), np.nan), bias=np.zeros(7))
    with pytest.raises(ValueError, match="not finite"):
        LexicalHead.load(tmp_path / "nan.npz")


# --- in a bundle ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fused_bundle(tmp_path_factory) -> Path:
    return build_toy_bundle(
        tmp_path_factory.mktemp("lexical") / "bundle", lexical=_head(), lexical_weight=0.5, temperature=2.0
    )


@pytest.fixture
def fused_copy(fused_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(fused_bundle, tmp_path / "copy"))


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def _write(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_the_classifier_fuses_the_head_with_the_graph(fused_bundle):
    classifier = EmotionClassifier.from_bundle(fused_bundle, threads=1)
    texts = ["오늘 정말 행복하고 신나는 하루였어", "밤길이 무섭고 불안해서 떨려"]
    encoded = classifier.tokenize(texts)
    np.testing.assert_allclose(encoded[LEXICAL_KEY], classifier.lexical.logits(texts), rtol=1e-6)
    expected = softmax((classifier.infer_logits(encoded) + 0.5 * _head().logits(texts)) / 2.0)
    np.testing.assert_allclose(classifier.predict(texts), expected, rtol=1e-5, atol=1e-7)
    # One text or a padded batch, sliced as ingestion slices it: the same answer.
    one = np.stack([classifier.predict_one(t) for t in texts])
    np.testing.assert_allclose(one, expected, rtol=1e-5, atol=1e-6)
    rows = np.array([1])
    sliced = classifier.infer(classifier.take(encoded, rows, int(encoded["attention_mask"][1].sum())))
    np.testing.assert_allclose(sliced[0], expected[1], rtol=1e-5, atol=1e-6)


def test_the_version_names_the_graph_and_the_head(fused_bundle):
    bundle = load_bundle(fused_bundle)
    model_sha, lexical_sha = (
        sha256_file(fused_bundle / "model.onnx"),
        sha256_file(fused_bundle / LEXICAL_FILE),
    )
    digest = hashlib.sha256(f"{model_sha}:{lexical_sha}".encode()).hexdigest()
    assert bundle.model_version == "toy-" + digest[:12]
    assert bundle.lexical_weight == 0.5 and bundle.lexical_path == fused_bundle / LEXICAL_FILE
    other = build_toy_bundle(fused_bundle.parent / "other", lexical=_head(seed=1))
    assert load_bundle(other).model_version != bundle.model_version  # same graph, another head


def test_a_version_of_the_graph_alone_is_refused(fused_copy):
    manifest = _manifest(fused_copy)
    manifest["model_version"] = "toy-" + manifest["files"]["model.onnx"][:12]
    _write(fused_copy, manifest)
    with pytest.raises(BundleError, match=r"model\.onnx \+ lexical\.npz"):
        load_bundle(fused_copy)


@pytest.mark.parametrize("weight", [-1, float("nan"), float("inf"), "1", True, None])
def test_a_bad_weight_refuses_the_bundle(fused_copy, weight):
    manifest = _manifest(fused_copy)
    manifest["calibration"]["lexical"]["weight"] = weight
    _write(fused_copy, manifest)
    with pytest.raises(
        BundleError, match=r"calibration\.lexical\.weight must be a non-negative finite number"
    ):
        load_bundle(fused_copy)


def test_a_head_without_its_file_or_a_file_without_its_weight_is_refused(fused_copy):
    manifest = _manifest(fused_copy)
    del manifest["calibration"]["lexical"]
    _write(fused_copy, manifest)
    with pytest.raises(BundleError, match="does not say how to fuse it"):
        load_bundle(fused_copy)
    manifest = _manifest(fused_copy)
    manifest["calibration"]["lexical"] = {"weight": 1.0}
    del manifest["files"][LEXICAL_FILE]
    _write(fused_copy, manifest)
    with pytest.raises(BundleError, match=r"lacks lexical\.npz"):
        load_bundle(fused_copy)


def test_a_corrupt_head_file_is_refused_by_its_hash_and_by_its_reader(fused_copy):
    (fused_copy / LEXICAL_FILE).write_bytes(b"junk")
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(fused_copy)
    manifest = _manifest(fused_copy)
    manifest["files"][LEXICAL_FILE] = sha256_file(fused_copy / LEXICAL_FILE)
    digest = hashlib.sha256(f"{manifest['files']['model.onnx']}:{manifest['files'][LEXICAL_FILE]}".encode())
    manifest["model_version"] = "toy-" + digest.hexdigest()[:12]
    _write(fused_copy, manifest)
    with pytest.raises(BundleError, match="not a lexical head file"):
        EmotionClassifier.from_bundle(fused_copy, threads=1)
