"""The song catalog of one model version: SongsTable items <-> an in-memory numpy matrix.

A song's vector is only comparable with text vectors of the same model, so SongsTable is partitioned
by ``model_version`` and a cold start reads exactly one partition with one paginated Query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from boto3.dynamodb.conditions import Key

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

    @property
    def dominant(self) -> str:
        """The label with the highest probability (lowest label index on ties, like np.argmax)."""
        # Plain Python: np.argmax on a 7-tuple costs more in conversion than in work.
        return LABELS[max(range(NUM_LABELS), key=self.vector.__getitem__)]

    @property
    def scores(self) -> dict[str, float]:
        """Label -> probability."""
        return dict(zip(LABELS, (float(v) for v in self.vector), strict=True))


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
        """The matrix prepared for ``metric``, computed once per catalog."""
        prepared = self._prepared.get(metric.name)
        if prepared is None:
            prepared = self._prepared[metric.name] = metric.prepare(self.matrix)
        return prepared


def load_catalog(table: Any, model_version: str, page_size: int | None = None) -> Catalog:
    """Read one model version's songs from SongsTable (a boto3 Table) with one paginated Query.

    ``page_size`` caps items per page (DynamoDB's own cap is 1 MB per page); None leaves it to DynamoDB.
    """
    paginator = table.meta.client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table.name,
        KeyConditionExpression=Key("model_version").eq(model_version),
        PaginationConfig={"PageSize": page_size} if page_size else {},
    )
    items = [item for page in pages for item in page.get("Items", [])]
    return Catalog.from_items(model_version, items)


def write_songs(table: Any, model_version: str, songs: Iterable[ScoredSong]) -> int:
    """Write songs to SongsTable with ``batch_writer`` (which resends unprocessed items); returns the count.

    Rewriting a song replaces its item, so re-running a load duplicates nothing.
    """
    count = 0
    with table.batch_writer(overwrite_by_pkeys=["model_version", "song_id"]) as batch:
        for song in songs:
            batch.put_item(Item=song_to_item(model_version, song))
            count += 1
    return count


class CatalogCache:
    """The catalog of this execution environment, reloaded after ``ttl_seconds``.

    If a refresh fails the previous catalog keeps serving (and the next call tries again); only a
    first load that fails raises.
    """

    def __init__(
        self,
        loader: Callable[[], Catalog],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl_seconds
        self._clock = clock
        self._catalog: Catalog | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> Catalog:
        """The cached catalog, loading it first when absent or older than the TTL."""
        catalog = self._catalog
        if catalog is not None and self._clock() - self._loaded_at < self._ttl:
            return catalog
        with self._lock:
            if self._catalog is not None and self._clock() - self._loaded_at < self._ttl:
                return self._catalog
            try:
                self._catalog = self._loader()
            except Exception:
                if self._catalog is None:
                    raise
                logger.exception("catalog refresh failed; serving the previous catalog")
            self._loaded_at = self._clock()
            return self._catalog

    def invalidate(self) -> None:
        """Force a reload on the next ``get``."""
        self._loaded_at = float("-inf")
