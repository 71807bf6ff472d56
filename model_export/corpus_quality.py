"""Quality gates for the demo emotion corpus (``label<TAB>text`` TSV files).

Run ``python -m model_export.corpus_quality FILE [FILE ...]``: it prints counts, length figures,
distinct-n, topic coverage, marker shares and duplicate pairs, and exits non-zero when a gate fails.

Definitions (stated once, quoted by the README):

* **length** — characters = Unicode code points of the NFC text (an emoji may count as more than one).
* **comparison key** — NFC, lower-cased, with compatibility jamo (ㅋㅋ, ㅎㅎ, ㅠㅠ, ㄷㄷ, ㅇㅇ…),
  punctuation, symbols and emoji removed, runs of 3+ identical characters squeezed to one, and all
  whitespace removed (so spacing variants of one sentence are the same text).
* **exact duplicate** — two texts with the same comparison key; across two labels it is a conflict.
* **near duplicate** — Jaccard similarity of the sets of character 3-grams of the comparison keys
  (with start/end markers) at or above ``near_threshold`` (default 0.6). All pairs that share a
  3-gram are scored at once with a sparse matrix product, never a Python loop over all pairs.
* **distinct-n** — unique n-grams / all n-grams of whitespace tokens (``d1``, ``d2``) and of
  characters without whitespace (``c3``, character 3-grams), pooled over one label's texts.
* **topic** — a text counts for a topic when its NFC, lower-cased, space-free form contains one of
  the topic's keywords (:data:`TOPICS`); a text may count for several topics or for none.
* **topic skew** — a label's share of texts on a topic divided by the share over all labels (1.0 =
  exactly as often as everyone else); topics with fewer than ``min_topic_texts`` texts per label on
  average are too thin to judge and are left out of the gate.
* **marker** — a surface mark a model could learn instead of the feeling (:data:`MARKERS`: ㅋ, ㅎ,
  ㅠ/ㅜ, 헐, ㄷㄷ, ㅡㅡ, !, ?, an ellipsis (.. or …), ^^, emoji); a text *uses* it when the pattern occurs in
  its NFC text, however often. A marker's **share** in a label is the label's rate of use (texts
  using it / the label's texts) over the sum of the rates of all labels: with equal-sized labels it
  is the fraction of the marker's texts that carry that label, i.e. how often a classifier that saw
  only the marker would be right, so unequal label sizes cannot hide or fake a skew.

Gates (defaults in :class:`Config`, each overridable on the command line): every text 2..80
characters; each label's mean length within ±25% of the overall mean; no exact duplicate; no text in
two labels; no near duplicate (Jaccard ≥ 0.6); word distinct-2 ≥ 0.6 per label; each label covers
≥ 80% of the topics with ≥ 3 texts each; each label's topic skew within ×0.5..×2; every marker used
by ≥ 30 texts is used by ≥ 2 texts in each of ≥ 5 labels (all of them when fewer are present) and
has no label share above 40%.

Why those marker figures: a share of at most 40% means the marker alone points to the right label
for at most 40% of its texts (14% is chance with seven labels), so it stays a hint and cannot stand
in for the label, while real leanings survive (ㅠㅠ is more often sad than not, ㅋㅋ more often
happy); being used in 5 of 7 labels means its absence can rule out two labels at most. Markers in
fewer than 30 texts are reported but too rare to judge.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy import sparse

from moodtune.labels import LABELS

HEADER = ("label", "text")

# Keyword lexicon: substrings of the space-free, lower-cased text. Chosen to be unambiguous enough
# for a corpus figure (e.g. no bare "약" that would also hit 약속), not to be a classifier.
_TOPIC_WORDS: dict[str, str] = {
    "work": (
        "회사 출근 퇴근 야근 팀장 부장 과장 상사 사수 회의 업무 직장 이직 면접 알바 사장님 동료 "
        "보고서 월요일 연차 퇴사 입사"
    ),
    "school": (
        "학교 시험 수능 중간고사 기말 과제 성적 학점 수업 교수 선생님 공부 합격 토익 레포트 "
        "리포트 모의고사 자격증 학원 도서관 졸업 방학 개강 종강 발표 숙제 성적표 재수"
    ),
    "love": (
        "남친 여친 남자친구 여자친구 연애 데이트 고백 썸 애인 기념일 짝사랑 사귀 소개팅 결혼 "
        "프러포즈 자기야 커플"
    ),
    "breakup": ("헤어지 헤어졌 헤어진 헤어짐 이별 전남친 전여친 차였 잠수 환승이별 재회 전애인 헤어지자"),
    "family": (
        "엄마 아빠 부모 동생 언니 오빠 누나 할머니 할아버지 가족 남편 아내 아들 우리딸 딸아이 "
        "조카 명절 이모 삼촌 시댁 친정 형이랑 우리형 형아"
    ),
    "friends": ("친구 절친 동창 단톡 베프 동기 친구들"),
    "health": (
        "병원 아프 아파 아팠 감기 열나 열이 수술 다이어트 운동 헬스 코로나 두통 몸살 치과 입원 "
        "퇴원 건강 검진 약국 진통제 허리 체중 살빠 살쪘 불면 잠을못 몸이"
    ),
    "money": (
        "돈이 돈을 돈도 돈은 월급 통장 적금 카드값 용돈 주식 코인 월세 대출 로또 보너스 적자 연봉 "
        "만원 월급날 잔고 할부 전세 재테크 성과급 환급 세금 이자가"
    ),
    "weather": (
        "날씨 비가 비와 비오 비온 눈이와 눈와 눈온 첫눈 햇살 더워 더운 덥다 덥네 추워 추운 춥다 "
        "춥네 장마 태풍 미세먼지 하늘 맑 소나기 폭염 한파 바람 우산 벚꽃 단풍 노을 무지개"
    ),
    "food": (
        "밥 치킨 떡볶이 라면 커피 맛있 맛집 배달 피자 케이크 고기 삼겹살 마라탕 디저트 빵 "
        "아메리카노 점심 저녁 야식 요리 맛없 국밥 김치 초밥 회식 먹었 먹고 먹는 먹을 먹어"
    ),
    "pets": (
        "강아지 고양이 댕댕 냥이 멍멍 반려 햄스터 집사 우리개 산책 댕청 고양이가 냥냥 애옹 앵무새 "
        "거북이 금붕어 츄르 사료"
    ),
    "travel": (
        "여행 제주 비행기 공항 바다 호텔 숙소 해외 휴가 캠핑 부산 강릉 오사카 도쿄 유럽 기차 ktx "
        "여권 게스트하우스 펜션 일본 대만 베트남"
    ),
    "news": (
        "뉴스 기사를 기사에 기사보 속보 사건 정치 선거 사고났 교통사고 재난 지진 물가 금리 "
        "뉴스보다 기자 보도 인터넷에 커뮤 실검"
    ),
    "games": (
        "게임 롤하 롤에서 랭크 랭겜 배그 레벨 겜 승급 스팀 가챠 뽑기 닌텐도 스위치 플스 티어 패치 "
        "보스 던전 캐릭터 현질 발로란트 오버워치 메이플"
    ),
    "music": (
        "아이돌 콘서트 콘서 앨범 노래 음악 덕질 최애 컴백 티켓팅 팬싸 플리 음원 뮤비 가수 공연 "
        "페스티벌 페스벌 응원봉 포카 덕후 직캠 밴드 차애"
    ),
    "hobbies": (
        "취미 그림 뜨개 독서 책읽 책을 소설책 영화 드라마 넷플 사진 등산 베이킹 피아노 기타연습 "
        "자전거 러닝 요가 필라테스 수영 캘리 식물 화분 웹툰 소설 전시 퍼즐 레고 낚시 클라이밍"
    ),
    "commute": (
        "지하철 버스 출근길 퇴근길 택시 지각 환승 만원버스 만원지하철 정류장 막차 첫차 2호선 "
        "9호선 출퇴근 배차 자차 운전 주차"
    ),
}
TOPICS: dict[str, tuple[str, ...]] = {topic: tuple(words.split()) for topic, words in _TOPIC_WORDS.items()}

# Emoji and pictographic symbols (emoticons, dingbats, transport, supplemental symbols, ⭐, ⏰).
_EMOJI = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff"
MARKERS: dict[str, re.Pattern[str]] = {
    "ㅋ": re.compile("ㅋ"),
    "ㅎ": re.compile("ㅎ"),
    "ㅠ/ㅜ": re.compile("[ㅠㅜ]"),
    # The interjection, not the syllable inside 헐렁하다, 헐값, 헐뜯다, 헐벗다.
    "헐": re.compile("(?<![가-힣])헐(?![렁값뜯벗])"),
    "ㄷㄷ": re.compile("ㄷㄷ"),
    "ㅡㅡ": re.compile("ㅡㅡ"),
    "!": re.compile("[!！]"),
    "?": re.compile("[?？]"),
    "...": re.compile(r"\.\.|…"),
    "^^": re.compile(r"\^\^"),
    "emoji": re.compile(f"[{_EMOJI}]"),
}


@dataclass(frozen=True)
class Row:
    """One corpus line: its canonical label, its text and where it came from (for messages)."""

    label: str
    text: str
    source: str
    line: int


@dataclass(frozen=True)
class Config:
    """Gate thresholds; the defaults are the project's stated figures."""

    min_chars: int = 2
    max_chars: int = 80
    length_tolerance: float = 0.25  # a label's mean length may deviate this much from the overall mean
    near_threshold: float = 0.6  # character 3-gram Jaccard at or above this is a near duplicate
    min_distinct2: float = 0.6  # word distinct-2 per label at least this
    min_topic_texts: int = 3  # a label covers a topic with at least this many texts
    topic_coverage: float = 0.8  # a label must cover at least this share of TOPICS
    topic_skew: float = 2.0  # a label's share of a topic within [1/skew, skew] x the overall share
    marker_min_texts: int = 30  # markers used by fewer texts are reported, not judged
    marker_min_labels: int = 5  # a judged marker is used in at least this many labels ...
    marker_label_texts: int = 2  # ... by at least this many texts each
    marker_max_share: float = 0.4  # and no label holds more than this share of it


