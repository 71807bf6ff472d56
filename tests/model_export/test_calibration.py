"""Temperature scaling and the calibration figures, against hand-computed and synthetic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_export.calibration import (
    brier,
    calibration_figures,
    ece,
    fit_temperature,
    mixed_figures,
    nll,
    softmax,
)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    """Labels drawn from softmax(z / 2.5) are best explained by T = 2.5 (up to sampling noise)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20_000, 7))
    probs = softmax(logits, 2.5)
    labels = np.array([rng.choice(7, p=p) for p in probs])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)
    # and with the distributions themselves as soft targets, exactly
    assert fit_temperature(logits, probs) == pytest.approx(2.5, rel=1e-4)


def test_an_overconfident_model_gets_a_temperature_above_one_and_a_lower_ece() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(0, 1, (5_000, 7))
    labels = np.array([rng.choice(7, p=p) for p in softmax(truth)])
    logits = truth * 4  # four times too sharp
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(4.0, rel=0.1)
    figures = calibration_figures(logits, labels, t)
    assert figures["after"]["ece"] < figures["before"]["ece"] / 3
    assert figures["after"]["nll"] < figures["before"]["nll"]
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()  # accuracy unchanged


def test_ece_by_hand() -> None:
    # Two texts at confidence 0.9 (bin 9), one right and one wrong: |0.5 - 0.9| = 0.4, weight 2/3.
    # One text at 0.55 (bin 5), right: |1 - 0.55| = 0.45, weight 1/3. ECE = 0.4·2/3 + 0.45/3 = 0.4167.
    rest = lambda top: [(1 - top) / 6] * 6  # noqa: E731
    probs = np.array([[0.9, *rest(0.9)], [0.9, *rest(0.9)], [0.55, *rest(0.55)]])
    gold = np.array([0, 1, 0])
    assert ece(probs, gold) == pytest.approx(0.4 * 2 / 3 + 0.45 / 3)


def test_nll_and_brier_by_hand() -> None:
    probs = np.array([[0.5, 0.5, 0, 0, 0, 0, 0]])
    assert nll(probs, np.array([0])) == pytest.approx(math.log(2))
    assert brier(probs, np.array([0])) == pytest.approx(0.25 + 0.25)
    soft = np.array([[0.5, 0.5, 0, 0, 0, 0, 0]])
    assert brier(probs, soft) == pytest.approx(0.0)
    assert nll(probs, soft) == pytest.approx(math.log(2))


def test_mixed_figures() -> None:
    targets = np.array([[0.6, 0.4, 0, 0, 0, 0, 0], [0, 0, 0.5, 0, 0, 0.5, 0]])
    probs = np.array([[0.5, 0.3, 0.2, 0, 0, 0, 0], [0.1, 0, 0.6, 0, 0.25, 0.05, 0]])
    figures = mixed_figures(probs, targets)
    assert figures["both_top2"] == 0.5  # the second text's runner-up is surprise, not disgust
    assert figures["first_mean"] == pytest.approx((0.5 + 0.6) / 2)
    assert figures["second_mean"] == pytest.approx((0.3 + 0.05) / 2)
    # the "second feeling" is the intended one the model gives less, whatever the target's order
    flipped = mixed_figures(np.array([[0.2, 0.7, 0, 0, 0, 0, 0.1]]), targets[:1])
    assert (flipped["both_top2"], flipped["first_mean"], flipped["second_mean"]) == (1.0, 0.7, 0.2)


def test_fit_temperature_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        fit_temperature(np.zeros((3, 5)), np.zeros(3, dtype=int))
