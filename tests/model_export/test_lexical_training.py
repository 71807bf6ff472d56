"""Training the lexical head and choosing its fusion weight on validation."""

import numpy as np

from model_export.datasets import Example, soft_example
from model_export.lexical import LexicalConfig, fit_fusion, train_lexical
from moodtune.labels import LABEL_INDEX, LABELS, NUM_LABELS

CUES = {
    "joy": ["기뻐", "신나", "행복해"],
    "fear": ["무서워", "떨려", "불안해"],
    "sadness": ["슬퍼", "눈물나", "허전해"],
}
FILLER = ["오늘", "진짜", "너무", "그냥", "아까", "집에서", "회사에서", "밤에"]


def _corpus(n: int, seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = list(CUES)[i % len(CUES)]
        words = [*rng.choice(FILLER, 2), rng.choice(CUES[label])]
        out.append(Example(" ".join(words), label))
    return out


def test_the_head_learns_cues_and_adds_two_of_them_up():
    head = train_lexical(_corpus(120, 0), LexicalConfig(buckets=1 << 12, epochs=80))
    probs = np.exp(head.logits(["아까 진짜 행복해", "밤에 너무 떨려", "기뻐 근데 무서워"]))
    assert probs[0].argmax() == LABEL_INDEX["joy"]
    assert probs[1].argmax() == LABEL_INDEX["fear"]
    assert set(np.argsort(-probs[2])[:2]) == {LABEL_INDEX["joy"], LABEL_INDEX["fear"]}


def test_soft_targets_are_fit_as_soft_targets():
    target = [0.5 if label in ("joy", "fear") else 0.0 for label in LABELS]
    mixed = [soft_example("기뻐 무서워", target)] * 20
    head = train_lexical(mixed, LexicalConfig(buckets=1 << 10, epochs=200, l2=0.0))
    logits = head.logits(["기뻐 무서워"])[0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert abs(probs[LABEL_INDEX["joy"]] - 0.5) < 0.05 and abs(probs[LABEL_INDEX["fear"]] - 0.5) < 0.05


def test_the_fusion_weight_goes_where_the_information_is():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, NUM_LABELS, 400)
    informative = np.eye(NUM_LABELS)[gold] * 4 + rng.normal(size=(400, NUM_LABELS))
    noise = rng.normal(size=(400, NUM_LABELS)) * 3
    assert fit_fusion(informative, noise, gold).weight == 0.0  # a useless head is not shipped
    assert fit_fusion(noise * 0.1, informative, gold).weight > 0
    # Two views of the truth with their own errors: together they beat either alone.
    other = np.eye(NUM_LABELS)[gold] * 4 + rng.normal(size=(400, NUM_LABELS))
    fused = fit_fusion(informative, other, gold)
    assert fused.weight > 0 and {row["weight"] for row in fused.table} >= {0.0, 1.0}
    assert min(row["nll"] for row in fused.table) == next(
        r["nll"] for r in fused.table if r["weight"] == fused.weight
    )