@dataclass(frozen=True)
class LengthStats:
    """Length figures of one label's texts, in characters."""

    n: int
    mean: float
    median: float
    p10: float
    p90: float


@dataclass(frozen=True)
class Pair:
    """Two texts that are (near) duplicates, with their similarity (1.0 for exact)."""

    similarity: float
    a: Row
    b: Row


@dataclass(frozen=True)
class Gate:
    """One named check, whether it passed, and a one-line explanation."""

    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    """Everything the script measures; :attr:`passed` is the verdict."""

    counts: dict[str, int]
    lengths: dict[str, LengthStats]
    overall_length: LengthStats
    out_of_range: list[Row]
    exact_duplicates: list[Pair]
    cross_label: list[Pair]
    near_duplicates: list[Pair]
    distinct: dict[str, dict[str, float]]
    topics: dict[str, dict[str, int]]
    untopical: dict[str, int]
    markers: dict[str, dict[str, int]] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)

    def marker_texts(self, marker: str) -> int:
        """How many texts use ``marker`` (all labels)."""
        return sum(self.markers[marker].values())

    def marker_share(self, marker: str, label: str) -> float:
        """``label``'s share of ``marker`` (see the module docstring); 0.0 when no text uses it."""
        rates = {lab: count / self.counts[lab] for lab, count in self.markers[marker].items()}
        total = sum(rates.values())
        return rates[label] / total if total else 0.0

    def topic_skew(self, label: str, topic: str) -> float:
        """``label``'s share of texts on ``topic`` over the share among all texts (0.0 when none)."""
        total = sum(counts[topic] for counts in self.topics.values())
        if not total:
            return 0.0
        return (self.topics[label][topic] / self.counts[label]) / (total / sum(self.counts.values()))

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)


