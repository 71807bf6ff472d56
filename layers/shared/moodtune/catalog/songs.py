"""The song catalog of one model version: SongsTable items <-> an in-memory numpy matrix.

A song's vector is only comparable with text vectors of the same model, so SongsTable is partitioned
by ``model_version`` and a cold start reads exactly one partition with one paginated Query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np

from moodtune.labels import LABELS, NUM_LABELS
from moodtune.similarity import Metric

logger = logging.getLogger(__name__)

VECTOR_BYTES = NUM_LABELS * 4
_VECTOR_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class ScoredSong:
    """A song with its lyrics' averaged emotion distribution (label order) and its metadata."""

    song_id: str
    title: str
    artist: str
    vector: tuple[float, ...]
    chunks: int = 0
    album: str | None = None
    year: int | None = None
    genre: str | None = None

    def __post_init__(self) -> None:
        if len(self.vector) != NUM_LABELS:
            raise ValueError(f"song {self.song_id}: {len(self.vector)} scores, expected {NUM_LABELS}")

    # Computed once per song and kept (cached_property writes the instance __dict__, which a frozen
    # dataclass allows): a catalog's songs live as long as the catalog, so requests never redo them.
    @cached_property
    def dominant(self) -> str:
        """The label with the highest probability (lowest label index on ties, like np.argmax)."""
        # Plain Python: np.argmax on a 7-tuple costs more in conversion than in work.
        return LABELS[max(range(NUM_LABELS), key=self.vector.__getitem__)]

    @property
    def scores(self) -> dict[str, float]:
        """Label -> probability (a new dict on each call)."""
        return dict(zip(LABELS, (float(v) for v in self.vector), strict=True))

    @cached_property
    def answer_fields(self) -> Mapping[str, Any]:
        """What every answer that lists this song says about it (scores rounded to 6 places, as the
        API answers them). Shared between requests: copy it, never change it."""
        return {
            "song_id": self.song_id,
            "title": self.title,
            "artist": self.artist,
            "dominant": self.dominant,
            "scores": {label: round(p, 6) for label, p in self.scores.items()},
        }


def encode_vector(vector: Sequence[float] | np.ndarray) -> bytes:
    """7 float32 little-endian values in label order (28 bytes): SongsTable's ``vector`` attribute."""
    array = np.asarray(vector, dtype=_VECTOR_DTYPE)
    if array.shape != (NUM_LABELS,):
        raise ValueError(f"vector must have shape ({NUM_LABELS},), got {array.shape}")
    return array.tobytes()


def decode_vector(raw: bytes | Any) -> np.ndarray:
    """Inverse of ``encode_vector``; accepts bytes or boto3's ``Binary`` wrapper."""
    data = bytes(getattr(raw, "value", raw))
    if len(data) != VECTOR_BYTES:
        raise ValueError(f"vector must be {VECTOR_BYTES} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=_VECTOR_DTYPE).astype(np.float32)


def song_to_item(model_version: str, song: ScoredSong) -> dict[str, Any]:
    """The SongsTable item of ``song`` (optional attributes only when set)."""
    item: dict[str, Any] = {
        "model_version": model_version,
        "song_id": song.song_id,
        "title": song.title,
        "artist": song.artist,
        "dominant": song.dominant,
        "vector": encode_vector(song.vector),
        "chunks": int(song.chunks),
    }
    for key in ("album", "year", "genre"):
        value = getattr(song, key)
        if value is not None:
            item[key] = value
    return item


def item_to_song(item: Mapping[str, Any]) -> ScoredSong:
    """Inverse of ``song_to_item`` (numbers come back from boto3 as Decimal)."""
    year = item.get("year")
    return ScoredSong(
        song_id=str(item["song_id"]),
        title=str(item.get("title", "")),
        artist=str(item.get("artist", "")),
        vector=tuple(float(v) for v in decode_vector(item["vector"])),
        chunks=int(item.get("chunks", 0)),
        album=item.get("album"),
        year=int(year) if isinstance(year, int | Decimal) else None,
        genre=item.get("genre"),
    )


@dataclass
class Catalog:
    """One model version's songs, sorted by song_id, as a float32 [n, 7] matrix plus metadata.

    Row order is song_id order, which is also ``top_k``'s tie order.
    """

    model_version: str
    songs: tuple[ScoredSong, ...]
    song_ids: tuple[str, ...] = field(init=False)
    matrix: np.ndarray = field(init=False)
    dominant: np.ndarray = field(init=False)
    artists: np.ndarray = field(init=False, repr=False)
    _index: dict[str, int] = field(init=False, repr=False)
    _prepared: dict[str, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.songs = tuple(sorted(self.songs, key=lambda s: s.song_id))
        self.song_ids = tuple(s.song_id for s in self.songs)
        self._index = {song_id: i for i, song_id in enumerate(self.song_ids)}
        if len(self._index) != len(self.song_ids):
            raise ValueError("catalog has duplicate song ids")
        self.matrix = np.array([s.vector for s in self.songs], dtype=np.float32).reshape(-1, NUM_LABELS)
        self.dominant = (
            np.argmax(self.matrix, axis=1).astype(np.int8) if len(self.songs) else np.empty(0, np.int8)
        )
        # One integer per artist (first appearance order), so diversity rules compare ints, not strings.
        codes: dict[str, int] = {}
        self.artists = np.fromiter(
            (codes.setdefault(s.artist, len(codes)) for s in self.songs),
            dtype=np.int32,
            count=len(self.songs),
        )

    @classmethod
    def from_items(cls, model_version: str, items: Iterable[Mapping[str, Any]]) -> Catalog:
        """Build a catalog from SongsTable items."""
        return cls(model_version=model_version, songs=tuple(item_to_song(item) for item in items))

    def __len__(self) -> int:
        return len(self.song_ids)

    def index_of(self, song_id: str) -> int | None:
        """Row of ``song_id``, or None when it is not in the catalog."""
        return self._index.get(song_id)

    def song(self, song_id: str) -> ScoredSong | None:
        """Metadata and vector of ``song_id``, or None."""
        i = self._index.get(song_id)
        return None if i is None else self.songs[i]

    def mask(self, song_ids: Iterable[str]) -> np.ndarray:
        """Boolean row mask of the given ids (ids not in the catalog are ignored)."""
        mask = np.zeros(len(self), dtype=bool)
        rows = [i for i in map(self._index.get, song_ids) if i is not None]
        mask[rows] = True
        return mask

    def prepared(self, metric: Metric) -> np.ndarray:
        """The matrix prepared for ``metric``, computed once per catalog (see ``prepare``)."""
        prepared = self._prepared.get(metric.name)
        if prepared is None:
            prepared = self._prepared[metric.name] = metric.prepare(self.matrix)
        return prepared

    def prepare(self, *metrics: Metric) -> Catalog:
        """Compute the prepared matrix of each metric now (at load time, not on a request); returns self."""
        for metric in metrics:
            self.prepared(metric)
        return self
