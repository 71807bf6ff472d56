"""Tests for model_export.corpus_quality: each gate fails on a crafted corpus and passes on a clean one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from model_export import corpus_quality as cq

# One clean sentence per topic; the same frames appear in both labels with different feelings.
_JOY = [
    "회사에서 칭찬 받았다 오늘 기분 최고",
    "시험 끝나서 너무 홀가분해 ㅎㅎ",
    "남친이 꽃 사왔어 감동이야",
    "헤어진 거 이제 진짜 괜찮아 오히려 후련함",
    "엄마랑 오랜만에 수다 떨어서 좋았다",
    "친구들이랑 밤새 웃고 떠들었음 ㅋㅋ",
    "병원 검사 결과 다 정상이래 다행",
    "월급 들어왔다 통장 든든해",
    "날씨 진짜 맑고 바람 시원해서 행복",
    "치킨 시켰는데 양념 완전 맛있음",
    "우리 강아지 산책하다 꼬리 흔드는 거 귀여워",
    "제주 여행 예약 완료 신난다",
    "뉴스 보니까 좋은 소식도 있네 훈훈",
    "게임 랭크 드디어 승급했다 ㅎㅎ",
    "최애 컴백 날짜 떴다 설렌다",
    "주말에 그림 그리면서 힐링함",
    "지하철 자리 바로 나서 앉아서 옴 럭키",
]
_SAD = [
    "회사에서 혼나고 집 오는 길에 울었다",
    "시험 망쳐서 아무것도 하기 싫어 ㅠㅠ",
    "남친이 요즘 연락이 뜸해 서운하다",
    "헤어진 지 한 달인데 아직도 생각나",
    "엄마 목소리 들으니까 괜히 눈물 났어",
    "친구들 다 바빠서 연락할 사람이 없네",
    "병원 다녀왔는데 결과가 안 좋대",
    "월급 받자마자 다 빠져나감 허무하다",
    "날씨 흐리니까 마음도 축 처진다",
    "혼자 치킨 먹는데 왜 이렇게 쓸쓸하지",
    "우리 강아지 무지개다리 건넌 지 일 년",
    "여행 취소됐다 기대 많이 했는데",
    "뉴스 보다가 마음이 너무 아팠다",
    "게임 랭크 또 떨어짐 의욕 없다 ㅜㅜ",
    "최애 탈퇴 소식에 하루 종일 멍함",
    "그림 그려도 예전처럼 재미가 없다",
    "지하철에서 창밖 보다가 울컥했어",
]


def _rows(pairs: list[tuple[str, str]]) -> list[cq.Row]:
    return [cq.Row(label, text, "mem", i) for i, (label, text) in enumerate(pairs, start=1)]


def _clean() -> list[cq.Row]:
    return _rows([("joy", t) for t in _JOY] + [("sadness", t) for t in _SAD])


def _gate(report: cq.Report, prefix: str) -> cq.Gate:
    (gate,) = [g for g in report.gates if g.name.startswith(prefix)]
    return gate


_LOOSE = cq.Config(min_topic_texts=1)  # the hand-made corpus has one text per topic and label


def test_clean_corpus_passes_every_gate() -> None:
    report = cq.analyse(_clean(), _LOOSE)
    assert [g.name for g in report.gates if not g.passed] == []
    assert report.counts == {"joy": 17, "sadness": 17}
    assert all(count >= 1 for count in report.topics["joy"].values())


def test_normalise_key_ignores_spacing_punctuation_laughter_and_emoji() -> None:
    assert cq.normalise_key("시험 끝났다!! ㅋㅋㅋ 😆") == cq.normalise_key("시험끝났다ㅎㅎ")
    assert cq.normalise_key("좋아아아아") == cq.normalise_key("좋아")
    assert cq.normalise_key("ㅠㅠ") == "ㅠㅠ"  # only marks: kept so it stays comparable
    assert cq.normalise_key("시험 끝났다") != cq.normalise_key("시험 망쳤다")


def test_length_range_gate_fails_on_too_short_and_too_long() -> None:
    rows = [*_clean(), *_rows([("joy", "와"), ("sadness", "하" * 81)])]
    report = cq.analyse(rows, _LOOSE)
    gate = _gate(report, "length 2..80")
    assert not gate.passed
    assert {r.text for r in report.out_of_range} == {"와", "하" * 81}


def test_length_balance_gate_fails_when_one_label_is_longer() -> None:
    padded = [("sadness", t + " 진짜 너무너무 속상하고 서글프고 눈물만 나는 하루였다") for t in _SAD]
    report = cq.analyse(_rows([("joy", t) for t in _JOY] + padded), _LOOSE)
    assert not _gate(report, "label mean length").passed
    assert report.lengths["sadness"].mean > report.lengths["joy"].mean * 1.5


def test_exact_duplicate_after_normalisation_fails() -> None:
    rows = [*_clean(), *_rows([("joy", "시험끝나서 너무 홀가분해!! ㅋㅋㅋ")])]
    report = cq.analyse(rows, _LOOSE)
    assert not _gate(report, "no exact duplicates").passed
    assert report.exact_duplicates[0].a.text == "시험 끝나서 너무 홀가분해 ㅎㅎ"


def test_same_text_in_two_labels_fails() -> None:
    rows = [*_clean(), *_rows([("sadness", "시험 끝나서 너무 홀가분해")])]
    report = cq.analyse(rows, _LOOSE)
    assert not _gate(report, "no text in two labels").passed
    assert _gate(report, "no exact duplicates").passed


def test_near_duplicate_fails_and_reports_similarity() -> None:
    rows = [*_clean(), *_rows([("joy", "회사에서 칭찬 받았다 오늘 기분 최고다")])]
    report = cq.analyse(rows, _LOOSE)
    assert not _gate(report, "no near duplicates").passed
    pair = report.near_duplicates[0]
    assert pair.similarity == pytest.approx(cq.jaccard(pair.a.text, pair.b.text))
    assert pair.similarity >= 0.6


def test_similar_pairs_matches_brute_force() -> None:
    rng = random.Random(7)
    words = ["오늘", "시험", "너무", "좋다", "슬퍼", "진짜", "회사", "비가", "온다", "밥"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(150)]
    keys = [cq.normalise_key(t) for t in texts]
    fast = {(i, j) for _, i, j in cq.similar_pairs(keys, 0.5)}
    slow = {
        (i, j)
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
        if len(cq.char_ngrams(keys[i]) & cq.char_ngrams(keys[j]))
        / len(cq.char_ngrams(keys[i]) | cq.char_ngrams(keys[j]))
        >= 0.5
    }
    assert fast == slow and slow


def test_distinct_gate_fails_on_templated_texts() -> None:
    templated = [("joy", f"오늘 너무 기분 좋은 하루 {topic}") for topic in cq.TOPICS]
    report = cq.analyse(_rows(templated), cq.Config(near_threshold=1.01, min_topic_texts=1))
    assert not _gate(report, "word distinct-2").passed
    assert cq.distinct_n([["a", "b"], ["a", "c"]], 1) == pytest.approx(3 / 4)


def test_topic_coverage_gate_fails_when_a_label_talks_about_one_thing() -> None:
    narrow = [
        "시험 끝나고 맥주 한잔 최고",
        "시험 만점 받았다 대박",
        "기말 끝 방학 시작이다",
        "과제 제출 완료 후련해",
        "성적 장학금 나왔어 야호",
    ]
    report = cq.analyse(_rows([("joy", t) for t in narrow] + [("sadness", t) for t in _SAD]), _LOOSE)
    gate = _gate(report, "each label covers")
    assert not gate.passed and "joy" in gate.detail and "sadness" not in gate.detail
    assert cq.topics_of("우리 강아지랑 제주 여행") == ["pets", "travel"]


def test_parse_lines_header_optional_and_bad_label_is_clear(tmp_path: Path) -> None:
    with_header = tmp_path / "a.tsv"
    with_header.write_text("label\ttext\njoy\t좋다 좋아\n\nsadness\t슬프다\n", encoding="utf-8")
    rows = cq.load_tsv([with_header])
    assert [(r.label, r.text, r.line) for r in rows] == [("joy", "좋다 좋아", 2), ("sadness", "슬프다", 4)]
    bad = tmp_path / "b.tsv"
    bad.write_text("기쁨\t좋다\n", encoding="utf-8")
    with pytest.raises(cq.CorpusError, match=r"b.tsv:1: unknown label '기쁨'"):
        cq.load_tsv([bad])
    no_tab = tmp_path / "c.tsv"
    no_tab.write_text("joy 좋다\n", encoding="utf-8")
    with pytest.raises(cq.CorpusError, match="no tab"):
        cq.load_tsv([no_tab])


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.tsv"
    good.write_text("".join(f"{r.label}\t{r.text}\n" for r in _clean()), encoding="utf-8")
    assert cq.main([str(good), "--min-topic-texts", "1"]) == 0
    assert "all gates pass" in capsys.readouterr().out

    dup = tmp_path / "dup.tsv"
    dup.write_text("sadness\t시험 끝나서 너무 홀가분해\n", encoding="utf-8")
    assert cq.main([str(good), str(dup), "--min-topic-texts", "1"]) == 1
    out = capsys.readouterr().out
    assert "Texts in two labels" in out and "FAIL" in out

    bad = tmp_path / "bad.tsv"
    bad.write_text("happy\t좋다\n", encoding="utf-8")
    assert cq.main([str(bad)]) == 2
    assert "unknown label 'happy'" in capsys.readouterr().err


def test_topic_skew_gate_fails_when_one_label_owns_a_topic() -> None:
    food = [
        "떡볶이 맛집",
        "라면 끓였다",
        "피자 시킴",
        "초밥 먹고 옴",
        "마라탕 최고",
        "빵 구웠어",
        "국밥 한 그릇",
    ]
    rows = _rows([("joy", t) for t in _JOY + food] + [("sadness", t) for t in _SAD])
    report = cq.analyse(rows, _LOOSE)
    gate = _gate(report, "topic share per label")
    assert not gate.passed and "sadness/food" in gate.detail
    assert report.topic_skew("joy", "food") > 1.4
    assert _gate(cq.analyse(_clean(), _LOOSE), "topic share per label").passed


def _labelled(per_label: int, marked: dict[str, int], mark: str = "헐") -> list[cq.Row]:
    """``per_label`` distinct texts for every label; the first ``marked[label]`` of them use ``mark``."""
    pairs = []
    for label in cq.LABELS:
        for i in range(per_label):
            text = f"{label} 일기 {i}번째 줄"
            pairs.append((label, f"{mark} {text}" if i < marked.get(label, 0) else text))
    return _rows(pairs)


def test_markers_of_finds_each_mark_and_not_the_syllable_inside_words() -> None:
    assert cq.markers_of("헐 대박 ㅋㅋ") == ["ㅋ", "헐"]
    assert cq.markers_of("헐헐헐") == ["헐"]
    assert cq.markers_of("바지가 헐렁해짐") == []  # 헐렁하다 is not the interjection
    assert cq.markers_of("ㅎㄷㄷ 무서워..") == ["ㅎ", "ㄷㄷ", "..."]
    assert cq.markers_of("보고 싶어 ㅜㅜ 😭") == ["ㅠ/ㅜ", "emoji"]
    assert cq.markers_of("왜 또야?! ㅡㅡ") == ["ㅡㅡ", "!", "?"]
    assert cq.markers_of("오늘 회의 10시") == []


def test_marker_gate_fails_when_one_label_owns_a_marker() -> None:
    skewed = cq.analyse(_labelled(40, {"surprise": 30}))
    gate = _gate(skewed, "markers")
    assert not gate.passed
    assert "헐: surprise 100%, in 1 labels" in gate.detail
    assert skewed.marker_texts("헐") == 30

    # The same 30 uses spread over six labels pass: no label holds more than 1/6 of them.
    spread = cq.analyse(_labelled(40, dict.fromkeys(cq.LABELS[:6], 5)))
    assert _gate(spread, "markers").passed
    assert spread.marker_share("헐", "joy") == pytest.approx(1 / 6)


def test_marker_gate_fails_on_a_lean_above_the_share_or_too_few_labels() -> None:
    # Used in all seven labels, but anger holds 16 of 34 (47%): above the 40% cap.
    leaning = cq.analyse(_labelled(40, {**dict.fromkeys(cq.LABELS, 3), "anger": 16}))
    assert not _gate(leaning, "markers").passed
    assert "헐: anger 47%, in 7 labels" in _gate(leaning, "markers").detail
    # Evenly shared (25% each) but by four labels only: its absence would rule out the other three.
    narrow = cq.analyse(_labelled(40, dict.fromkeys(cq.LABELS[:4], 8)))
    assert "in 4 labels" in _gate(narrow, "markers").detail
    assert not _gate(narrow, "markers").passed


def test_rare_markers_are_reported_but_not_judged() -> None:
    rare = cq.analyse(_labelled(40, {"surprise": 29}))
    assert rare.marker_texts("헐") == 29
    assert _gate(rare, "markers").passed  # 29 < marker_min_texts: too rare to judge
    strict = cq.analyse(_labelled(40, {"surprise": 29}), cq.Config(marker_min_texts=29))
    assert not _gate(strict, "markers").passed


def test_marker_share_is_normalised_by_label_size() -> None:
    rows = _rows(
        [("joy", f"좋다 {i} ㅋㅋ" if i < 5 else f"좋다 {i}") for i in range(10)]
        + [("sadness", f"슬프다 {i} ㅋㅋ" if i < 5 else f"슬프다 {i}") for i in range(40)]
    )
    report = cq.analyse(rows)
    # Half of joy's texts laugh against an eighth of sadness's: 0.5 / (0.5 + 0.125).
    assert report.marker_share("ㅋ", "joy") == pytest.approx(0.8)
    assert report.markers["ㅋ"] == {"joy": 5, "sadness": 5}


def test_cli_prints_the_marker_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "skewed.tsv"
    corpus.write_text("".join(f"{r.label}\t{r.text}\n" for r in _labelled(40, {"surprise": 30})))
    assert cq.main([str(corpus), "--min-topic-texts", "0", "--topic-coverage", "0"]) == 1
    out = capsys.readouterr().out
    assert "Texts using each marker per label" in out
    assert "헐: surprise 100%" in out
    cq.main([str(corpus), "--marker-max-share", "1.0", "--marker-min-labels", "1"])
    assert "헐: surprise 100%" not in capsys.readouterr().out  # the flags reach the gate
