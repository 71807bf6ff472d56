"""Text normalisation shared by training, export and serving, so the model sees the same text everywhere."""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
# Zero-width characters that pasted text often carries; they split words for the tokenizer.
ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff"
_ZERO_WIDTH = dict.fromkeys(map(ord, ZERO_WIDTH_CHARS))


def normalize_text(s: str) -> str:
    """NFC-normalise, drop zero-width characters, collapse whitespace runs to one space and trim.

    NFC, never NFKC: NFKC turns compatibility jamo (ㅋ, ㅠ) into conjoining jamo, which breaks the
    tokenizer's ㅋㅋ/ㅠㅠ tokens.
    """
    text = unicodedata.normalize("NFC", s).translate(_ZERO_WIDTH)
    return _WHITESPACE.sub(" ", text).strip()
