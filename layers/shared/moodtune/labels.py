"""The seven emotion labels: their order (the model's output index), Korean names and dataset spellings.

This module is the one source of truth for labels; everything else imports from here.
"""

from __future__ import annotations

import unicodedata

LABELS: tuple[str, ...] = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral")
NUM_LABELS = len(LABELS)
LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}

KOREAN: dict[str, str] = {
    "joy": "기쁨",
    "sadness": "슬픔",
    "anger": "분노",
    "fear": "공포",
    "surprise": "놀람",
    "disgust": "혐오",
    "neutral": "중립",
}

# Every spelling found in the AI-Hub emotion datasets (and common English variants) -> canonical label.
_ALIASES: dict[str, str] = {
    **{label: label for label in LABELS},
    **{korean: label for label, korean in KOREAN.items()},
    "행복": "joy",
    "happiness": "joy",
    "happy": "joy",
    "sad": "sadness",
    "angry": "anger",
    "불안": "fear",
    "anxiety": "fear",
    "surprised": "surprise",
}


def canonical_label(raw: str) -> str | None:
    """Map a dataset's label spelling to one of LABELS, or None when it is not a known spelling."""
    key = unicodedata.normalize("NFC", str(raw)).strip().lower()
    return _ALIASES.get(key)
