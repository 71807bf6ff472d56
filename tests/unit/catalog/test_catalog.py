"""The song item codec, the Catalog, its TTL cache, and loading/writing SongsTable over the local endpoint."""

import struct
import threading

import numpy as np
import pytest
from boto3.dynamodb.types import Binary

from moodtune.catalog.cache import CatalogCache
from moodtune.catalog.songs import (
    VECTOR_BYTES,
    Catalog,
    ScoredSong,
    decode_vector,
    encode_vector,
    item_to_song,
    song_to_item,
)
from moodtune.catalog.store import load_catalog, write_songs
from moodtune.labels import LABELS
from moodtune.similarity import get_metric

VECTOR = (0.05, 0.6, 0.05, 0.1, 0.05, 0.05, 0.1)


def _song(song_id: str, vector: tuple[float, ...] = VECTOR, **extra: object) -> ScoredSong:
    return ScoredSong(
        song_id=song_id, title=f"title {song_id}", artist="artist", vector=vector, chunks=3, **extra
    )


def test_vector_codec_is_seven_little_endian_float32() -> None:
    raw = encode_vector(VECTOR)
    assert len(raw) == VECTOR_BYTES == 28
    assert struct.unpack("<7f", raw) == pytest.approx(VECTOR)
    np.testing.assert_array_equal(decode_vector(raw), np.array(VECTOR, np.float32))
    np.testing.assert_array_equal(decode_vector(Binary(raw)), np.array(VECTOR, np.float32))


@pytest.mark.parametrize("bad", [b"", b"\x00" * 27, b"\x00" * 32])
def test_decode_refuses_wrong_lengths(bad: bytes) -> None:
    with pytest.raises(ValueError, match="28 bytes"):
        decode_vector(bad)


def test_encode_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        encode_vector([0.5, 0.5])


def test_item_round_trip_with_and_without_optional_fields() -> None:
    full = _song("s1", album="앨범", year=2021, genre="ballad")
    item = song_to_item("m1", full)
    assert item["model_version"] == "m1" and item["dominant"] == "sadness" and item["chunks"] == 3
    assert item_to_song(item) == ScoredSong(
        "s1", "title s1", "artist", tuple(float(x) for x in np.float32(VECTOR)), 3, "앨범", 2021, "ballad"
    )
    bare = song_to_item("m1", _song("s2"))
    assert not {"album", "year", "genre"} & set(bare)


def test_catalog_sorts_by_song_id_and_indexes() -> None:
    catalog = Catalog("m1", (_song("b"), _song("c", (1, 0, 0, 0, 0, 0, 0)), _song("a")))
    assert catalog.song_ids == ("a", "b", "c")
    assert catalog.matrix.shape == (3, 7) and catalog.matrix.dtype == np.float32
    assert catalog.dominant.tolist() == [1, 1, 0]
    assert catalog.index_of("c") == 2 and catalog.index_of("zz") is None
    assert catalog.song("b").title == "title b" and catalog.song("zz") is None
    assert catalog.mask(["c", "zz", "a"]).tolist() == [True, False, True]
    cosine = get_metric("cosine")
    assert catalog.prepared(cosine) is catalog.prepared(cosine)  # prepared once


def test_catalog_refuses_duplicates_and_bad_vectors() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Catalog("m1", (_song("a"), _song("a")))
    with pytest.raises(ValueError, match="7"):
        _song("a", (0.5, 0.5))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_catalog_cache_reloads_after_the_ttl_and_keeps_serving_on_refresh_failure() -> None:
    clock, loads = _Clock(), []

    def loader() -> Catalog:
        loads.append(clock.now)
        if len(loads) == 3:
            raise RuntimeError("SongsTable unavailable")
        return Catalog("m1", (_song(f"s{len(loads)}"),))

    cache = CatalogCache(loader, ttl_seconds=60, clock=clock)
    first = cache.get()
    clock.now = 59
    assert cache.get() is first and loads == [0]
    clock.now = 61
    assert cache.get() is first  # stale: served at once, the refresh runs beside it
    assert cache.wait(5)
    second = cache.get()
    assert second is not first and second.song_ids == ("s2",) and loads == [0, 61]
    clock.now = 200
    assert cache.get() is second
    assert cache.wait(5) and len(loads) == 3
    assert cache.get() is second  # refresh failed: the previous catalog still serves
    clock.now = 201
    assert cache.get() is second and cache.wait(5) and len(loads) == 3  # a failure waits a TTL too
    clock.now = 259
    assert cache.get() is second and cache.wait(5) and len(loads) == 3
    cache.invalidate()
    assert cache.get() is second and cache.wait(5)
    assert cache.get().song_ids == ("s4",)


