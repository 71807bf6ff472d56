"""The song catalog of one model version: SongsTable items <-> an in-memory numpy matrix.

A song's vector is only comparable with text vectors of the same model, so SongsTable is partitioned
by ``model_version``. Serving reads a snapshot of one partition (``catalog.snapshot``) as columns;
``Catalog`` answers the same questions whether it was built from songs or from those columns.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
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


class TextColumn(Sequence[str]):
    """Strings as one UTF-8 blob plus ``n + 1`` uint32 offsets: no Python object per row until asked.

    Row ``i`` is ``data[offsets[i]:offsets[i + 1]]`` decoded. A sorted column (song ids) is searched
    by bisection over the rows it decodes (about 20 for a million rows).
    """

    __slots__ = ("data", "offsets")

    def __init__(self, offsets: np.ndarray, data: np.ndarray) -> None:
        if offsets.ndim != 1 or len(offsets) < 1 or data.ndim != 1:
            raise ValueError("a text column needs 1-d offsets (n + 1) and a 1-d byte blob")
        if int(offsets[0]) != 0 or int(offsets[-1]) != len(data):
            raise ValueError(f"text column offsets end at {int(offsets[-1])}, the blob has {len(data)} bytes")
        self.offsets = offsets
        self.data = data

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> TextColumn:
        """Pack strings (None packs as the empty string)."""
        encoded = [(v or "").encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        if offsets[-1] >= 2**32:
            raise ValueError("a text column holds at most 4 GiB")
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return cls(offsets.astype(np.uint32), data)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self.data[int(self.offsets[i]) : int(self.offsets[i + 1])].tobytes().decode("utf-8")

    def find(self, value: str) -> int | None:
        """Row of ``value`` in a column sorted ascending (UTF-8 byte order = code point order), or None."""
        i = bisect.bisect_left(self, value)
        return i if i < len(self) and self[i] == value else None


@dataclass(frozen=True)
class CatalogColumns:
    """A catalog as columns, rows sorted by song_id: what a snapshot holds (``catalog.snapshot``).

    ``year`` 0 and an empty ``album``/``genre`` mean "not given".
    """

    song_ids: TextColumn
    matrix: np.ndarray  # float32 [n, 7], label order
    dominant: np.ndarray  # int8 [n], argmax of each row
    chunks: np.ndarray  # int32 [n]
    year: np.ndarray  # int32 [n]
    title: TextColumn
    artist: TextColumn
    album: TextColumn
    genre: TextColumn

    TEXT = ("song_ids", "title", "artist", "album", "genre")

    def __post_init__(self) -> None:
        n = len(self.song_ids)
        if self.matrix.shape != (n, NUM_LABELS) or self.matrix.dtype != np.float32:
            raise ValueError(f"vectors: {self.matrix.shape} {self.matrix.dtype}, expected ({n}, 7) float32")
        for name in ("dominant", "chunks", "year"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name}: shape {getattr(self, name).shape}, expected ({n},)")
        for name in self.TEXT[1:]:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: {len(getattr(self, name))} rows, expected {n}")
        if n and not np.array_equal(self.dominant, np.argmax(self.matrix, axis=1)):
            raise ValueError("dominant labels do not match the vectors")

    def __len__(self) -> int:
        return len(self.song_ids)

    @classmethod
    def from_songs(cls, songs: Sequence[ScoredSong]) -> CatalogColumns:
        """Columns of songs already sorted by song_id."""
        matrix = np.array([s.vector for s in songs], dtype=np.float32).reshape(-1, NUM_LABELS)
        return cls(
            song_ids=TextColumn.from_strings(s.song_id for s in songs),
            matrix=matrix,
            dominant=np.argmax(matrix, axis=1).astype(np.int8) if len(songs) else np.empty(0, np.int8),
            chunks=np.array([s.chunks for s in songs], dtype=np.int32),
            year=np.array([s.year or 0 for s in songs], dtype=np.int32),
            title=TextColumn.from_strings(s.title for s in songs),
            artist=TextColumn.from_strings(s.artist for s in songs),
            album=TextColumn.from_strings(s.album for s in songs),
            genre=TextColumn.from_strings(s.genre for s in songs),
        )

    @classmethod
    def from_items(cls, items: Iterable[Mapping[str, Any]]) -> CatalogColumns:
        """Columns of SongsTable items in any order, one column list per attribute (no ScoredSong per
        item): the publisher's path from a Query's pages to a snapshot."""
        ids: list[str] = []
        vectors: list[bytes] = []
        texts: dict[str, list[str]] = {"title": [], "artist": [], "album": [], "genre": []}
        chunks: list[int] = []
        years: list[int] = []
        for item in items:
            ids.append(str(item["song_id"]))
            raw = bytes(getattr(item["vector"], "value", item["vector"]))
            if len(raw) != VECTOR_BYTES:
                raise ValueError(f"song {ids[-1]}: vector must be {VECTOR_BYTES} bytes, got {len(raw)}")
            vectors.append(raw)
            for name, values in texts.items():
                values.append(str(item.get(name) or ""))
            chunks.append(int(item.get("chunks", 0)))
            year = item.get("year")
            years.append(int(year) if isinstance(year, int | Decimal) else 0)
        order = sorted(range(len(ids)), key=ids.__getitem__)
        if any(ids[a] == ids[b] for a, b in itertools.pairwise(order)):
            raise ValueError("catalog has duplicate song ids")
        matrix = np.frombuffer(b"".join(vectors[i] for i in order), dtype=_VECTOR_DTYPE)
        matrix = matrix.astype(np.float32).reshape(-1, NUM_LABELS)
        return cls(
            song_ids=TextColumn.from_strings(ids[i] for i in order),
            matrix=matrix,
            dominant=np.argmax(matrix, axis=1).astype(np.int8) if len(ids) else np.empty(0, np.int8),
            chunks=np.array([chunks[i] for i in order], dtype=np.int32),
            year=np.array([years[i] for i in order], dtype=np.int32),
            **{name: TextColumn.from_strings(values[i] for i in order) for name, values in texts.items()},
        )

    def song(self, i: int) -> ScoredSong:
        """Row ``i`` as a ScoredSong (the only place a column catalog makes one)."""
        year = int(self.year[i])
        return ScoredSong(
            song_id=self.song_ids[i],
            title=self.title[i],
            artist=self.artist[i],
            vector=tuple(self.matrix[i].tolist()),
            chunks=int(self.chunks[i]),
            album=self.album[i] or None,
            year=year or None,
            genre=self.genre[i] or None,
        )


class _SongRows(Sequence[ScoredSong]):
    """``catalog.songs`` of a column catalog: a ScoredSong is made when a row is asked for (and the
    last few thousand are kept, so a popular song's answer fields are not rebuilt per request)."""

    __slots__ = ("_columns", "_song")

    def __init__(self, columns: CatalogColumns) -> None:
        self._columns = columns
        self._song = lru_cache(maxsize=4096)(columns.song)

    def __len__(self) -> int:
        return len(self._columns)

    def __getitem__(self, i: int) -> ScoredSong:  # type: ignore[override]
        n = len(self._columns)
        if not -n <= i < n:
            raise IndexError(i)
        return self._song(int(i) % n)


class Catalog:
    """One model version's songs, sorted by song_id, as a float32 [n, 7] matrix plus metadata.

    Row order is song_id order, which is also ``top_k``'s tie order. Built from ``ScoredSong`` objects
    (tests, SongsTable items) or from ``CatalogColumns`` (a snapshot: no Python object per song; a
    ``ScoredSong`` is made only for the rows an answer returns).
    """

    def __init__(self, model_version: str, songs: Iterable[ScoredSong] = ()) -> None:
        ordered = tuple(sorted(songs, key=lambda s: s.song_id))
        ids = [s.song_id for s in ordered]
        if len(set(ids)) != len(ids):
            raise ValueError("catalog has duplicate song ids")
        self._init(model_version, CatalogColumns.from_songs(ordered), ordered)
        self._index: dict[str, int] | None = {song_id: i for i, song_id in enumerate(ids)}

    def _init(self, model_version: str, columns: CatalogColumns, songs: Sequence[ScoredSong] | None) -> None:
        self.model_version = model_version
        self.columns = columns
        self.matrix: np.ndarray = columns.matrix
        self.dominant: np.ndarray = columns.dominant
        self.songs: Sequence[ScoredSong] = songs if songs is not None else _SongRows(columns)
        self._index = None
        self._prepared: dict[str, np.ndarray] = {}

    @classmethod
    def from_columns(cls, model_version: str, columns: CatalogColumns) -> Catalog:
        """A catalog over columns (rows sorted by song_id, ids unique: the snapshot writer's promise)."""
        catalog = cls.__new__(cls)
        catalog._init(model_version, columns, None)
        return catalog

    @classmethod
    def from_items(cls, model_version: str, items: Iterable[Mapping[str, Any]]) -> Catalog:
        """Build a catalog from SongsTable items."""
        return cls(model_version=model_version, songs=tuple(item_to_song(item) for item in items))

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return f"Catalog(model_version={self.model_version!r}, songs={len(self)})"

    @cached_property
    def song_ids(self) -> tuple[str, ...]:
        """Every song id in row order (a column catalog makes these strings on first use only)."""
        return tuple(self.columns.song_ids)

    def index_of(self, song_id: str) -> int | None:
        """Row of ``song_id``, or None when it is not in the catalog."""
        if self._index is not None:
            return self._index.get(song_id)
        return self.columns.song_ids.find(song_id)

    def song(self, song_id: str) -> ScoredSong | None:
        """Metadata and vector of ``song_id``, or None."""
        i = self.index_of(song_id)
        return None if i is None else self.songs[i]

    def mask(self, song_ids: Iterable[str]) -> np.ndarray:
        """Boolean row mask of the given ids (ids not in the catalog are ignored)."""
        mask = np.zeros(len(self), dtype=bool)
        rows = [i for i in map(self.index_of, song_ids) if i is not None]
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
