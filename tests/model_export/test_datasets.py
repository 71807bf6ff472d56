"""Dataset readers on small files that each test writes in the real formats."""

import json
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import Workbook

from model_export.datasets import (
    Example,
    balance,
    deduplicate,
    detect_format,
    load_datasets,
    load_file,
    read_plain,
    repair_label,
    stratified_folds,
    stratified_split,
)
from model_export.errors import ModelExportError
from moodtune.labels import LABELS


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_single_turn_xlsx(tmp_path):
    path = write_xlsx(
        tmp_path / "single.xlsx",
        [
            ["Sentence", "Emotion", "Unnamed: 2"],
            ["언니 동생으로 부르는게 맞는 일인가요..??", "공포", None],
            ["기분 최고야 ㅋㅋ", "행복", None],
            ["  ", "슬픔", None],
            ["뭐야 이거", "기타", None],
        ],
    )
    assert detect_format(path) == "single-turn"
    examples, report = load_file(path)
    assert examples == [
        Example("언니 동생으로 부르는게 맞는 일인가요..??", "fear"),
        Example("기분 최고야 ㅋㅋ", "joy"),
    ]
    assert report.mapped[("공포", "fear")] == 1 and report.mapped[("행복", "joy")] == 1
    assert report.dropped["empty text"] == 1
    assert report.dropped["unknown label '기타'"] == 1
    assert "dropped: " in report.summary()


def test_continuous_xlsx_header_below_title_and_noisy_labels(tmp_path):
    path = write_xlsx(
        tmp_path / "continuous.xlsx",
        [
            [None, None, None, None],
            ["dialog #", "발화", "감정", "Unnamed"],
            ["S0001", "아 진짜 짜증나게 하네", "분ㄴ", None],
            [None, "그냥 그렇지 뭐", "ㅈ중립", None],
            [None, "무서워 죽겠어", "공포", None],
            [None, "어쩌라고", "ㄴ", None],
        ],
    )
    assert detect_format(path) == "continuous"
    examples, report = load_file(path)
    assert [e.label for e in examples] == ["anger", "neutral", "fear"]
    assert report.repaired == Counter({("분ㄴ", "anger"): 1, ("ㅈ중립", "neutral"): 1})
    assert report.dropped["unknown label 'ㄴ'"] == 1
    with pytest.raises(ModelExportError, match=r"continuous\.xlsx: labels that are not one of .*'ㄴ'"):
        load_file(path, strict_labels=True)


def test_speech_csv_in_cp949(tmp_path):
    """Without annotator columns the speech set's 상황 is the label (and the report says so)."""
    path = tmp_path / "speech.csv"
    rows = [
        "wav_id,발화문,상황",
        "a1,오늘 시험 망쳐서 너무 속상해,sadness",
        "a2,와 진짜 대박이다,happiness",
        "a3,저리 치워 더러워,disgust",
        "a4,왜 내 말을 안 들어,angry",
        "a5,엄마가 아프대,sad",
    ]
    path.write_bytes("\r\n".join(rows).encode("cp949"))
    assert detect_format(path) == "speech"
    examples, report = load_file(path)
    assert [e.label for e in examples] == ["sadness", "joy", "disgust", "anger", "sadness"]
    assert examples[0].text == "오늘 시험 망쳐서 너무 속상해"
    assert report.mapped[("happiness", "joy")] == 1
    assert report.votes["no annotator columns: 상황 used"] == 5
    assert all(e.soft is None for e in examples)


SPEECH_HEADER = (
    "wav_id,발화문,상황,1번 감정,1번 감정세기,2번 감정,2번 감정세기,3번 감정,3번 감정세기,"
    "4번 감정,4번감정세기,5번 감정,5번 감정세기,나이,성별"
)