def test_a_stale_catalog_is_served_without_waiting_for_the_refresh() -> None:
    clock, release, started = _Clock(), threading.Event(), threading.Event()
    loads: list[float] = []

    def loader() -> Catalog:
        loads.append(clock.now)
        if len(loads) > 1:
            started.set()
            assert release.wait(10)
        return Catalog("m1", (_song(f"s{len(loads)}"),))

    cache = CatalogCache(loader, ttl_seconds=60, clock=clock)
    first = cache.get()
    clock.now = 100
    answers = [cache.get() for _ in range(50)]
    assert started.wait(5) and all(a is first for a in answers)
    assert not cache.wait(0)  # all 50 answered while the refresh was still blocked
    assert len(loads) == 2  # one refresh, however many requests found the catalog stale
    release.set()
    assert cache.wait(5) and cache.get().song_ids == ("s2",)


def test_a_catalog_older_than_twice_the_ttl_is_reloaded_on_the_callers_thread() -> None:
    # A frozen Lambda environment may never give a background refresh time to finish.
    clock, loads = _Clock(), []

    def loader() -> Catalog:
        loads.append((clock.now, threading.current_thread().name))
        if len(loads) == 2:
            raise RuntimeError("SongsTable unavailable")
        return Catalog("m1", (_song(f"s{len(loads)}"),))

    cache = CatalogCache(loader, ttl_seconds=60, clock=clock)
    first = cache.get()
    clock.now = 120
    assert cache.get() is first  # the reload on this thread failed: the old catalog serves
    assert loads[1] == (120, threading.current_thread().name)
    clock.now = 179
    assert cache.get() is first and len(loads) == 2  # a failure waits a TTL
    clock.now = 180
    fresh = cache.get()
    assert fresh.song_ids == ("s3",) and loads[2] == (180, threading.current_thread().name)


def test_the_first_load_happens_on_the_callers_thread() -> None:
    seen: list[str] = []

    def loader() -> Catalog:
        seen.append(threading.current_thread().name)
        return Catalog("m1", ())

    CatalogCache(loader, ttl_seconds=60).get()
    assert seen == [threading.current_thread().name]


def test_prepare_computes_each_metric_once_at_load_time() -> None:
    catalog = Catalog("m1", (_song("a"), _song("b", (1, 0, 0, 0, 0, 0, 0))))
    cosine = get_metric("cosine")
    assert catalog.prepare(cosine) is catalog
    prepared = catalog._prepared["cosine"]
    assert catalog.prepared(cosine) is prepared
    np.testing.assert_allclose(np.linalg.norm(prepared, axis=0), 1.0, rtol=1e-6)


def test_answer_fields_are_the_songs_answer_with_scores_rounded() -> None:
    song = _song("s1", (0.1234567, 0.6, 0.05, 0.1, 0.05, 0.05, 0.0265433))
    fields = song.answer_fields
    assert fields is song.answer_fields  # computed once per song
    assert fields == {
        "song_id": "s1",
        "title": "title s1",
        "artist": "artist",
        "dominant": "sadness",
        "scores": dict(zip(LABELS, (0.123457, 0.6, 0.05, 0.1, 0.05, 0.05, 0.026543), strict=True)),
    }


def test_catalog_cache_raises_when_the_first_load_fails() -> None:
    def loader() -> Catalog:
        raise RuntimeError("no table")

    with pytest.raises(RuntimeError, match="no table"):
        CatalogCache(loader, ttl_seconds=60).get()


@pytest.mark.integration
def test_write_then_load_one_model_version_over_several_pages(local_aws) -> None:
    table = local_aws.resource().Table(local_aws.songs_table)
    songs = [_song(f"p{i:02d}", genre="pop" if i % 2 else None) for i in range(7)]
    assert write_songs(table, "paging-v1", songs) == 7
    assert write_songs(table, "paging-v1", songs[:2]) == 2  # rewriting replaces, never duplicates
    write_songs(table, "paging-v2", [_song("other")])

    catalog = load_catalog(table, "paging-v1", page_size=3)
    assert catalog.song_ids == tuple(f"p{i:02d}" for i in range(7))
    assert catalog.model_version == "paging-v1"
    assert catalog.song("p01").genre == "pop"
    np.testing.assert_array_equal(catalog.matrix[0], np.array(VECTOR, np.float32))
    assert len(load_catalog(table, "paging-v2")) == 1
    assert len(load_catalog(table, "no-such-version")) == 0
