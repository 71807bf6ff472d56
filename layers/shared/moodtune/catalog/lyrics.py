"""Lyrics rules: raw lyrics -> clean lines -> chunks of N lines; chunk distributions -> one song vector.

No model here: ``moodtune.catalog.ingest`` classifies the chunks (many songs at once, in length-sorted
batches) and calls ``average_chunks``. The rules follow the original system: 4 lines make one chunk
and a song's vector is the mean of its chunks' distributions, which makes it comparable with a text's
distribution from the same model.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from moodtune.labels import NUM_LABELS

LINES_PER_CHUNK = 4
BATCH_SIZE = 32
MAX_REPEATS = 2

Weighting = Literal["mean", "length"]
WEIGHTINGS: tuple[str, ...] = ("mean", "length")

_WHITESPACE = re.compile(r"\s+")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# "[Chorus]", "[Verse 1: 누구]", "[후렴]" at the start of a line: always a marker, never sung.
_BRACKET_MARKER = re.compile(r"^[\[【][^\[\]【】]{0,40}[\]】]\s*")
_SECTION_WORDS = (
    r"후렴|전주|간주|후주|브릿지|브리지|도입|반복|랩|"
    r"verse|chorus|pre-?chorus|post-?chorus|hook|bridge|intro|outro|refrain|interlude|rap|repeat"
)
# "(후렴)", "(Chorus 2)", "(x2)", "(2절)", "(반복)" at the start of a line: parentheses only when the words
# name a section, so a sung aside such as "(사랑해)" stays. Stripped like a bracket marker, so
# "(후렴) 가사" keeps "가사" as "[Hook] 가사" does.
_PAREN_MARKER = re.compile(
    rf"^[\(（]\s*(?:(?:{_SECTION_WORDS})\b[^()（）]{{0,30}}|[x×]\s*\d+|\d+\s*(?:절|번)(?:\s*반복)?)\s*[\)）]\s*",
    re.IGNORECASE,
)
# "Chorus:", "후렴 2" alone on a line.
_LABEL_LINE = re.compile(rf"^(?:{_SECTION_WORDS})\s*\d*\s*:?$", re.IGNORECASE)
# An English word: ASCII letters with inner apostrophes or hyphens (don't, self-made).
_ENGLISH_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")


@dataclass(frozen=True)
class LyricsOptions:
    """How lyrics become chunks and chunks become a song vector.

    ``lines_per_chunk``: lines per chunk (the original's rule: 4). ``max_repeats``: a run of identical
    consecutive lines is cut to this many (None keeps every repeat). ``filter_unknown_english``: drop
    English words the tokenizer does not know (it would read them as [UNK]). ``weighting``: "mean"
    averages the chunks equally (the original), "length" weights each chunk by the tokens the model saw.
    """

    lines_per_chunk: int = LINES_PER_CHUNK
    max_repeats: int | None = MAX_REPEATS
    filter_unknown_english: bool = False
    weighting: Weighting = "mean"

    def __post_init__(self) -> None:
        if self.lines_per_chunk < 1:
            raise ValueError(f"lines_per_chunk must be at least 1, got {self.lines_per_chunk}")
        if self.max_repeats is not None and self.max_repeats < 1:
            raise ValueError(f"max_repeats must be at least 1 or None, got {self.max_repeats}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")

    def fingerprint(self) -> dict[str, Any]:
        """The options as plain values: part of a song's content hash, so new rules mean a re-score."""
        return {
            "lines_per_chunk": self.lines_per_chunk,
            "max_repeats": self.max_repeats,
            "filter_unknown_english": self.filter_unknown_english,
            "weighting": self.weighting,
        }


@dataclass(frozen=True)
class PreparedLyrics:
    """A song's chunks, and how many unknown English words the filter dropped from them."""

    chunks: tuple[str, ...]
    dropped_words: int = 0


def normalize_line(line: str) -> str:
    """NFC (never NFKC: it breaks ㅋ/ㅠ tokens), no zero-width characters, single spaces, trimmed."""
    line = unicodedata.normalize("NFC", line).translate(_ZERO_WIDTH)
    return _WHITESPACE.sub(" ", line).strip()


def strip_section_marker(line: str) -> str:
    """The line without its leading section markers ("[Hook]", "(후렴)", both in a row); "" when the
    whole line is markers or a label such as "Chorus:"."""
    while True:
        stripped = _PAREN_MARKER.sub("", _BRACKET_MARKER.sub("", line)).strip()
        if stripped == line:
            break
        line = stripped
    return "" if _LABEL_LINE.match(line) else line


def filter_unknown_words(line: str, is_known: Callable[[str], bool]) -> tuple[str, int]:
    """Drop the English words ``is_known`` rejects; returns the line and how many words were dropped."""
    dropped = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal dropped
        if is_known(match.group(0)):
            return match.group(0)
        dropped += 1
        return ""

    kept = _ENGLISH_WORD.sub(replace, line)
    return (_WHITESPACE.sub(" ", kept).strip() if dropped else line), dropped


def collapse_repeats(lines: Iterable[str], max_repeats: int | None) -> list[str]:
    """Cut every run of identical consecutive lines to ``max_repeats`` lines (None: keep all)."""
    out: list[str] = []
    run = 0
    for line in lines:
        run = run + 1 if out and out[-1] == line else 1
        if max_repeats is None or run <= max_repeats:
            out.append(line)
    return out


def clean_lines(
    lyrics: str,
    options: LyricsOptions = LyricsOptions(),
    is_known: Callable[[str], bool] | None = None,
) -> tuple[list[str], int]:
    """Normalised lyric lines without section markers, blank lines or excess repeats; plus dropped words.

    ``is_known`` is required when ``options.filter_unknown_english`` is on.
    """
    if options.filter_unknown_english and is_known is None:
        raise ValueError("filter_unknown_english needs is_known (the tokenizer's vocabulary check)")
    lines: list[str] = []
    dropped = 0
    for raw in lyrics.splitlines():
        line = strip_section_marker(normalize_line(raw))
        if line and options.filter_unknown_english and is_known is not None:
            line, n = filter_unknown_words(line, is_known)
            dropped += n
        if line:
            lines.append(line)
    return collapse_repeats(lines, options.max_repeats), dropped


def chunk_lines(lines: Sequence[str], lines_per_chunk: int = LINES_PER_CHUNK) -> list[str]:
    """Consecutive groups of ``lines_per_chunk`` lines joined by a space (the last group may be shorter)."""
    if lines_per_chunk < 1:
        raise ValueError(f"lines_per_chunk must be at least 1, got {lines_per_chunk}")
    return [" ".join(lines[i : i + lines_per_chunk]) for i in range(0, len(lines), lines_per_chunk)]


def prepare_lyrics(
    lyrics: str,
    options: LyricsOptions = LyricsOptions(),
    is_known: Callable[[str], bool] | None = None,
) -> PreparedLyrics:
    """Clean the lyrics and cut them into chunks; no chunks when no lyric line is left."""
    lines, dropped = clean_lines(lyrics, options, is_known)
    return PreparedLyrics(tuple(chunk_lines(lines, options.lines_per_chunk)), dropped)


def chunk_lyrics(lyrics: str, lines_per_chunk: int = LINES_PER_CHUNK) -> list[str]:
    """Chunks of ``lines_per_chunk`` clean lines with the default rules (the last may be shorter)."""
    return list(prepare_lyrics(lyrics, LyricsOptions(lines_per_chunk=lines_per_chunk)).chunks)


def average_chunks(probs: np.ndarray, weights: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """One song vector from its chunks' distributions [k, 7]: the mean, or the ``weights``-weighted mean.

    The result is a distribution again (it sums to 1 when the rows do); float32 [7].
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != NUM_LABELS or probs.shape[0] == 0:
        raise ValueError(f"expected chunk probabilities of shape [k>0, {NUM_LABELS}], got {probs.shape}")
    if weights is None:
        return probs.mean(axis=0).astype(np.float32)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (probs.shape[0],) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per chunk, not all zero")
    return (w @ probs / w.sum()).astype(np.float32)
