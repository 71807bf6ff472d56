"""What the model can read: Korean text, Korean chat marks, and emoji that carry a plain feeling.

The classifier was trained on Korean. Text without any Hangul (English, Japanese, digits, a URL,
keyboard mashing) gives it nothing but unknown tokens, and it answered such text with a confident
label; so it is refused with ``UnreadableText`` (the API's 422) instead of being guessed at.

Emoji are part of Korean chat, but the model's vocabulary holds few of them and a lone emoji is too
short for it to read. A text made only of emoji (with spaces and punctuation) is read through
:data:`EMOJI_FEELINGS`, a small lexicon written for this project: each emoji votes for the feelings
it plainly shows, and the distribution keeps a uniform share (:data:`EMOJI_UNIFORM_SHARE`) because an
emoji alone says less than a sentence. Emoji inside Korean text are left to the model, which saw
them in context in training.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from moodtune.labels import LABEL_INDEX, NUM_LABELS

HANGUL_SYLLABLES = re.compile("[\uac00-\ud7a3]")
# Compatibility jamo that Korean chat uses as marks of feeling: ㅋㅋ, ㅎㅎ (laughing), ㅠㅠ/ㅜㅜ
# (crying), ㄷㄷ (trembling), ㅡㅡ (annoyed). Other lone jamo (ㅁㄴㅇㄹ) are keyboard mashing.
CHAT_MARKS = re.compile("ㅋ{2,}|ㅎ{2,}|[ㅠㅜ]{1,}|ㄷ{2,}|ㅡ{2,}")

# emoji -> {label: weight}. Written for moodtune from the emoji's common use in Korean chat;
# 😭 and 😂 lean on two feelings each because both are used for tears of laughter and of sorrow.
EMOJI_FEELINGS: dict[str, dict[str, float]] = {
    "🙂": {"joy": 1.0},
    "😊": {"joy": 1.0},
    "😀": {"joy": 1.0},
    "😃": {"joy": 1.0},
    "😄": {"joy": 1.0},
    "😁": {"joy": 1.0},
    "😆": {"joy": 1.0},
    "🥰": {"joy": 1.0},
    "😍": {"joy": 1.0},
    "🤗": {"joy": 1.0},
    "😻": {"joy": 1.0},
    "🥳": {"joy": 0.8, "surprise": 0.2},
    "🎉": {"joy": 0.8, "surprise": 0.2},
    "👍": {"joy": 1.0},
    "❤️": {"joy": 1.0},
    "❤": {"joy": 1.0},
    "💕": {"joy": 1.0},
    "😂": {"joy": 0.8, "sadness": 0.2},
    "🤣": {"joy": 1.0},
    "😢": {"sadness": 1.0},
    "😭": {"sadness": 0.8, "joy": 0.2},
    "😞": {"sadness": 1.0},
    "😔": {"sadness": 1.0},
    "😿": {"sadness": 1.0},
    "💔": {"sadness": 1.0},
    "🥲": {"sadness": 0.6, "joy": 0.4},
    "😥": {"sadness": 0.6, "fear": 0.4},
    "😡": {"anger": 1.0},
    "😠": {"anger": 1.0},
    "🤬": {"anger": 1.0},
    "💢": {"anger": 1.0},
    "😤": {"anger": 1.0},
    "😨": {"fear": 1.0},
    "😰": {"fear": 1.0},
    "😱": {"fear": 0.6, "surprise": 0.4},
    "😖": {"fear": 0.5, "sadness": 0.5},
    "😬": {"fear": 1.0},
    "😮": {"surprise": 1.0},
    "😲": {"surprise": 1.0},
    "😯": {"surprise": 1.0},
    "🤯": {"surprise": 1.0},
    "😳": {"surprise": 1.0},
    "🙀": {"surprise": 0.6, "fear": 0.4},
    "🤢": {"disgust": 1.0},
    "🤮": {"disgust": 1.0},
    "😒": {"disgust": 0.6, "anger": 0.4},
    "🙄": {"disgust": 0.6, "anger": 0.4},
    "😐": {"neutral": 1.0},
    "😶": {"neutral": 1.0},
    "🙂‍↔️": {"neutral": 1.0},
}
EMOJI_UNIFORM_SHARE = 0.3
_EMOJI_KEYS = sorted(EMOJI_FEELINGS, key=len, reverse=True)  # longest first: sequences before parts


class UnreadableText(ValueError):
    """A text with nothing the model can read (no Hangul, no Korean chat mark, no known emoji)."""

    message = (
        "moodtune reads Korean text, and this text has no Korean (Hangul) in it; write how you feel "
        "in Korean (한국어로 적어 주세요)"
    )

    def __init__(self) -> None:
        super().__init__(self.message)


@dataclass(frozen=True)
class Reading:
    """How a text is read: by the model, or (emoji only) through the lexicon with these scores."""

    by: str  # "model" or "emoji"
    scores: tuple[float, ...] | None = None


def _emoji_votes(text: str) -> tuple[list[str], str]:
    """The lexicon's emoji in ``text`` (in order) and what is left once they are removed."""
    found: list[str] = []
    rest = text
    for key in _EMOJI_KEYS:
        count = rest.count(key)
        if count:
            found += [key] * count
            rest = rest.replace(key, " ")
    return found, rest


def _is_filler(text: str) -> bool:
    """Only spaces, punctuation, symbols, variation selectors and joiners are left."""
    return all(unicodedata.category(ch)[0] in "ZPS" or ch in "\ufe0f\u200d" for ch in text)


def read(text: str) -> Reading:
    """How ``text`` (already normalised) is read; ``UnreadableText`` when nothing in it can be."""
    if HANGUL_SYLLABLES.search(text) or CHAT_MARKS.search(text):
        return Reading("model")
    found, rest = _emoji_votes(text)
    if found and _is_filler(rest):
        votes = [0.0] * NUM_LABELS
        for emoji in found:
            for label, weight in EMOJI_FEELINGS[emoji].items():
                votes[LABEL_INDEX[label]] += weight / len(found)
        share = EMOJI_UNIFORM_SHARE
        return Reading("emoji", tuple((1 - share) * v + share / NUM_LABELS for v in votes))
    raise UnreadableText()
