"""The committed demo corpus passes every quality gate (the file is required, never skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_export import corpus_quality as cq
from moodtune.labels import LABELS

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def report() -> cq.Report:
    corpus = DEMO / "emotions.tsv"
    assert corpus.is_file(), f"{corpus} is missing: the demo corpus is part of the repository"
    assert corpus.read_text(encoding="utf-8").startswith("label\ttext\n"), "emotions.tsv needs its header"
    return cq.analyse(cq.load_tsv([corpus]))


def test_every_gate_passes(report: cq.Report) -> None:
    failed = [f"{g.name}: {g.detail}" for g in report.gates if not g.passed]
    pairs = report.cross_label + report.exact_duplicates + report.near_duplicates
    examples = [(p.a.text, p.b.text) for p in pairs[:10]] + [r.text for r in report.out_of_range[:10]]
    assert failed == [], f"run `python -m model_export.corpus_quality data/demo/emotions.tsv`; {examples}"


def test_size_and_balance(report: cq.Report) -> None:
    assert set(report.counts) == set(LABELS)
    assert min(report.counts.values()) >= 700
    assert sum(report.counts.values()) >= 4900


def test_reference_cases_are_held_out(report: cq.Report) -> None:
    reference = cq.load_tsv([DEMO / "reference.tsv"])
    assert sorted(r.label for r in reference) == sorted(LABELS * 10)
    corpus = cq.load_tsv([DEMO / "emotions.tsv"])
    keys = [cq.normalise_key(r.text) for r in corpus + reference]
    leaks = [
        (corpus[i].text, reference[j - len(corpus)].text)
        for _, i, j in cq.similar_pairs(keys, cq.Config().near_threshold)
        if i < len(corpus) <= j
    ]
    assert leaks == []