class CorpusError(ValueError):
    """A corpus file that cannot be read as ``label<TAB>text`` with canonical labels."""


# --------------------------------------------------------------------------------------------- reading


def parse_lines(lines: Iterable[str], source: str = "<input>") -> list[Row]:
    """Parse TSV lines (optional ``label<TAB>text`` header, blank lines ignored) into rows.

    Raises :class:`CorpusError` naming the file and line on a missing tab, an empty text or a label
    that is not one of ``moodtune.labels.LABELS``.
    """
    rows: list[Row] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if number == 1 and tuple(part.strip().lower() for part in line.split("\t")) == HEADER:
            continue
        label, tab, text = line.partition("\t")
        if not tab:
            raise CorpusError(f"{source}:{number}: expected 'label<TAB>text', found no tab")
        label = label.strip()
        if label not in LABELS:
            raise CorpusError(
                f"{source}:{number}: unknown label {label!r}; expected one of {', '.join(LABELS)}"
            )
        text = unicodedata.normalize("NFC", text.strip())
        if not text:
            raise CorpusError(f"{source}:{number}: empty text")
        rows.append(Row(label, text, source, number))
    return rows


def load_tsv(paths: Sequence[str | Path]) -> list[Row]:
    """Read and parse every file in ``paths`` (UTF-8) into one list of rows."""
    rows: list[Row] = []
    for path in paths:
        path = Path(path)
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
        rows.extend(parse_lines(content.splitlines(), str(path)))
    return rows


