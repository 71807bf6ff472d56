"""What the model can read: Korean, chat marks and emoji are read; text without Korean is refused."""

from __future__ import annotations

import pytest

from moodtune.emotion.readable import EMOJI_UNIFORM_SHARE, UnreadableText, read
from moodtune.labels import LABELS


@pytest.mark.parametrize(
    "text", ["오늘 좋았어", "ㅋㅋㅋㅋ", "ㅠㅠ", "ㄷㄷ", "오늘 진짜 happy 했어", "헐 😱", "1등 했다!!"]
)
def test_korean_and_chat_marks_go_to_the_model(text):
    assert read(text).by == "model"


@pytest.mark.parametrize(
    "text",
    [
        "I am so happy today",
        "今日はとても楽しかった",
        "今天我很难过",
        "1234567890",
        "https://example.com/x",
        "asdfasdf",
        "ㅁㄴㅇㄹ",
        "happy 🙂",
        "...",
    ],
)
def test_text_without_korean_is_unreadable(text):
    with pytest.raises(UnreadableText, match="moodtune reads Korean text"):
        read(text)


@pytest.mark.parametrize(
    ("text", "label"),
    [("🙂", "joy"), ("😭", "sadness"), ("😡 😡", "anger"), ("🤢!", "disgust"), ("😱", "fear")],
)
def test_emoji_alone_are_read_through_the_lexicon(text, label):
    reading = read(text)
    assert reading.by == "emoji"
    scores = dict(zip(LABELS, reading.scores, strict=True))
    assert max(scores, key=scores.get) == label
    assert sum(scores.values()) == pytest.approx(1.0)
    assert min(scores.values()) >= EMOJI_UNIFORM_SHARE / len(LABELS) - 1e-12
    assert max(scores.values()) <= 1 - EMOJI_UNIFORM_SHARE + EMOJI_UNIFORM_SHARE / len(LABELS) + 1e-12


def test_two_emoji_share_the_votes():
    scores = read("🙂😢").scores
    assert scores[LABELS.index("joy")] == pytest.approx(scores[LABELS.index("sadness")])
