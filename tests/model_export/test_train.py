"""model_export.train: option checks, the head's label order, feedback kept out of fold validation."""

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from model_export.datasets import Example
from model_export.errors import run_cli
from model_export.shapes import random_checkpoint
from model_export.train import TrainConfig, folds_with_feedback, load_model
from model_export.train import main as train_main
from moodtune.labels import KOREAN, LABELS


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("train") / "base", "tiny", seed=0)


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "data.tsv"
    rows = [f"{label}\t{label} 문장 {i}번" for label in LABELS for i in range(10)]
    path.write_text("label\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--eval-batch-size", "0"], "--eval-batch-size must be at least 1, got 0"),
        (["--balance", "-5"], "--balance must be at least 1, got -5"),
        (["--dropout", "2"], "--dropout must be at least 0 and below 1, got 2.0"),
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--lr", "nan"], "--lr must be between 0 and 1 (exclusive), got nan"),
        (["--label-smoothing", "1"], "--label-smoothing must be at least 0 and below 1, got 1.0"),
        (["--grad-clip", "-1"], "--grad-clip must be at least 0 (0 turns clipping off), got -1.0"),
        (["--folds", "1"], "--folds must be at least 2, got 1"),
        (["--max-length", "1"], "--max-length must be at least 2, got 1"),
        (["--val-size", "0.6", "--test-size", "0.5"], "--val-size + --test-size must be below 1"),
    ],
)
def test_out_of_range_options_are_usage_errors(tmp_path, capsys, flags, message):
    argv = ["--checkpoint", "x", "--data", str(tmp_path / "d.tsv"), "--out", str(tmp_path / "o"), *flags]
    with pytest.raises(SystemExit) as exit_info:
        train_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_eval_batch_size_and_grad_clip_are_flags(base, data, tmp_path):
    out = tmp_path / "out"
    argv = ["--checkpoint", str(base), "--data", str(data), "--out", str(out), "--epochs", "1"]
    argv += ["--eval-batch-size", "3", "--grad-clip", "0", "--max-length", "16", "--no-progress"]
    assert train_main(argv) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["eval_batch_size"], config["grad_clip"], config["max_length"]) == (3, 0.0, 16)