# ------------------------------------------------------------------------------------------- measures

_JAMO = re.compile(r"[\u3131-\u318E\u1100-\u11FF]+")  # ㅋㅋ ㅎㅎ ㅠㅠ ㄷㄷ ㅇㅇ and friends
_REPEAT = re.compile(r"(.)\1{2,}")
_SPACE = re.compile(r"\s+")


def normalise_key(text: str) -> str:
    """The comparison key of a text (see the module docstring); never empty for a non-blank text."""
    text = unicodedata.normalize("NFC", text).lower()
    stripped = _JAMO.sub("", text)
    stripped = "".join(ch for ch in stripped if unicodedata.category(ch)[0] not in "PSCM")
    stripped = _SPACE.sub("", _REPEAT.sub(r"\1", stripped))
    # A text made only of marks ("ㅋㅋㅋㅋ", "ㅠㅠ") keeps its marks so that it is still comparable.
    return stripped or _SPACE.sub("", text)


def char_ngrams(key: str, n: int = 3) -> set[str]:
    """Character n-grams of ``key`` padded with start/end markers (so short keys still have some)."""
    padded = f"\x02{key}\x03"
    if len(padded) <= n:
        return {padded}
    return {padded[i : i + n] for i in range(len(padded) - n + 1)}


def jaccard(a: str, b: str, n: int = 3) -> float:
    """Character n-gram Jaccard similarity of the comparison keys of two texts."""
    grams_a, grams_b = char_ngrams(normalise_key(a), n), char_ngrams(normalise_key(b), n)
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def similar_pairs(keys: Sequence[str], threshold: float, n: int = 3) -> list[tuple[float, int, int]]:
    """All index pairs ``(similarity, i, j)``, ``i < j``, whose n-gram Jaccard is >= ``threshold``.

    Builds a binary text x n-gram sparse matrix and multiplies it by its transpose: only pairs that
    share an n-gram are ever touched, and the work is done in compiled code.
    """
    if len(keys) < 2:
        return []
    vocabulary: dict[str, int] = {}
    indptr, indices = [0], []
    for key in keys:
        grams = char_ngrams(key, n)
        indices.extend(vocabulary.setdefault(gram, len(vocabulary)) for gram in grams)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.int32)
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(keys), len(vocabulary)))
    sizes = np.diff(matrix.indptr)
    shared = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    union = sizes[shared.row] + sizes[shared.col] - shared.data
    similarity = shared.data / union
    hit = similarity >= threshold
    pairs = zip(similarity[hit].tolist(), shared.row[hit].tolist(), shared.col[hit].tolist(), strict=True)
    return sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))


def length_stats(lengths: Sequence[int]) -> LengthStats:
    """Mean, median and 10th/90th percentile of a list of lengths (zeros for an empty list)."""
    if not lengths:
        return LengthStats(0, 0.0, 0.0, 0.0, 0.0)
    p10, p90 = np.percentile(lengths, [10, 90]).tolist()
    return LengthStats(len(lengths), statistics.fmean(lengths), float(statistics.median(lengths)), p10, p90)


