"""Catalog ingestion: JSONL lines -> validated songs -> chunks -> classified -> averaged -> SongsTable.

The same pipeline runs from the CLI (``moodtune ingest``), in ``make demo`` and in the AWS worker:

1. ``parse_catalog`` checks each line (UTF-8, JSON, fields, lyrics size, duplicate ids) and yields a
   ``CatalogEntry`` or a ``Rejected`` with the line number and field: a bad line never stops the run.
2. ``SongScorer`` cuts every song's lyrics into chunks (``moodtune.catalog.lyrics``), classifies the chunks of
   many songs together in batches sorted by token length (little padding), and averages per song.
3. ``ingest_entries`` writes each song as one whole SongsTable item with ``batch_writer`` (which
   resends unprocessed items). Every item carries ``content_hash``: the song's fields plus the lyrics
   rules. A song already stored under this model version with the same hash is not scored again, so a
   re-run rewrites nothing (idempotent) and a crashed run picks up where it stopped (resumable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from moodtune.catalog.lyrics import BATCH_SIZE, LyricsOptions, Weighting, average_chunks, prepare_lyrics
from moodtune.catalog.songs import ScoredSong, song_to_item
from moodtune.catalog.store import fetch_stored
from moodtune.labels import LABELS

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from moodtune.emotion.classifier import EmotionClassifier

logger = logging.getLogger(__name__)

# Bump when the processing changes in a way LyricsOptions does not capture: every song is re-scored.
# 2: a section marker in parentheses at the start of a lyric line ("(후렴) 가사") is stripped.
RULES_VERSION = 2
MAX_LYRICS_BYTES = 32 * 1024
MAX_LINE_BYTES = 256 * 1024
# A song must travel in one SQS message of the AWS fan-out (moodtune.catalog.fanout: 240 KiB with the
# envelope), so the CLI, the splitter and infra.model_switch all refuse a song larger than this as JSON
# (escapes counted: a control character takes 6 bytes). The lyrics cap keeps real songs far below it.
MAX_SONG_JSON_BYTES = 200 * 1024
MAX_EXTERNAL_IDS = 32
SONG_ID_MAX_CHARS = 128
GROUP_SONGS = 128
# DynamoDB's BatchGetItem limit.

Text = Annotated[StrictStr, Field(min_length=1, max_length=300)]
OptionalText = Annotated[StrictStr, Field(max_length=300)] | None


def _nfc(value: str | None) -> str | None:
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value).strip()
    return value


class CatalogSong(BaseModel):
    """One catalog line. Strings are NFC-normalised and trimmed; unknown keys are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    song_id: Annotated[
        StrictStr, Field(min_length=1, max_length=SONG_ID_MAX_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$")
    ]
    title: Text
    artist: Text
    lyrics: StrictStr
    album: OptionalText = None
    year: Annotated[StrictInt, Field(ge=1000, le=2999)] | None = None
    genre: Annotated[StrictStr, Field(max_length=100)] | None = None
    external_ids: (
        Annotated[
            dict[
                Annotated[str, Field(min_length=1, max_length=64)],
                Annotated[StrictStr, Field(max_length=256)],
            ],
            Field(max_length=MAX_EXTERNAL_IDS),
        ]
        | None
    ) = None

    @field_validator("song_id", "title", "artist", "album", "genre", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _nfc(value)
        return value

    @field_validator("album", "genre", mode="after")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("lyrics", mode="after")
    @classmethod
    def _lyrics(cls, value: str, info: Any) -> str:
        value = unicodedata.normalize("NFC", value)
        if not value.strip():
            raise ValueError("empty lyrics")
        cap = int((info.context or {}).get("max_lyrics_bytes", MAX_LYRICS_BYTES))
        size = len(value.encode("utf-8"))
        if size > cap:
            raise ValueError(f"{size:,} bytes, over the cap of {cap:,} bytes")
        return value

    @model_validator(mode="after")
    def _fits_one_message(self) -> CatalogSong:
        size = song_json_bytes(self)
        if size > MAX_SONG_JSON_BYTES:
            raise ValueError(
                f"the song is {size:,} bytes as JSON, over the cap of {MAX_SONG_JSON_BYTES:,} bytes "
                "(one SQS message of the fan-out)"
            )
        return self


def song_json(song: CatalogSong) -> str:
    """The song as compact JSON, as the fan-out's messages carry it (UTF-8, not \\u escapes)."""
    return json.dumps(
        song.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":")
    )


def song_json_bytes(song: CatalogSong) -> int:
    """Bytes of ``song_json`` (pydantic has already refused strings that are not valid Unicode)."""
    return len(song_json(song).encode("utf-8"))


@dataclass(frozen=True)
class CatalogEntry:
    """A valid song and the catalog line it came from."""

    line: int
    song: CatalogSong


@dataclass(frozen=True)
class Rejected:
    """A catalog line that was skipped: where, which field (None: the whole line) and why."""

    line: int
    field: str | None
    message: str
    song_id: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.song_id})" if self.song_id else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.message, "song_id": self.song_id}