def test_speech_set_five_annotators_become_a_vote_distribution(tmp_path):
    """The real header (4번감정세기 without a space), cp949: each annotator is one vote, intensities
    do not weight them (neutral always has 0), empty cells use the votes given, no votes -> 상황."""
    path = tmp_path / "speech.csv"
    rows = [
        SPEECH_HEADER,
        "b1,합격했는데 친구는 떨어져서 마음이 복잡해,happiness,"
        "Happiness,2,Happiness,1,Sadness,2,Happiness,1,Sadness,1,30,F",
        "b2,내일 발표라니 떨린다,fear,Fear,2,Fear,1,Fear,1,Fear,2,Fear,1,20,M",
        "b3,그냥 집에 가는 중,neutral,Neutral,0,Neutral,0,Sadness,1,Neutral,0,Neutral,0,40,F",
        "b4,와 이게 뭐야 깜짝이야,surprise,Surprise,2,,,Fear,1,,,Surprise,1,20,F",
        "b5,진짜 어이없네,angry,,,,,,,,,,,30,M",
        "b6,반반이네,sadness,Happiness,1,Sadness,1,,,,,,,30,M",
    ]
    path.write_bytes("\r\n".join(rows).encode("cp949"))
    assert detect_format(path) == "speech"
    examples, report = load_file(path)
    by_text = {e.text: e for e in examples}
    mixed = by_text["합격했는데 친구는 떨어져서 마음이 복잡해"]
    assert mixed.label == "joy"
    assert mixed.soft == pytest.approx((0.6, 0.4, 0, 0, 0, 0, 0))
    assert by_text["내일 발표라니 떨린다"].soft is None  # five votes for one label: one-hot
    assert by_text["내일 발표라니 떨린다"].label == "fear"
    neutral = by_text["그냥 집에 가는 중"]
    assert neutral.label == "neutral" and neutral.soft == pytest.approx((0, 0.2, 0, 0, 0, 0, 0.8))
    partial = by_text["와 이게 뭐야 깜짝이야"]
    assert partial.soft == pytest.approx((0, 0, 0, 1 / 3, 2 / 3, 0, 0))
    assert by_text["진짜 어이없네"].label == "anger" and by_text["진짜 어이없네"].soft is None
    assert by_text["반반이네"].label == "sadness"  # a tie is broken by 상황
    assert report.votes["rows with some annotator cells empty (the votes given were used)"] == 2
    assert report.votes["no annotator vote: 상황 used"] == 1
    assert report.votes["rows read from annotator votes"] == 5
    assert report.soft == 4
    assert "annotator votes" in report.summary()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("plain.csv", "text,label\n좋아 죽겠어,joy\n무서워,공포\n"),
        ("plain.tsv", "label\ttext\njoy\t좋아 죽겠어\n공포\t무서워\n"),
        (
            "plain.jsonl",
            json.dumps({"text": "좋아 죽겠어", "label": "joy"}, ensure_ascii=False)
            + "\n\n"
            + json.dumps({"text": "무서워", "label": "공포"}, ensure_ascii=False)
            + "\n",
        ),
    ],
)
def test_plain_formats(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert detect_format(path) == "plain"
    assert read_plain(path) == [Example("좋아 죽겠어", "joy"), Example("무서워", "fear")]


def test_text_is_nfc_normalised(tmp_path):
    import unicodedata

    path = tmp_path / "nfd.tsv"
    path.write_text(
        "label\ttext\njoy\t" + unicodedata.normalize("NFD", "행복해  ㅋㅋ") + "\n", encoding="utf-8"
    )
    assert read_plain(path)[0].text == "행복해 ㅋㅋ"


def test_plain_unknown_label_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("label\ttext\n기쁨\t좋다\nhappyish\t음\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"bad\.tsv: labels that are not one of .*'happyish' ×1"):
        read_plain(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelExportError, match=r"nope\.tsv: no such file"):
        load_file(tmp_path / "nope.tsv")


def test_file_without_text_and_label_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"other\.csv: no header row with a text column"):
        load_file(path)


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "좋아", "label": "joy"}\n{oops\n', encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"rows\.jsonl:2: not valid JSON"):
        load_file(path)


def test_not_an_xlsx(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelExportError, match=r"broken\.xlsx: not a readable \.xlsx"):
        load_file(path)


def test_only_empty_texts_is_an_error(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("label\ttext\njoy\t \nfear\t\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"empty\.tsv: no usable rows"):
        load_file(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"x")
    with pytest.raises(ModelExportError, match="unknown file type"):
        load_file(path)


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("분ㄴ", "anger"),
        ("ㅈ중립", "neutral"),
        ("중립ㅋ", "neutral"),
        ("놀", "surprise"),
        ("기타", None),
        ("ㄴ", None),
    ],
)
def test_repair_label(raw, label):
    assert repair_label(raw) == label


def test_dedup_keeps_one_copy_and_drops_conflicts(tmp_path):
    a = tmp_path / "a.tsv"
    b = tmp_path / "b.tsv"
    a.write_text("label\ttext\njoy\t좋아\nanger\t짜증나\n", encoding="utf-8")
    b.write_text("label\ttext\njoy\t좋아\nfear\t짜증나\nsadness\t슬퍼\n", encoding="utf-8")
    examples, report = load_datasets([a, b])
    assert examples == [Example("좋아", "joy"), Example("슬퍼", "sadness")]
    assert report.dropped["duplicate text"] == 2
    assert report.dropped["text with conflicting labels"] == 1
    assert deduplicate([Example("x", "joy"), Example("x", "joy")]) == [Example("x", "joy")]


def _examples(per_label: dict[str, int]) -> list[Example]:
    return [Example(f"{label} 문장 {i}", label) for label, n in per_label.items() for i in range(n)]


def test_balance_samples_n_per_label_and_reports_short_labels():
    examples = _examples({label: 30 for label in LABELS} | {"fear": 12})
    balanced, messages = balance(examples, 20, seed=0)
    counts = Counter(e.label for e in balanced)
    assert counts["fear"] == 12
    assert all(counts[label] == 20 for label in LABELS if label != "fear")
    assert messages == [
        "fear: only 12 examples, fewer than the 20 asked; kept all "
        "(add data for it, or train with --class-weights)."
    ]
    assert balance(examples, 20, seed=0)[0] == balanced  # seeded


def test_stratified_split_keeps_label_proportions():
    examples = _examples({label: 40 for label in LABELS})
    train, val, test = stratified_split(examples, 0.1, 0.2, seed=1)
    assert (len(train), len(val), len(test)) == (196, 28, 56)
    assert set(Counter(e.label for e in test).values()) == {8}
    assert set(Counter(e.label for e in val).values()) == {4}
    assert not {e.text for e in train} & {e.text for e in test}


def test_stratified_folds():
    examples = _examples({label: 10 for label in LABELS})
    folds = stratified_folds(examples, 5, seed=0)
    assert len(folds) == 5
    seen = []
    for train, val in folds:
        assert len(val) == 14 and len(train) == 56
        assert set(Counter(e.label for e in val).values()) == {2}
        seen += [e.text for e in val]
    assert sorted(seen) == sorted(e.text for e in examples)  # every example validated exactly once


def test_too_few_examples_for_folds():
    with pytest.raises(
        ModelExportError, match="5-fold cross-validation needs at least 5 examples of each label"
    ):
        stratified_folds(_examples({label: 3 for label in LABELS}), 5, seed=0)


def test_speech_csv_detected_when_4_kb_cuts_a_korean_character(tmp_path):
    """The header decides the format; a fixed-size prefix of a cp949 file can end inside a character."""
    header = "wav_id,발화문,상황\r\n".encode("cp949")
    body = b"".join(f"a{i},오늘은 정말 좋은 하루였어 {i},happiness\r\n".encode("cp949") for i in range(300))
    data = header + body
    # Pad the first row so that byte 4096 is the second byte of a two-byte character.
    for pad in range(0, 64):
        candidate = header + b"x" * pad + body
        try:
            candidate[:4096].decode("cp949")
        except UnicodeDecodeError:
            data = candidate
            break
    with pytest.raises(UnicodeDecodeError):
        data[:4096].decode("cp949")  # the case that used to make the file look "plain"
    path = tmp_path / "speech.csv"
    path.write_bytes(data)
    assert len(data) > 4096
    assert detect_format(path) == "speech"
    examples, _ = load_file(path)
    assert len(examples) == 300 and {e.label for e in examples} == {"joy"}


@pytest.mark.parametrize("fmt", ["single-turn", "continuous"])
def test_corrupt_xlsx_with_explicit_format(tmp_path, fmt):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelExportError, match=r"broken\.xlsx: not a readable \.xlsx workbook"):
        load_file(path, fmt)