def distinct_n(sequences: Iterable[Sequence[str]], n: int) -> float:
    """Distinct-n: unique n-grams / all n-grams, pooled over ``sequences`` (0.0 when there are none)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for seq in sequences:
        grams.update(tuple(seq[i : i + n]) for i in range(len(seq) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def distinct_figures(texts: Sequence[str]) -> dict[str, float]:
    """Word distinct-1/2 (whitespace tokens) and character distinct-3 (spaces removed) of ``texts``."""
    words = [text.split() for text in texts]
    chars = [list(_SPACE.sub("", text)) for text in texts]
    return {"d1": distinct_n(words, 1), "d2": distinct_n(words, 2), "c3": distinct_n(chars, 3)}


def markers_of(text: str) -> list[str]:
    """The markers of :data:`MARKERS` that ``text`` uses."""
    text = unicodedata.normalize("NFC", text)
    return [name for name, pattern in MARKERS.items() if pattern.search(text)]


def topics_of(text: str) -> list[str]:
    """The topics of :data:`TOPICS` whose keywords occur in ``text`` (space-free, lower-cased)."""
    flat = _SPACE.sub("", unicodedata.normalize("NFC", text).lower())
    return [topic for topic, words in TOPICS.items() if any(word in flat for word in words)]


# --------------------------------------------------------------------------------------------- report


def analyse(rows: Sequence[Row], config: Config | None = None) -> Report:
    """Measure ``rows`` and evaluate every gate; see :class:`Report` and :class:`Config`."""
    config = config or Config()
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    labels = [label for label in LABELS if label in by_label]

    counts = {label: len(by_label[label]) for label in labels}
    lengths = {label: length_stats([len(r.text) for r in by_label[label]]) for label in labels}
    overall = length_stats([len(r.text) for r in rows])
    out_of_range = [r for r in rows if not config.min_chars <= len(r.text) <= config.max_chars]

    keys = [normalise_key(r.text) for r in rows]
    first_seen: dict[str, int] = {}
    exact, cross = [], []
    for i, key in enumerate(keys):
        if key in first_seen:
            a = rows[first_seen[key]]
            (exact if a.label == rows[i].label else cross).append(Pair(1.0, a, rows[i]))
        else:
            first_seen[key] = i
    near = [
        Pair(sim, rows[i], rows[j])
        for sim, i, j in similar_pairs(keys, config.near_threshold)
        if keys[i] != keys[j]
    ]

    distinct = {label: distinct_figures([r.text for r in by_label[label]]) for label in labels}
    topics: dict[str, dict[str, int]] = {label: dict.fromkeys(TOPICS, 0) for label in labels}
    untopical = dict.fromkeys(labels, 0)
    for row in rows:
        found = topics_of(row.text)
        untopical[row.label] += not found
        for topic in found:
            topics[row.label][topic] += 1

    markers: dict[str, dict[str, int]] = {name: dict.fromkeys(labels, 0) for name in MARKERS}
    for row in rows:
        for name in markers_of(row.text):
            markers[name][row.label] += 1

    report = Report(
        counts, lengths, overall, out_of_range, exact, cross, near, distinct, topics, untopical, markers
    )
    report.gates = _gates(report, config)
    return report


def _gates(report: Report, config: Config) -> list[Gate]:
    gates = [
        Gate(
            f"length {config.min_chars}..{config.max_chars} chars",
            not report.out_of_range,
            f"{len(report.out_of_range)} texts out of range",
        )
    ]
    mean = report.overall_length.mean
    deviation = {label: (s.mean - mean) / mean if mean else 0.0 for label, s in report.lengths.items()}
    worst = max(((abs(d), d, label) for label, d in deviation.items()), default=(0.0, 0.0, "-"))
    gates.append(
        Gate(
            f"label mean length within ±{config.length_tolerance:.0%} of overall",
            worst[0] <= config.length_tolerance,
            f"worst {worst[2]}: {worst[1]:+.1%} vs overall mean {mean:.1f}",
        )
    )
    gates.append(
        Gate("no exact duplicates", not report.exact_duplicates, f"{len(report.exact_duplicates)} pairs")
    )
    gates.append(Gate("no text in two labels", not report.cross_label, f"{len(report.cross_label)} pairs"))
    gates.append(
        Gate(
            f"no near duplicates (3-gram Jaccard ≥ {config.near_threshold})",
            not report.near_duplicates,
            f"{len(report.near_duplicates)} pairs",
        )
    )
    low = {label: f["d2"] for label, f in report.distinct.items() if f["d2"] < config.min_distinct2}
    gates.append(
        Gate(
            f"word distinct-2 ≥ {config.min_distinct2} per label",
            not low,
            ", ".join(f"{label} {value:.3f}" for label, value in low.items()) or "all labels pass",
        )
    )
    needed = int(np.ceil(config.topic_coverage * len(TOPICS)))
    thin = {
        label: sum(count >= config.min_topic_texts for count in counts.values())
        for label, counts in report.topics.items()
    }
    thin = {label: covered for label, covered in thin.items() if covered < needed}
    gates.append(
        Gate(
            f"each label covers ≥ {needed}/{len(TOPICS)} topics (≥ {config.min_topic_texts} texts each)",
            not thin,
            ", ".join(f"{label} {covered}" for label, covered in thin.items()) or "all labels pass",
        )
    )
    judged = [
        topic
        for topic in TOPICS
        if sum(c[topic] for c in report.topics.values()) >= config.min_topic_texts * len(report.topics)
    ]
    skewed = [
        (abs(np.log(skew)) if skew else np.inf, label, topic, skew)
        for label in report.topics
        for topic in judged
        if not 1 / config.topic_skew <= (skew := report.topic_skew(label, topic)) <= config.topic_skew
    ]
    gates.append(
        Gate(
            f"topic share per label within ×{config.topic_skew:g} of overall ({len(judged)} topics judged)",
            not skewed,
            ", ".join(
                f"{label}/{topic} ×{skew:.2f}" for *_, label, topic, skew in sorted(skewed, reverse=True)[:4]
            )
            or "all labels pass",
        )
    )
    gates.append(_marker_gate(report, config))
    return gates


def _marker_gate(report: Report, config: Config) -> Gate:
    needed = min(config.marker_min_labels, len(report.counts))
    judged = [name for name in report.markers if report.marker_texts(name) >= config.marker_min_texts]
    problems, worst = [], (0.0, "-", "-")
    for name in judged:
        shares = {label: report.marker_share(name, label) for label in report.counts}
        top = max(shares, key=shares.__getitem__)
        worst = max(worst, (shares[top], name, top))
        used = sum(count >= config.marker_label_texts for count in report.markers[name].values())
        if used < needed or shares[top] > config.marker_max_share:
            problems.append(f"{name}: {top} {shares[top]:.0%}, in {used} labels")
    return Gate(
        f"markers (≥ {config.marker_min_texts} texts) in ≥ {needed} labels, "
        f"≤ {config.marker_max_share:.0%} in one ({len(judged)} judged)",
        not problems,
        "; ".join(problems) or f"widest: {worst[1]} {worst[2]} {worst[0]:.0%}",
    )


# ------------------------------------------------------------------------------------- mixed feelings


@dataclass(frozen=True)
class MixedConfig:
    """Gates of the mixed-feelings file (soft labels naming two feelings)."""

    min_share: float = 0.10  # mixed texts are at least this share of corpus + mixed
    min_pair_texts: int = 25  # every pair present has at least this many texts
    marker_min_texts: int = 20  # markers used by fewer mixed texts are not judged
    marker_max_share: float = 0.4  # and no pair holds more than this share of a judged marker


@dataclass
class MixedReport:
    """Counts per pair, duplicates within the file and against the corpus, marker shares, gates."""

    pairs: Counter[str]
    near_duplicates: list[Pair]
    marker_shares: dict[str, tuple[str, float, int]]  # marker -> (widest pair, its share, texts)
    gates: list[Gate]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def load_mixed(path: str | Path) -> list[tuple[str, Row]]:
    """(pair, row) of each line of a soft-labelled TSV; ``CorpusError`` naming the line when a label
    does not parse (``model_export.datasets.parse_soft_label``) or does not name exactly two feelings."""
    from model_export.datasets import parse_soft_label

    out: list[tuple[str, Row]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.lower().startswith("label\t")):
            continue
        label, tab, text = line.partition("\t")
        try:
            if not tab:
                raise ValueError("expected 'label<TAB>text', found no tab")
            soft = parse_soft_label(label)
        except ValueError as exc:
            raise CorpusError(f"{path}:{number}: {exc}") from None
        named = [lb for lb, q in zip(LABELS, soft, strict=True) if q > 0]
        if len(named) != 2:
            raise CorpusError(f"{path}:{number}: a mixed text names two feelings, this one {len(named)}")
        top = named[0] if soft[LABELS.index(named[0])] >= soft[LABELS.index(named[1])] else named[1]
        text = unicodedata.normalize("NFC", text.strip())
        out.append(("+".join(named), Row(top, text, str(path), number)))
    return out


def analyse_mixed(
    mixed: Sequence[tuple[str, Row]], corpus: Sequence[Row], config: MixedConfig | None = None
) -> MixedReport:
    """Gates: the mixed share, texts per pair, no near duplicate (within the file or with the corpus,
    ``Config.near_threshold``), no marker that gives a pair away."""
    config = config or MixedConfig()
    near = Config().near_threshold
    pairs = Counter(pair for pair, _ in mixed)
    rows = [row for _, row in mixed]
    keys = [normalise_key(r.text) for r in rows + list(corpus)]
    duplicates = [
        Pair(round(sim, 3), rows[i], (rows + list(corpus))[j])
        for sim, i, j in similar_pairs(keys, near)
        if i < len(rows)
    ]
    by_marker: dict[str, Counter[str]] = defaultdict(Counter)
    for pair, row in mixed:
        for name in markers_of(row.text):
            by_marker[name][pair] += 1
    shares: dict[str, tuple[str, float, int]] = {}
    for name, counts in by_marker.items():
        rates = {pair: counts[pair] / pairs[pair] for pair in pairs}
        total = sum(rates.values())
        widest = max(rates, key=rates.__getitem__)
        shares[name] = (widest, rates[widest] / total if total else 0.0, sum(counts.values()))
    share = len(rows) / (len(rows) + len(corpus)) if rows else 0.0
    judged = {m: v for m, v in shares.items() if v[2] >= config.marker_min_texts}
    loud = [f"{m}: {v[0]} {v[1]:.0%}" for m, v in judged.items() if v[1] > config.marker_max_share]
    thin = [f"{pair} {n}" for pair, n in sorted(pairs.items()) if n < config.min_pair_texts]
    gates = [
        Gate(f"mixed texts ≥ {config.min_share:.0%} of all", share >= config.min_share, f"{share:.1%}"),
        Gate(
            f"every pair ≥ {config.min_pair_texts} texts", not thin, "; ".join(thin) or f"{len(pairs)} pairs"
        ),
        Gate(f"no near duplicate (Jaccard ≥ {near})", not duplicates, f"{len(duplicates)} pairs"),
        Gate(
            f"markers (≥ {config.marker_min_texts} texts) ≤ {config.marker_max_share:.0%} in one pair",
            not loud,
            "; ".join(loud) or f"{len(judged)} judged",
        ),
    ]
    return MixedReport(pairs, duplicates, shares, gates)


# ------------------------------------------------------------------------------------------- printing


def _pair_table(title: str, pairs: Sequence[Pair], limit: int) -> Table:
    table = Table(title=f"{title} ({len(pairs)}; worst {min(limit, len(pairs))})", title_justify="left")
    for column in ("sim", "label", "text", "where", "label ", "text ", "where "):
        table.add_column(column, overflow="fold")
    for pair in pairs[:limit]:
        table.add_row(
            f"{pair.similarity:.2f}",
            pair.a.label,
            pair.a.text,
            f"{Path(pair.a.source).name}:{pair.a.line}",
            pair.b.label,
            pair.b.text,
            f"{Path(pair.b.source).name}:{pair.b.line}",
        )
    return table


def print_report(report: Report, console: Console, max_pairs: int = 15) -> None:
    """Print the figures, the worst duplicate pairs and the gate verdicts as rich tables."""
    figures = Table(title="Counts, length (characters) and distinct-n per label", title_justify="left")
    for column in ("label", "texts", "mean", "median", "p10", "p90", "word d1", "word d2", "char d3"):
        figures.add_column(column, justify="left" if column == "label" else "right")
    for label, stats in report.lengths.items():
        d = report.distinct[label]
        figures.add_row(
            label,
            str(report.counts[label]),
            f"{stats.mean:.1f}",
            f"{stats.median:.0f}",
            f"{stats.p10:.0f}",
            f"{stats.p90:.0f}",
            f"{d['d1']:.3f}",
            f"{d['d2']:.3f}",
            f"{d['c3']:.3f}",
        )
    o = report.overall_length
    figures.add_row(
        "all",
        str(o.n),
        f"{o.mean:.1f}",
        f"{o.median:.0f}",
        f"{o.p10:.0f}",
        f"{o.p90:.0f}",
        "",
        "",
        "",
        style="bold",
    )
    console.print(figures)

    topics = Table(title="Texts per topic (keyword lexicon) and skew vs all labels", title_justify="left")
    topics.add_column("topic")
    for label in report.topics:
        topics.add_column(label, justify="right")
    for topic in TOPICS:
        topics.add_row(
            topic,
            *(
                f"{report.topics[label][topic]} ×{report.topic_skew(label, topic):.2f}"
                for label in report.topics
            ),
        )
    topics.add_row("(no topic)", *(str(report.untopical[label]) for label in report.topics), style="dim")
    console.print(topics)

    markers = Table(
        title="Texts using each marker per label, and the label's share of the marker", title_justify="left"
    )
    markers.add_column("marker")
    markers.add_column("texts", justify="right")
    for label in report.counts:
        markers.add_column(label, justify="right")
    for name in report.markers:
        markers.add_row(
            escape(name),
            str(report.marker_texts(name)),
            *(
                f"{report.markers[name][label]} {report.marker_share(name, label):.0%}"
                for label in report.counts
            ),
        )
    console.print(markers)

    for title, pairs in (
        ("Texts in two labels", report.cross_label),
        ("Exact duplicates", report.exact_duplicates),
        ("Near duplicates", report.near_duplicates),
    ):
        if pairs:
            console.print(_pair_table(title, pairs, max_pairs))
    if report.out_of_range:
        console.print(f"[bold]Out of length range ({len(report.out_of_range)}):[/bold]")
        for row in report.out_of_range[:max_pairs]:
            console.print(f"  {Path(row.source).name}:{row.line} ({len(row.text)} chars) {row.text}")

    gates = Table(title="Gates", title_justify="left")
    for column in ("gate", "result", "detail"):
        gates.add_column(column)
    for gate in report.gates:
        gates.add_row(gate.name, "[green]PASS[/green]" if gate.passed else "[red]FAIL[/red]", gate.detail)
    console.print(gates)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 when every gate passes, 1 when a gate fails, 2 on unreadable input."""
    parser = argparse.ArgumentParser(
        prog="python -m model_export.corpus_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("files", nargs="+", type=Path, help="TSV files: label<TAB>text, optional header")
    defaults = Config()
    parser.add_argument("--near-threshold", type=float, default=defaults.near_threshold)
    parser.add_argument("--length-tolerance", type=float, default=defaults.length_tolerance)
    parser.add_argument("--min-distinct2", type=float, default=defaults.min_distinct2)
    parser.add_argument("--min-topic-texts", type=int, default=defaults.min_topic_texts)
    parser.add_argument("--topic-coverage", type=float, default=defaults.topic_coverage)
    parser.add_argument("--topic-skew", type=float, default=defaults.topic_skew)
    parser.add_argument("--marker-min-texts", type=int, default=defaults.marker_min_texts)
    parser.add_argument("--marker-min-labels", type=int, default=defaults.marker_min_labels)
    parser.add_argument("--marker-label-texts", type=int, default=defaults.marker_label_texts)
    parser.add_argument("--marker-max-share", type=float, default=defaults.marker_max_share)
    parser.add_argument("--max-pairs", type=int, default=15, help="how many worst pairs to print")
    parser.add_argument("--mixed", type=Path, help="a soft-labelled TSV of two-feeling texts to gate too")
    args = parser.parse_args(argv)
    console, errors = Console(), Console(stderr=True, soft_wrap=True)
    try:
        rows = load_tsv(args.files)
    except CorpusError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    if not rows:
        errors.print("[red]error:[/red] no texts in the given files")
        return 2
    config = Config(
        near_threshold=args.near_threshold,
        length_tolerance=args.length_tolerance,
        min_distinct2=args.min_distinct2,
        min_topic_texts=args.min_topic_texts,
        topic_coverage=args.topic_coverage,
        topic_skew=args.topic_skew,
        marker_min_texts=args.marker_min_texts,
        marker_min_labels=args.marker_min_labels,
        marker_label_texts=args.marker_label_texts,
        marker_max_share=args.marker_max_share,
    )
    report = analyse(rows, config)
    print_report(report, console, args.max_pairs)
    passed = report.passed
    if args.mixed:
        try:
            mixed = analyse_mixed(load_mixed(args.mixed), rows)
        except CorpusError as exc:
            errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            return 2
        table = Table(title=f"mixed feelings: {args.mixed}", title_justify="left")
        for column in ("gate", "result", "detail"):
            table.add_column(column)
        for gate in mixed.gates:
            table.add_row(gate.name, "pass" if gate.passed else "FAIL", escape(gate.detail))
        console.print(table)
        console.print("texts per pair: " + ", ".join(f"{p} {n}" for p, n in sorted(mixed.pairs.items())))
        passed = passed and mixed.passed
    console.print("[green]all gates pass[/green]" if passed else "[red]quality gates failed[/red]")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
