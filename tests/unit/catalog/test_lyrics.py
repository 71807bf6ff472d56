"""Lyrics rules and averaging against hand-computed examples, and the in-memory scorer."""

import unicodedata

import numpy as np
import pytest

from moodtune.catalog.ingest import score_songs
from moodtune.catalog.lyrics import (
    LyricsOptions,
    average_chunks,
    chunk_lines,
    chunk_lyrics,
    clean_lines,
    collapse_repeats,
    filter_unknown_words,
    normalize_line,
    prepare_lyrics,
    strip_section_marker,
)
from moodtune.emotion.classifier import EmotionClassifier
from moodtune.labels import LABELS


def test_chunks_are_four_non_empty_lines() -> None:
    lyrics = "하나\n둘\n\n셋\n  \n넷\n다섯\n여섯\n"
    assert chunk_lyrics(lyrics) == ["하나 둘 셋 넷", "다섯 여섯"]
    assert chunk_lyrics("\n \n") == []
    assert chunk_lyrics(lyrics, lines_per_chunk=3) == ["하나 둘 셋", "넷 다섯 여섯"]


def test_chunk_lines_keeps_order_and_a_short_last_chunk() -> None:
    lines = [f"l{i}" for i in range(1, 11)]
    assert chunk_lines(lines, 4) == ["l1 l2 l3 l4", "l5 l6 l7 l8", "l9 l10"]
    assert chunk_lines(lines, 5) == ["l1 l2 l3 l4 l5", "l6 l7 l8 l9 l10"]
    assert chunk_lines([], 4) == []
    with pytest.raises(ValueError, match="at least 1"):
        chunk_lines(lines, 0)


def test_lines_are_nfc_never_nfkc() -> None:
    decomposed = unicodedata.normalize("NFD", "한숨 ㅋㅋ ㅠㅠ")
    assert decomposed != "한숨 ㅋㅋ ㅠㅠ"
    # NFC composes 한; compatibility jamo ㅋ/ㅠ stay as they are (NFKC would turn them into ᄏ/ᅲ).
    assert normalize_line("  " + decomposed + "\u200b  ") == "한숨 ㅋㅋ ㅠㅠ"
    assert normalize_line("a \t  b") == "a b"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[Chorus]", ""),
        ("[Verse 1]", ""),
        ("[Verse 2: 서하린]", ""),
        ("[후렴]", ""),
        ("【후렴】", ""),
        ("(후렴)", ""),
        ("(Chorus 2)", ""),
        ("(x2)", ""),
        ("(×3)", ""),
        ("(2절)", ""),
        ("(반복)", ""),
        ("Chorus:", ""),
        ("후렴 2", ""),
        ("[Hook] 다시 한 번 더", "다시 한 번 더"),
        # A leading marker in parentheses goes the same way as one in brackets.
        ("(후렴) 다시 한 번 더", "다시 한 번 더"),
        ("（후렴）다시 한 번 더", "다시 한 번 더"),
        ("(Chorus 2) 또 만나", "또 만나"),
        ("(x2) 나나나", "나나나"),
        ("(2절) 두 번째 이야기", "두 번째 이야기"),
        ("[Verse 1] (후렴) 가사", "가사"),  # markers in a row
        ("(후렴)(x2)", ""),
        ("(사랑해) 너를 불러", "(사랑해) 너를 불러"),  # an aside at the start stays
        ("너를 불러 (후렴)", "너를 불러 (후렴)"),  # only a leading marker is one
        ("(사랑해)", "(사랑해)"),  # a sung aside, not a section name
        ("너를 (정말) 사랑해", "너를 (정말) 사랑해"),
        ("Bridge over the river", "Bridge over the river"),  # a lyric that starts with a section word
    ],
)
def test_section_markers(line: str, expected: str) -> None:
    assert strip_section_marker(line) == expected