def test_csv_that_the_csv_module_rejects_names_the_line(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('text,label\n좋아,joy\n"열린 따옴표' + "가" * 140_000 + ",joy\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=r"quoted\.csv:\d+: not readable as CSV \(field larger"):
        load_file(path)


def test_split_of_too_few_examples_is_a_clear_error():
    with pytest.raises(
        ModelExportError, match="21 examples are too few for a stratified split with 7 labels"
    ):
        stratified_split(_examples({label: 3 for label in LABELS}), 0.1, 0.1, seed=0)


@pytest.mark.parametrize("per_label", range(3, 13))
@pytest.mark.parametrize("sizes", [(0.1, 0.1), (0.2, 0.3), (0.05, 0.4)])
def test_split_size_check_agrees_with_scikit_learn(per_label, sizes):
    """Either the split works or the size check refuses it; scikit-learn's own error never shows."""
    examples = _examples({label: per_label for label in LABELS})
    try:
        train, val, test = stratified_split(examples, *sizes, seed=0)
    except ModelExportError as exc:
        assert "too few for a stratified split" in str(exc)
    else:
        for part in (train, val, test):
            assert {e.label for e in part} == set(LABELS)


def test_plain_soft_labels(tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_text(
        "label\ttext\njoy:0.6,fear:0.4\t붙어서 좋은데 첫 출근 무섭다\n"
        "기쁨:0.5,슬픔:0.5\t졸업이라 좋은데 허전해\n"
        "joy\t그냥 좋아\nfear:1.0\t무서워 죽겠어\n",
        encoding="utf-8",
    )
    examples, report = load_file(path)
    assert [e.label for e in examples] == ["joy", "joy", "joy", "fear"]
    assert examples[0].soft == (0.6, 0, 0, 0.4, 0, 0, 0)
    assert examples[0].stratum == "joy+fear"
    assert examples[1].soft == (0.5, 0.5, 0, 0, 0, 0, 0) and examples[1].label == "joy"  # ties: label order
    assert examples[2].soft is None and examples[2].target == (1, 0, 0, 0, 0, 0, 0)
    assert examples[3].soft is None  # one label at 1.0 is a hard label
    assert report.soft == 2


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("joy:0.6,fear", r"'fear' is not label:probability"),
        ("joy:0.6,hope:0.4", r"unknown emotion 'hope'"),
        ("joy:0.6,fear:0.3", r"sum to 0\.900, not 1"),
        ("joy:0.6,fear:x", r"'x' is not a number"),
        ("joy:1.5,fear:-0.5", r"not a probability"),
        ("joy:0.5,기쁨:0.5", r"joy is given twice"),
    ],
)
def test_bad_soft_labels_name_the_file_and_line(tmp_path, label, why):
    path = tmp_path / "bad.tsv"
    path.write_text(f"label\ttext\njoy\t좋다\n{label}\t이건 섞였어\n", encoding="utf-8")
    with pytest.raises(ModelExportError, match=rf"bad\.tsv:3: soft label .*{why}"):
        load_file(path)


def test_soft_and_hard_copies_of_one_text_conflict():
    a = Example("같은 글", "joy")
    b = Example("같은 글", "joy", soft=(0.6, 0, 0, 0.4, 0, 0, 0))
    assert deduplicate([a, Example("같은 글", "joy")]) == [a]
    assert deduplicate([a, b]) == []


def test_splits_spread_soft_rows_by_their_pair():
    hard = [Example(f"글{label}{i}", label) for label in LABELS for i in range(30)]
    soft = [Example(f"섞인{i}", "joy", soft=(0.5, 0.5, 0, 0, 0, 0, 0)) for i in range(30)]
    rare = [Example(f"드문{i}", "anger", soft=(0, 0, 0.6, 0, 0, 0.4, 0)) for i in range(2)]
    train, val, test = stratified_split(hard + soft + rare, 0.1, 0.1, seed=0)
    for part, n in ((train, 24), (val, 3), (test, 3)):
        assert sum(e.stratum == "joy+sadness" for e in part) == n
    assert sum(e.stratum == "anger+disgust" for e in train + val + test) == 2  # folded into anger
