import json
import shutil
from pathlib import Path

import pytest

from model_export.toy import build_toy_bundle
from moodtune.emotion.bundle import BundleError, load_bundle, sha256_file
from moodtune.labels import LABELS


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory) -> Path:
    return build_toy_bundle(tmp_path_factory.mktemp("toy") / "bundle")


@pytest.fixture
def bundle_copy(toy_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(toy_bundle, tmp_path / "copy"))


def _edit_manifest(bundle: Path, **changes) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_loads_and_checks(toy_bundle):
    bundle = load_bundle(toy_bundle)
    assert bundle.labels == LABELS
    assert bundle.max_length == 16
    assert bundle.model_version == "toy-" + sha256_file(toy_bundle / "model.onnx")[:12]
    assert bundle.model_path.is_file() and bundle.tokenizer_path.is_file()
    assert len(bundle.examples) == 4


def test_missing_directory(tmp_path):
    with pytest.raises(BundleError, match="no such bundle directory"):
        load_bundle(tmp_path / "nope")


def test_missing_manifest(tmp_path):
    with pytest.raises(BundleError, match=r"manifest\.json: no manifest"):
        load_bundle(tmp_path)


def test_malformed_manifest(bundle_copy):
    (bundle_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_copy)


def test_wrong_labels_refused(bundle_copy):
    _edit_manifest(bundle_copy, labels=["joy", "sadness", "anger", "fear", "surprise", "neutral", "disgust"])
    with pytest.raises(BundleError, match=r"labels .* differ from moodtune's"):
        load_bundle(bundle_copy)


def test_tampered_model_refused(bundle_copy):
    with (bundle_copy / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"model\.onnx: sha256 .* differs from the manifest"):
        load_bundle(bundle_copy)


def test_tampered_tokenizer_refused(bundle_copy):
    (bundle_copy / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(BundleError, match=r"tokenizer\.json: sha256"):
        load_bundle(bundle_copy)


def test_missing_file_refused(bundle_copy):
    (bundle_copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match="listed in the manifest but missing"):
        load_bundle(bundle_copy)


def test_model_version_must_carry_model_hash(bundle_copy):
    _edit_manifest(bundle_copy, model_version="toy-000000000000")
    with pytest.raises(BundleError, match="model_version"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format_version", 2, "format_version"),
        ("max_length", "64", "max_length"),
        ("inputs", ["input_ids"], "inputs"),
        ("files", [], "'files'"),
    ],
)
def test_bad_fields_refused(bundle_copy, field, value, message):
    _edit_manifest(bundle_copy, **{field: value})
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_publish_replaces_a_bundle_or_an_empty_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    build_toy_bundle(out)  # empty directory: fine
    first = load_bundle(out).model_version
    build_toy_bundle(out, seed=1)  # an existing bundle: replaced
    assert load_bundle(out).model_version != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old copies left


def test_publish_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    from model_export.errors import ModelExportError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(ModelExportError, match="not empty and not a model bundle"):
        build_toy_bundle(out)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_lines_per_chunk_is_the_manifests_or_the_original_rule(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("lyrics", None)
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert load_bundle(bundle_copy).lines_per_chunk == 4
    _edit_manifest(bundle_copy, lyrics={"lines_per_chunk": 2})
    assert load_bundle(bundle_copy).lines_per_chunk == 2


@pytest.mark.parametrize("bad", [0, 65, "4", True, None, 2.5])
def test_bad_lines_per_chunk_refused(bundle_copy, bad):
    _edit_manifest(bundle_copy, lyrics={"lines_per_chunk": bad})
    with pytest.raises(BundleError, match=r"lyrics\.lines_per_chunk must be an integer from 1 to 64"):
        load_bundle(bundle_copy)


def test_lyrics_that_is_not_an_object_refused(bundle_copy):
    _edit_manifest(bundle_copy, lyrics=[2])
    with pytest.raises(BundleError, match=r"lyrics\.lines_per_chunk"):
        load_bundle(bundle_copy)


def test_no_calibration_means_no_scaling(toy_bundle):
    assert load_bundle(toy_bundle).temperature == 1.0


@pytest.mark.parametrize("value", [0, -1.5, float("nan"), float("inf"), "2", True, None])
def test_a_temperature_that_is_not_positive_and_finite_refuses_the_bundle(bundle_copy, value):
    _edit_manifest(bundle_copy, calibration={"temperature": value})
    with pytest.raises(BundleError, match=r"calibration\.temperature must be a positive finite number"):
        load_bundle(bundle_copy)


def test_the_classifier_divides_the_logits_by_the_temperature(bundle_copy):
    import numpy as np

    from moodtune.emotion.classifier import EmotionClassifier, softmax

    _edit_manifest(bundle_copy, calibration={"temperature": 2.5})
    classifier = EmotionClassifier.from_bundle(bundle_copy, threads=1)
    assert classifier.temperature == 2.5
    encoded = classifier.tokenize(["오늘 정말 행복하고 신나는 하루였어", "밤길이 무섭고 불안해서 떨려"])
    logits = classifier.infer_logits(encoded)
    probs = classifier.infer(encoded)
    np.testing.assert_allclose(probs, softmax(logits / 2.5), rtol=1e-5, atol=1e-7)
    assert not np.allclose(probs, softmax(logits), atol=1e-4)
    np.testing.assert_array_equal(probs.argmax(1), logits.argmax(1))