def test_leading_markers_in_brackets_and_parentheses_chunk_alike_by_hand() -> None:
    bracketed = "[Hook] 하나\n[Verse] 둘\n셋\n[Chorus] 넷\n다섯"
    parenthesised = "(Hook) 하나\n(후렴) 둘\n셋\n(x2) 넷\n다섯"
    expected = ("하나 둘 셋 넷", "다섯")
    assert prepare_lyrics(bracketed).chunks == expected
    assert prepare_lyrics(parenthesised).chunks == expected
    # A song of markers only, in either form, has no chunk (ingest rejects it; model_switch skips it).
    assert prepare_lyrics("(후렴)\n[Chorus]\n(x2)\n").chunks == ()


def test_collapse_repeats_cuts_runs_of_identical_lines_only() -> None:
    lines = ["나나나", "나나나", "나나나", "나나나", "끝", "나나나", "나나나", "나나나"]
    assert collapse_repeats(lines, 2) == ["나나나", "나나나", "끝", "나나나", "나나나"]
    assert collapse_repeats(lines, 1) == ["나나나", "끝", "나나나"]
    assert collapse_repeats(lines, None) == lines
    # A chorus that comes back after other lines is not a run: it stays.
    assert collapse_repeats(["a", "b", "a", "b"], 1) == ["a", "b", "a", "b"]


def test_clean_and_prepare_a_whole_song_by_hand() -> None:
    lyrics = (
        "[Verse 1]\n"
        "비가 와\n"
        "\n"
        "우산이 없어\n"
        "(후렴)\n"
        "라라라\n"
        "라라라\n"
        "라라라\n"
        "  라라라  \n"
        "집에 갈래\n"
        "[Outro]\n"
        "안녕\n"
    )
    lines, dropped = clean_lines(lyrics, LyricsOptions(max_repeats=2))
    assert lines == ["비가 와", "우산이 없어", "라라라", "라라라", "집에 갈래", "안녕"]
    assert dropped == 0
    prepared = prepare_lyrics(lyrics)  # defaults: 4 lines, at most 2 repeats
    assert prepared.chunks == ("비가 와 우산이 없어 라라라 라라라", "집에 갈래 안녕")
    assert prepare_lyrics(lyrics, LyricsOptions(lines_per_chunk=2, max_repeats=None)).chunks == (
        "비가 와 우산이 없어",
        "라라라 라라라",
        "라라라 라라라",
        "집에 갈래 안녕",
    )
    assert prepare_lyrics("[Chorus]\n(x2)\n\n").chunks == ()


def test_unknown_english_filter_is_off_by_default_and_counts_what_it_drops() -> None:
    known = {"love", "you"}.__contains__
    assert filter_unknown_words("I love you 사랑해 baby", known) == ("love you 사랑해", 2)
    assert filter_unknown_words("don't stop 멈추지 마", known) == ("멈추지 마", 2)
    assert filter_unknown_words("전부 한국어", known) == ("전부 한국어", 0)

    lyrics = "oh baby love\n너만 보여\nyeah yeah\n"
    assert prepare_lyrics(lyrics, is_known=known) == prepare_lyrics(lyrics)  # off: nothing dropped
    assert prepare_lyrics(lyrics).chunks == ("oh baby love 너만 보여 yeah yeah",)
    on = LyricsOptions(filter_unknown_english=True)
    prepared = prepare_lyrics(lyrics, on, is_known=known)
    # "yeah yeah" loses both words, so that line disappears before chunking.
    assert prepared.chunks == ("love 너만 보여",)
    assert prepared.dropped_words == 4
    with pytest.raises(ValueError, match="is_known"):
        prepare_lyrics(lyrics, on)


def test_mean_and_length_weighted_averages_by_hand() -> None:
    probs = np.zeros((3, len(LABELS)), np.float32)
    probs[0, 0] = 1.0  # joy
    probs[1, 1] = 1.0  # sadness
    probs[2, [0, 1]] = 0.5
    mean = average_chunks(probs)
    assert mean.dtype == np.float32
    np.testing.assert_allclose(mean[:2], [0.5, 0.5])
    np.testing.assert_allclose(mean[2:], 0.0)
    # weights 1, 2, 1: joy = (1*1 + 2*0 + 1*0.5) / 4 = 0.375; sadness = (0 + 2 + 0.5) / 4 = 0.625
    weighted = average_chunks(probs, [1, 2, 1])
    np.testing.assert_allclose(weighted[:2], [0.375, 0.625])
    assert weighted.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        average_chunks(probs[:0])
    with pytest.raises(ValueError):
        average_chunks(probs, [1, 2])
    with pytest.raises(ValueError):
        average_chunks(probs, [0, 0, 0])


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        LyricsOptions(lines_per_chunk=0)
    with pytest.raises(ValueError):
        LyricsOptions(max_repeats=0)
    with pytest.raises(ValueError):
        LyricsOptions(weighting="median")  # type: ignore[arg-type]
    assert LyricsOptions().fingerprint() == {
        "lines_per_chunk": 4,
        "max_repeats": 2,
        "filter_unknown_english": False,
        "weighting": "mean",
    }