Parsed = CatalogEntry | Rejected


def validate_song(obj: Any, line: int, max_lyrics_bytes: int = MAX_LYRICS_BYTES) -> Parsed:
    """Check one decoded catalog object; the first problem becomes a ``Rejected`` naming the field."""
    if not isinstance(obj, dict):
        return Rejected(line, None, f"expected a JSON object, got {type(obj).__name__}")
    song_id = obj.get("song_id") if isinstance(obj.get("song_id"), str) else None
    try:
        song = CatalogSong.model_validate(obj, context={"max_lyrics_bytes": max_lyrics_bytes})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or None
        message = str(error["msg"]).removeprefix("Value error, ")
        if len(exc.errors()) > 1:
            message += f" (and {len(exc.errors()) - 1} more problem(s))"
        return Rejected(line, where, message, song_id)
    return CatalogEntry(line, song)


def parse_catalog(
    lines: Iterable[bytes],
    *,
    max_lyrics_bytes: int = MAX_LYRICS_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Parsed]:
    """Check JSONL catalog lines (bytes, numbered from 1); blank lines are skipped silently.

    Yields a ``CatalogEntry`` per valid song and a ``Rejected`` per bad line: not UTF-8, not JSON, a
    missing or invalid field, empty or oversized lyrics, a song_id already seen earlier in the file.
    """
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r\n")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
        if not raw.strip():
            continue
        if len(raw) > max_line_bytes:
            # ``capped_lines`` cuts an overlong line to the cap + 1 byte: its real length is not known.
            yield Rejected(number, None, f"line over the cap of {max_line_bytes:,} bytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Rejected(number, None, f"not UTF-8 (invalid byte at offset {exc.start})")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Rejected(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        parsed = validate_song(obj, number, max_lyrics_bytes)
        if isinstance(parsed, CatalogEntry):
            song_id = parsed.song.song_id
            if song_id in first_line:
                parsed = Rejected(
                    number, "song_id", f"duplicate song_id (first on line {first_line[song_id]})", song_id
                )
            else:
                first_line[song_id] = number
        yield parsed


def capped_lines(chunks: Iterable[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """Split a byte stream into lines (``\\n``); a line longer than ``max_line_bytes`` comes out cut to
    ``max_line_bytes + 1`` bytes (so ``parse_catalog`` rejects it) without ever holding all of it."""
    pending = bytearray()
    overlong = False
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            if not overlong:
                pending += chunk[start : end + 1]
            yield bytes(pending[: max_line_bytes + 1])
            pending.clear()
            overlong = False
            start = end + 1
        if not overlong:
            pending += chunk[start:]
            if len(pending) > max_line_bytes:
                del pending[max_line_bytes + 1 :]
                overlong = True
    if pending:
        yield bytes(pending)


def read_catalog_file(
    path: str | Path, max_lyrics_bytes: int = MAX_LYRICS_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[Parsed]:
    """``parse_catalog`` over a JSONL file, read as bytes so that a non-UTF-8 line is one rejected line."""
    with open(path, "rb") as fh:
        chunks = iter(lambda: fh.read(1 << 20), b"")
        yield from parse_catalog(
            capped_lines(chunks, max_line_bytes),
            max_lyrics_bytes=max_lyrics_bytes,
            max_line_bytes=max_line_bytes,
        )


def count_lines(path: str | Path) -> int:
    """Non-blank lines of a file (for a progress bar's total)."""
    with open(path, "rb") as fh:
        return sum(1 for raw in capped_lines(iter(lambda: fh.read(1 << 20), b"")) if raw.strip())


# ---------------------------------------------------------------- scoring


def vocabulary_check(tokenizer: Tokenizer) -> Callable[[str], bool]:
    """``is_known(word)``: False when the tokenizer reads any piece of ``word`` as [UNK]."""
    unk_id = tokenizer.token_to_id("[UNK]")

    @lru_cache(maxsize=1 << 16)
    def is_known(word: str) -> bool:
        if unk_id is None:
            return True
        return unk_id not in tokenizer.encode(word, add_special_tokens=False).ids

    return is_known


@dataclass(frozen=True)
class SongScore:
    """A song's averaged distribution (float32 [7], label order), its chunk count and dropped words."""

    vector: np.ndarray
    chunks: int
    dropped_words: int = 0

    @property
    def dominant(self) -> str:
        return LABELS[int(np.argmax(self.vector))]


class SongScorer:
    """Scores songs with one classifier: all chunks of the given songs are classified together.

    ``batch_size`` chunks per onnxruntime call; chunks are sorted by token count first, so a batch pads
    to its own longest chunk rather than to the longest of all.
    """

    def __init__(
        self,
        classifier: EmotionClassifier,
        lyrics: LyricsOptions | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.classifier = classifier
        self.lyrics = lyrics or LyricsOptions(lines_per_chunk=classifier.lines_per_chunk)
        self.batch_size = batch_size
        self.is_known = vocabulary_check(classifier.tokenizer) if self.lyrics.filter_unknown_english else None

    @property
    def model_version(self) -> str:
        return self.classifier.model_version

    def classify_chunks(self, chunks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities [n, 7] and token counts [n] of ``chunks``, in their order."""
        n = len(chunks)
        probs = np.zeros((n, len(LABELS)), dtype=np.float32)
        if n == 0:
            return probs, np.zeros(0, dtype=np.int64)
        encoded = self.classifier.tokenize(chunks)  # padded to the longest; sliced per batch below
        lengths = encoded["attention_mask"].sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            probs[rows] = self.classifier.infer(self.classifier.take(encoded, rows, width))
        return probs, lengths

    def score(self, lyrics: Sequence[str]) -> list[SongScore | None]:
        """One ``SongScore`` per lyrics text; None where no lyric line is left after cleaning."""
        prepared = [prepare_lyrics(text, self.lyrics, self.is_known) for text in lyrics]
        chunks = [chunk for p in prepared for chunk in p.chunks]
        probs, lengths = self.classify_chunks(chunks)
        scores: list[SongScore | None] = []
        start = 0
        for p in prepared:
            k = len(p.chunks)
            if k == 0:
                scores.append(None)
                continue
            weights = lengths[start : start + k] if self.lyrics.weighting == "length" else None
            scores.append(SongScore(average_chunks(probs[start : start + k], weights), k, p.dropped_words))
            start += k
        return scores


def scored_song(song: CatalogSong, score: SongScore) -> ScoredSong:
    """The ``ScoredSong`` (SongsTable codec) of a catalog song and its score."""
    return ScoredSong(
        song_id=song.song_id,
        title=song.title,
        artist=song.artist,
        vector=tuple(float(v) for v in score.vector),
        chunks=score.chunks,
        album=song.album,
        year=song.year,
        genre=song.genre,
    )


def score_songs(
    classifier: EmotionClassifier, songs: Iterable[Mapping[str, Any]], batch_size: int = BATCH_SIZE
) -> list[ScoredSong]:
    """Score in-memory song mappings with the default rules; invalid or lyric-less songs are skipped."""
    entries = []
    for i, song in enumerate(songs, start=1):
        parsed = validate_song(dict(song), i)
        if isinstance(parsed, Rejected):
            logger.warning("song skipped: %s", parsed)
        else:
            entries.append(parsed.song)
    scores = SongScorer(classifier, batch_size=batch_size).score([s.lyrics for s in entries])
    return [scored_song(song, score) for song, score in zip(entries, scores, strict=True) if score]


# ---------------------------------------------------------------- writing


def content_hash(song: CatalogSong, lyrics: LyricsOptions) -> str:
    """sha256 of the song's fields and the lyrics rules: equal hashes under one model version mean the
    stored item is exactly what scoring this song again would write."""
    payload = {
        "rules": RULES_VERSION,
        "lyrics": lyrics.fingerprint(),
        "song": song.model_dump(mode="json", exclude_none=True),
    }
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def song_item(model_version: str, song: CatalogSong, score: SongScore, digest: str) -> dict[str, Any]:
    """The whole SongsTable item: ``catalog.song_to_item`` plus ``content_hash`` and ``external_ids``."""
    item = song_to_item(model_version, scored_song(song, score))
    item["content_hash"] = digest
    if song.external_ids:
        item["external_ids"] = dict(song.external_ids)
    return item


@dataclass
class IngestReport:
    """What a run did. ``songs`` counts valid songs read; each is written, unchanged or rejected."""

    model_version: str
    songs: int = 0
    written: int = 0
    unchanged: int = 0
    chunks: int = 0
    dropped_words: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dominant: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return len(self.rejected)

    @property
    def songs_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "songs": self.songs,
            "written": self.written,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "chunks": self.chunks,
            "dropped_words": self.dropped_words,
            "dominant": {label: self.dominant.get(label, 0) for label in LABELS},
            "seconds": round(self.seconds, 3),
            "songs_per_second": round(self.songs_per_second, 2),
            "chunks_per_second": round(self.chunks_per_second, 2),
            "rejected": [r.as_dict() for r in self.rejected],
        }


Progress = Callable[[IngestReport, int], None]


def _groups(parsed: Iterable[Parsed], size: int, report: IngestReport) -> Iterator[list[CatalogEntry]]:
    group: list[CatalogEntry] = []
    for item in parsed:
        if isinstance(item, Rejected):
            report.rejected.append(item)
            continue
        group.append(item)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def ingest_entries(
    scorer: SongScorer,
    table: Any,
    parsed: Iterable[Parsed],
    *,
    group_songs: int = GROUP_SONGS,
    force: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Score and write catalog entries, ``group_songs`` at a time, under the scorer's model version.

    Songs stored with the same content hash are left as they are unless ``force``. ``progress(report,
    lines)`` is called after each group with the running report and the lines that group consumed.
    Each song is one PutItem of a whole item: a crash leaves every song either fully written or absent.
    """
    report = IngestReport(model_version=scorer.model_version)
    started = time.perf_counter()
    rules = scorer.lyrics
    lyricless = lines_reported = 0
    for group in _groups(parsed, group_songs, report):
        report.songs += len(group)
        digests = [content_hash(entry.song, rules) for entry in group]
        stored = {} if force else fetch_stored(table, report.model_version, [e.song.song_id for e in group])
        todo = []
        for entry, digest in zip(group, digests, strict=True):
            previous = stored.get(entry.song.song_id)
            if previous is not None and previous[0] == digest:
                report.unchanged += 1
                report.dominant[previous[1]] += 1
            else:
                todo.append((entry, digest))
        scores = scorer.score([entry.song.lyrics for entry, _ in todo])
        with table.batch_writer(overwrite_by_pkeys=["model_version", "song_id"]) as batch:
            for (entry, digest), score in zip(todo, scores, strict=True):
                if score is None:
                    lyricless += 1
                    report.rejected.append(
                        Rejected(
                            entry.line,
                            "lyrics",
                            "no lyric line left after removing section markers and blank lines",
                            entry.song.song_id,
                        )
                    )
                    continue
                batch.put_item(Item=song_item(report.model_version, entry.song, score, digest))
                report.written += 1
                report.chunks += score.chunks
                report.dropped_words += score.dropped_words
                report.dominant[score.dominant] += 1
        report.seconds = time.perf_counter() - started
        if progress is not None:
            # Lines consumed so far: valid songs plus lines rejected while parsing.
            lines = report.songs + len(report.rejected) - lyricless
            progress(report, lines - lines_reported)
            lines_reported = lines
    report.seconds = time.perf_counter() - started
    return report


def ingest_file(
    scorer: SongScorer,
    table: Any,
    path: str | Path,
    *,
    max_lyrics_bytes: int = MAX_LYRICS_BYTES,
    group_songs: int = GROUP_SONGS,
    force: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """``ingest_entries`` over a JSONL catalog file."""
    return ingest_entries(
        scorer,
        table,
        read_catalog_file(path, max_lyrics_bytes=max_lyrics_bytes),
        group_songs=group_songs,
        force=force,
        progress=progress,
    )


class IngestSettings(BaseSettings):
    """Ingestion settings from ``INGEST_*`` environment variables (template.yaml sets them in AWS).

    The CLI, ``make demo`` and the AWS worker must agree on the lyrics rules: they are part of every
    song's content hash, so changing one re-scores the catalog under the same model version.
    """

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    # None: the bundle's own chunking (manifest lyrics.lines_per_chunk; 4, the original's rule, if unset).
    lines_per_chunk: int | None = Field(default=None, ge=1, le=64)
    max_repeats: int = Field(default=2, ge=0, description="0: keep every repeated line")
    filter_unknown_english: bool = False
    weighting: Weighting = "mean"
    batch_size: int = Field(default=BATCH_SIZE, ge=1, le=1024)
    max_lyrics_bytes: int = Field(default=MAX_LYRICS_BYTES, ge=1)
    songs_per_message: int = Field(default=25, ge=1, le=500)
    queue_url: str = ""

    def lyrics_options(self, bundle_lines_per_chunk: int) -> LyricsOptions:
        """The lyrics rules; INGEST_LINES_PER_CHUNK, when set, overrides the bundle's chunking."""
        return LyricsOptions(
            lines_per_chunk=self.lines_per_chunk or bundle_lines_per_chunk,
            max_repeats=self.max_repeats or None,
            filter_unknown_english=self.filter_unknown_english,
            weighting=self.weighting,
        )