def test_max_length_above_position_embeddings_fails_before_training(base, data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--checkpoint", str(base), "--data", str(data), "--out", str(out), "--max-length", "200"]
    assert run_cli(train_main, [*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--max-length 200 is above the model's max_position_embeddings 128" in err
    assert "epoch" not in err and not (out / "metrics.json").exists()


def _with_id2label(base: Path, target: Path, names: list[str]) -> Path:
    copy = Path(shutil.copytree(base, target))
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {str(i): name for i, name in enumerate(names)}
    config["label2id"] = {name: i for i, name in enumerate(names)}
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def _logits(model, ids: list[int]) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0]


@pytest.mark.parametrize(
    "names",
    [
        list(reversed(LABELS)),  # English names, another order
        [KOREAN[label] for label in LABELS[3:] + LABELS[:3]],  # Korean names, rotated
    ],
)
def test_head_in_another_label_order_is_permuted_to_ours(base, tmp_path, names):
    """A 7-label head whose id2label is a permutation of ours keeps its weights, rows reordered: the
    logit for each emotion is the one the checkpoint computed for that emotion."""
    reordered = _with_id2label(base, tmp_path / "reordered", names)
    original, _ = load_model(str(base), TrainConfig())
    loaded, _ = load_model(str(reordered), TrainConfig())
    ids = [2, 100, 200, 300, 3]
    before, after = _logits(original, ids), _logits(loaded, ids)
    # The checkpoint's output j means names[j]; ours must put it at that label's index.
    from moodtune.labels import canonical_label

    for j, name in enumerate(names):
        assert torch.allclose(after[LABELS.index(canonical_label(name))], before[j], atol=1e-6)
    assert [loaded.config.id2label[i] for i in range(7)] == list(LABELS)


def test_head_with_unmappable_labels_is_reinitialised_with_a_warning(base, tmp_path):
    names = [f"LABEL_{i}" for i in range(7)]
    other = _with_id2label(base, tmp_path / "other", names)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("model_export.train")
    logger.addHandler(handler)
    try:
        loaded, _ = load_model(str(other), TrainConfig())
    finally:
        logger.removeHandler(handler)
    original, _ = load_model(str(base), TrainConfig())
    assert not torch.equal(loaded.classifier.out_proj.weight, original.classifier.out_proj.weight)
    assert torch.count_nonzero(loaded.classifier.out_proj.bias) == 0  # freshly initialised
    assert torch.equal(loaded.classifier.dense.weight, original.classifier.dense.weight)  # the rest kept
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert any("do not map to moodtune's" in w and "re-initialised" in w for w in warnings)


def test_feedback_goes_only_into_each_folds_training_part():
    pool = [Example(f"{label} {i}", label) for label in LABELS for i in range(4)]
    feedback = [Example(f"feedback {i}", "joy", 0.5) for i in range(3)]
    feedback.append(Example(pool[0].text, pool[0].label, 0.5))  # same text as a labelled example
    folds = folds_with_feedback(pool, feedback, 2, seed=0)
    assert len(folds) == 2
    for fold_train, fold_val in folds:
        assert all(e.weight == 1.0 for e in fold_val)  # validated on real labels only
        val_texts = {e.text for e in fold_val}
        weak = [e for e in fold_train if e.weight == 0.5]
        assert {e.text for e in weak} == {e.text for e in feedback} - val_texts
    assert sum(len(val) for _, val in folds) == len(pool)


def test_soft_cross_entropy_against_a_hand_computed_value():
    """logits (ln 2, 0, …, 0): softmax = (2/8, 1/8 × 6); target joy 0.6, fear 0.4:
    loss = -(0.6 ln 0.25 + 0.4 ln 0.125) = 0.6 ln 4 + 0.4 ln 8."""
    import math

    from model_export.train import soft_cross_entropy

    logits = torch.tensor([[math.log(2), 0, 0, 0, 0, 0, 0]])
    target = torch.tensor([[0.6, 0, 0, 0.4, 0, 0, 0]])
    expected = 0.6 * math.log(4) + 0.4 * math.log(8)
    assert soft_cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # one-hot is the usual cross-entropy, class weights scale by the target's label weight
    one_hot = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0]])
    usual = torch.nn.functional.cross_entropy(logits, torch.tensor([0]))
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(usual.item(), rel=1e-6)
    weights = torch.tensor([2.0, 1, 1, 3, 1, 1, 1])
    assert soft_cross_entropy(logits, target, weights).item() == pytest.approx(
        expected * (0.6 * 2 + 0.4 * 3), rel=1e-6
    )
    # label smoothing ε mixes in the uniform distribution: (1 - ε) t + ε / 7
    smoothed = soft_cross_entropy(logits, one_hot, label_smoothing=0.1).item()
    log_p = torch.log_softmax(logits, -1)[0]
    assert smoothed == pytest.approx(-(0.9 * log_p[0] + 0.1 / 7 * log_p.sum()).item(), rel=1e-6)


def test_training_writes_a_calibration_the_export_reads(base, tmp_path):
    """`train` fits a temperature on the validation split and writes calibration.json with the test
    split's figures; soft rows train and are kept soft in test.tsv."""
    path = tmp_path / "mixed.tsv"
    hard = [f"{label}\t{label} 문장 {i}번" for label in LABELS for i in range(10)]
    soft = [f"joy:0.6,sadness:0.4\t기쁘고 슬픈 문장 {i}번" for i in range(10)]
    path.write_text("label\ttext\n" + "\n".join(hard + soft) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert (
        run_cli(
            train_main,
            [
                "--checkpoint",
                str(base),
                "--data",
                str(path),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--no-progress",
            ],
        )
        == 0
    )
    calibration = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert calibration["temperature"] > 0
    assert calibration["fit_on"].startswith("validation split")
    assert {"before", "after"} <= set(calibration["test"])
    assert "joy:0.6,sadness:0.4" in (out / "test.tsv").read_text(encoding="utf-8")