class _KeywordClassifier:
    """A stand-in classifier: one token per character; all probability on joy if the chunk says 좋아,
    else on sadness. Records the shape of every batch it runs."""

    model_version = "test-000000000000"
    tokenizer = None
    lines_per_chunk = 4  # as a bundle that names no chunking
    take = staticmethod(EmotionClassifier.take)  # the real classifier's batch slicing

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []
        self._texts: dict[int, str] = {}

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        width = max(len(t) for t in texts)
        ids = np.zeros((len(texts), width), np.int64)
        mask = np.zeros((len(texts), width), np.int64)
        for i, text in enumerate(texts):
            ids[i, : len(text)] = [ord(c) for c in text]
            mask[i, : len(text)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def infer(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        ids = encoded["input_ids"]
        self.batches.append(ids.shape)
        out = np.zeros((ids.shape[0], len(LABELS)), np.float32)
        for i, row in enumerate(ids):
            text = "".join(chr(c) for c in row if c)
            out[i, 0 if "좋아" in text else 1] = 1.0
        return out


def test_song_vector_is_the_mean_of_its_chunks_and_empty_songs_are_skipped() -> None:
    songs = [
        {
            "song_id": "a",
            "title": "A",
            "artist": "x",
            "lyrics": "좋아 정말\n좋아 너무\n좋아 오늘\n좋아 내일\n슬퍼",
            "year": 2020,
        },
        {"song_id": "empty", "title": "E", "artist": "x", "lyrics": "[Chorus]\n"},
        {"song_id": "b", "title": "B", "artist": "y", "lyrics": "슬퍼\n울어", "genre": "ballad"},
    ]
    classifier = _KeywordClassifier()
    scored = score_songs(classifier, songs, batch_size=2)
    assert [s.song_id for s in scored] == ["a", "b"]
    a, b = scored
    # a: chunks "좋아 정말 좋아 너무 좋아 오늘 좋아 내일" (joy) and "슬퍼" (sadness) -> 0.5 / 0.5
    assert a.chunks == 2 and a.vector[:2] == pytest.approx((0.5, 0.5)) and a.year == 2020
    assert b.chunks == 1 and b.dominant == "sadness" and b.genre == "ballad"
    # Three chunks of 23, 2 and 5 characters, sorted by length: batches pad to (2, 5) and (1, 23).
    assert classifier.batches == [(2, 5), (1, 23)]
    assert score_songs(classifier, [songs[1]]) == []


def test_real_demo_model_gives_distributions(demo_classifier, test_songs) -> None:
    scored = score_songs(demo_classifier, test_songs[:3])
    assert [s.song_id for s in scored] == ["t01", "t02", "t03"]
    for song in scored:
        assert sum(song.vector) == pytest.approx(1.0, abs=1e-4)
        assert song.chunks >= 1 and song.dominant in LABELS
    # the vector is the mean of the chunks' predictions. Not bit-identical to predicting each chunk
    # alone: INT8 dynamic quantization scales activations per batch, padding included.
    # score_songs cuts lyrics as the bundle asks (the demo bundle: 2 lines a chunk).
    chunks = chunk_lyrics(test_songs[0]["lyrics"], demo_classifier.lines_per_chunk)
    expected = np.mean([demo_classifier.predict([chunk])[0] for chunk in chunks], axis=0)
    np.testing.assert_allclose(scored[0].vector, expected, atol=0.02)
