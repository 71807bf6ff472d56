"""The committed demo corpus passes every quality gate (the file is required, never skipped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model_export import corpus_quality as cq
from moodtune.labels import LABELS

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"

# Words that carry a feeling; a neutral text must contain none of them. They are stems, matched inside
# each whitespace-separated word (무서 catches 무서워 and 무서운), never across a space.
_FEELINGS = (
    "행복 최고야 슬프 슬퍼 화나 화가 열받 빡치 빡쳐 짜증 무서 "
    "무섭 불안 걱정 겁나 놀라 놀랐 깜짝 깜놀 역겨 역겹 토나와 "
    "토나오 토나옴 토할 더러 징그 설레 설렘 신나 신난 기뻐 기쁘 "
    "우울 서운 속상 외로 쓸쓸 뿌듯 다행 감동 대박 귀여 웃겨 "
    "아쉽 후련 힘들 미치겠 억울 소름 눈물 울었 울고 서럽 서러 "
    "허무 허전 그리워 지쳤 지친 먹먹 한숨 떨려 떨린 식은땀 극혐 "
    "웩 으악 짜릿 최고다 개빡 킹받 어이없 황당 벙찜 벙쪘"
)
FEELING_WORDS = tuple(_FEELINGS.split())


@pytest.fixture(scope="module")
def report() -> cq.Report:
    corpus = DEMO / "emotions.tsv"
    assert corpus.is_file(), f"{corpus} is missing: the demo corpus is part of the repository"
    assert corpus.read_text(encoding="utf-8").startswith("label\ttext\n"), "emotions.tsv needs its header"
    return cq.analyse(cq.load_tsv([corpus]))


@pytest.fixture(scope="module")
def readme() -> str:
    return (DEMO / "README.md").read_text(encoding="utf-8")


def test_every_gate_passes(report: cq.Report) -> None:
    failed = [f"{g.name}: {g.detail}" for g in report.gates if not g.passed]
    pairs = report.cross_label + report.exact_duplicates + report.near_duplicates
    examples = [(p.a.text, p.b.text) for p in pairs[:10]] + [r.text for r in report.out_of_range[:10]]
    assert failed == [], f"run `python -m model_export.corpus_quality data/demo/emotions.tsv`; {examples}"


def test_size_and_balance(report: cq.Report) -> None:
    assert set(report.counts) == set(LABELS)
    assert min(report.counts.values()) >= 700
    assert sum(report.counts.values()) >= 4900


def test_reference_cases_are_held_out(readme: str) -> None:
    """No reference case is within the README's stated 3-gram Jaccard of any corpus text."""
    stated = re.search(r"char 3-gram Jaccard < ([0-9.]+)", readme)
    assert stated, "data/demo/README.md must state the reference-leak threshold"
    threshold = float(stated.group(1))
    assert threshold <= 0.4
    reference = cq.load_tsv([DEMO / "reference.tsv"])
    assert sorted(r.label for r in reference) == sorted(LABELS * 10)
    corpus = cq.load_tsv([DEMO / "emotions.tsv"])
    keys = [cq.normalise_key(r.text) for r in corpus + reference]
    leaks = [
        (round(sim, 2), corpus[i].text, reference[j - len(corpus)].text)
        for sim, i, j in cq.similar_pairs(keys, threshold)
        if i < len(corpus) <= j
    ]
    assert leaks == []


def test_neutral_texts_carry_no_feeling_words() -> None:
    corpus = cq.load_tsv([DEMO / "emotions.tsv"])

    def feelings(text: str) -> list[str]:
        words = text.split()
        return [stem for stem in FEELING_WORDS if any(stem in word for word in words)]

    neutral = [(r.line, r.text, feelings(r.text)) for r in corpus if r.label == "neutral"]
    assert [hit for hit in neutral if hit[2]] == []
    # The lexicon does find feelings: most texts of every other label contain one of its words.
    for label in LABELS:
        if label != "neutral":
            rows = [r for r in corpus if r.label == label]
            assert sum(bool(feelings(r.text)) for r in rows) / len(rows) > 0.1, label


def test_readme_quotes_the_script_figures(report: cq.Report, readme: str) -> None:
    """The README's per-label, per-topic and per-marker tables are the script's current figures."""
    total = sum(report.counts.values())
    assert f"{total:,} texts" in readme
    for label, stats in report.lengths.items():
        d = report.distinct[label]
        row = (
            f"| {label} | {report.counts[label]} | {stats.mean:.1f} | {stats.median:.0f} | {stats.p10:.0f} "
            f"| {stats.p90:.0f} | {d['d1']:.3f} | {d['d2']:.3f} | {d['c3']:.3f} |"
        )
        assert row in readme, f"README figures are stale for {label}: expected {row}"
    for topic in cq.TOPICS:
        cells = " | ".join(
            f"{report.topics[label][topic]} ×{report.topic_skew(label, topic):.2f}" for label in report.counts
        )
        assert f"| {topic} | {cells} |" in readme, f"README topic row is stale: {topic}"
    for name in cq.MARKERS:
        cells = " | ".join(
            f"{report.markers[name][label]} {report.marker_share(name, label):.0%}" for label in report.counts
        )
        assert re.search(
            rf"\| {re.escape(name)}[^|]* \| {report.marker_texts(name)} \| {re.escape(cells)} \|", readme
        ), f"README marker row is stale: {name}"


def test_mixed_feelings_pass_their_gates() -> None:
    """data/demo/mixed.tsv: ≥ 10% of all texts, every pair ≥ 25 texts, the eight pairs the product
    names present, no near duplicate within it or with the corpus, no marker that gives a pair away."""
    mixed = cq.load_mixed(DEMO / "mixed.tsv")
    report = cq.analyse_mixed(mixed, cq.load_tsv([DEMO / "emotions.tsv"]))
    assert [f"{g.name}: {g.detail}" for g in report.gates if not g.passed] == []
    named = {
        "joy+sadness",
        "joy+fear",
        "joy+surprise",
        "sadness+anger",
        "anger+disgust",
        "sadness+fear",
        "fear+surprise",
        "anger+surprise",
    }
    assert named <= set(report.pairs)
    assert all(report.pairs[pair] >= 40 for pair in named)


def test_mixed_reference_cases_are_held_out() -> None:
    """reference_mixed.tsv is under 0.3 (char 3-gram Jaccard) to every text the model trains on or is
    checked against elsewhere."""
    reference = [row for _, row in cq.load_mixed(DEMO / "reference_mixed.tsv")]
    others = cq.load_tsv([DEMO / "emotions.tsv", DEMO / "reference.tsv"])
    others += [row for _, row in cq.load_mixed(DEMO / "mixed.tsv")]
    keys = [cq.normalise_key(r.text) for r in reference + others]
    leaks = [(round(s, 2), i, j) for s, i, j in cq.similar_pairs(keys, 0.3) if i < len(reference) <= j]
    assert leaks == []
    assert len(reference) >= 80


def test_a_bad_mixed_line_is_named(tmp_path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(
        "label\ttext\njoy:0.5,sadness:0.5\t좋고 슬퍼\njoy:0.7,sadness:0.2\t애매해\n", encoding="utf-8"
    )
    with pytest.raises(cq.CorpusError, match=r"m\.tsv:3: the proportions sum to 0\.900"):
        cq.load_mixed(path)
