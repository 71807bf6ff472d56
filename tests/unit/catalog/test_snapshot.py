"""The catalog snapshot: columns, writer/loader round trip, every corrupt case, the conditional refresh."""

from __future__ import annotations

import hashlib
import io
import json
from decimal import Decimal

import numpy as np
import pytest

from moodtune.catalog.cache import CatalogCache
from moodtune.catalog.snapshot import (
    SONGS,
    VECTORS,
    MemoryObjects,
    ObjectMissing,
    Pointer,
    SnapshotError,
    SnapshotSource,
    pointer_key,
    publish_snapshot,
)
from moodtune.catalog.songs import Catalog, CatalogColumns, ScoredSong, TextColumn, song_to_item
from moodtune.errors import StoreUnavailable
from moodtune.recommend.ranking import recommend
from moodtune.similarity import get_metric

MODEL = "m-test-1"


def _songs(n: int = 12) -> list[ScoredSong]:
    rng = np.random.default_rng(7)
    vectors = rng.dirichlet(np.ones(7), size=n).astype(np.float32)
    return [
        ScoredSong(
            song_id=f"s{i:03d}",
            title=f"제목 {i}",
            artist=f"가수 {i % 3}",
            vector=tuple(float(x) for x in vectors[i]),
            chunks=i + 1,
            album="앨범" if i % 2 else None,
            year=2000 + i if i % 3 else None,
            genre="ballad" if i % 4 == 0 else None,
        )
        for i in range(n)
    ]


def _published(n: int = 12) -> tuple[MemoryObjects, Pointer, list[ScoredSong]]:
    objects = MemoryObjects()
    songs = _songs(n)
    pointer, changed = publish_snapshot(objects, MODEL, CatalogColumns.from_songs(songs))
    assert changed
    return objects, pointer, songs


def test_text_column_round_trip_and_sorted_search() -> None:
    column = TextColumn.from_strings(["a", "bb", "노래", "", "zz"])
    assert list(column) == ["a", "bb", "노래", "", "zz"] and column[-1] == "zz"
    ids = TextColumn.from_strings(["a1", "a2", "b", "노래"])
    assert [ids.find(x) for x in ("a1", "b", "노래", "a0", "c", "zzz")] == [0, 2, 3, None, None, None]
    with pytest.raises(IndexError):
        ids[4]
    with pytest.raises(ValueError, match="offsets"):
        TextColumn(np.array([0, 5], np.uint32), np.zeros(3, np.uint8))


def test_round_trip_serves_the_same_songs_and_rankings() -> None:
    objects, pointer, songs = _published()
    assert set(objects.objects) == {pointer_key(MODEL), *(e["key"] for e in pointer.files.values())}
    assert all(pointer.snapshot in entry["key"] for entry in pointer.files.values())  # content-addressed
    loaded = SnapshotSource(objects, MODEL)()
    built = Catalog(MODEL, songs)
    assert len(loaded) == len(built) == pointer.songs
    np.testing.assert_array_equal(loaded.matrix, built.matrix)
    np.testing.assert_array_equal(loaded.dominant, built.dominant)
    for song in songs:
        assert loaded.song(song.song_id) == built.song(song.song_id)
        assert loaded.index_of(song.song_id) == built.index_of(song.song_id)
    assert loaded.song("nope") is None and loaded.index_of("nope") is None
    assert loaded.song_ids == built.song_ids
    assert loaded.mask(["s003", "zz", "s000"]).tolist() == built.mask(["s003", "zz", "s000"]).tolist()
    text = np.array([0.05, 0.6, 0.05, 0.1, 0.05, 0.05, 0.1], np.float32)
    for mode in ("distribution", "dominant"):
        a = recommend(loaded.prepare(get_metric()), text, limit=5, mode=mode, exclude=["s001"])
        b = recommend(built, text, limit=5, mode=mode, exclude=["s001"])
        assert [(m.song, m.similarity) for m in a] == [(m.song, m.similarity) for m in b]


def test_columns_from_items_sort_and_refuse_duplicates() -> None:
    songs = _songs(5)
    items = [song_to_item(MODEL, s) for s in reversed(songs)]
    items[0]["year"] = Decimal(items[0].get("year", 0))
    columns = CatalogColumns.from_items(items)
    assert list(columns.song_ids) == [s.song_id for s in songs]
    assert [columns.song(i) for i in range(5)] == list(Catalog(MODEL, songs).songs)
    with pytest.raises(ValueError, match="duplicate"):
        CatalogColumns.from_items([*items, items[1]])


def test_publishing_an_unchanged_catalog_writes_nothing() -> None:
    objects, pointer, songs = _published()
    before = dict(objects.objects)
    again, changed = publish_snapshot(objects, MODEL, CatalogColumns.from_songs(songs))
    assert not changed and again == pointer and objects.objects == before


def test_a_publish_that_fails_midway_leaves_the_previous_pointer() -> None:
    objects, _pointer, songs = _published()
    old_pointer = objects.objects[pointer_key(MODEL)]

    class FailsOnSecondPut(MemoryObjects):
        puts = 0

        def put(self, key: str, body: bytes, content_type: str) -> None:
            self.puts += 1
            if self.puts == 2:
                raise OSError("network gone")
            super().put(key, body, content_type)

    failing = FailsOnSecondPut()
    failing.objects = dict(objects.objects)
    with pytest.raises(OSError):
        publish_snapshot(failing, MODEL, CatalogColumns.from_songs(songs[:5]))
    assert failing.objects[pointer_key(MODEL)] == old_pointer
    assert len(SnapshotSource(failing, MODEL)()) == len(songs)  # still the previous catalog


def _corrupt(objects: MemoryObjects, pointer: Pointer, name: str, body: bytes, fix_pointer: bool) -> None:
    """Replace file ``name``; with ``fix_pointer``, also make the pointer's size and sha256 agree with it."""
    entry = pointer.files[name]
    objects.objects[entry["key"]] = body
    if fix_pointer:
        files = {
            **pointer.files,
            name: {**entry, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()},
        }
        fixed = Pointer(pointer.model_version, pointer.snapshot, pointer.songs, files, pointer.created_at)
        objects.objects[pointer_key(MODEL)] = fixed.to_json()


def _npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


CORRUPTIONS = {
    "checksum": lambda o, p: _corrupt(
        o, p, VECTORS, o.objects[p.files[VECTORS]["key"]][:-4] + b"\0" * 4, False
    ),
    "truncated": lambda o, p: _corrupt(o, p, SONGS, o.objects[p.files[SONGS]["key"]][:100], False),
    "missing file": lambda o, p: o.objects.pop(p.files[SONGS]["key"]),
    "missing pointer": lambda o, p: o.objects.pop(pointer_key(MODEL)),
    "pointer not json": lambda o, p: o.objects.__setitem__(pointer_key(MODEL), b"{not json"),
    "pointer of another model": lambda o, p: o.objects.__setitem__(
        pointer_key(MODEL), p.to_json().replace(MODEL.encode(), b"m-other")
    ),
    "pointer format": lambda o, p: o.objects.__setitem__(
        pointer_key(MODEL), json.dumps({**json.loads(p.to_json()), "format_version": 9}).encode()
    ),
    "vectors of the wrong shape": lambda o, p: _corrupt(
        o, p, VECTORS, _npy_bytes(np.zeros((p.songs, 5), np.float32)), True
    ),
    "vectors of another length": lambda o, p: _corrupt(
        o, p, VECTORS, _npy_bytes(np.zeros((p.songs + 1, 7), np.float32)), True
    ),
    "vectors not float32": lambda o, p: _corrupt(o, p, VECTORS, _npy_bytes(np.zeros((p.songs, 7))), True),
    "song table missing a column": lambda o, p: _corrupt(o, p, SONGS, _npz(dominant=np.zeros(p.songs)), True),
    "song count differs from the pointer": lambda o, p: o.objects.__setitem__(
        pointer_key(MODEL), p.to_json().replace(b'"songs": 12', b'"songs": 13')
    ),
}


def _npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_bad_snapshot_is_refused_at_cold_start(case: str) -> None:
    objects, pointer, _ = _published()
    CORRUPTIONS[case](objects, pointer)
    with pytest.raises(SnapshotError) as raised:
        SnapshotSource(objects, MODEL)()
    assert isinstance(raised.value, StoreUnavailable)  # answered 503, never a half-loaded catalog
    assert str(raised.value)


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_bad_snapshot_on_refresh_keeps_the_catalog_and_is_counted(case: str) -> None:
    objects, _pointer, songs = _published()
    now = [0.0]
    failures: list[Exception] = []
    source = SnapshotSource(objects, MODEL)
    cache = CatalogCache(source, ttl_seconds=10, clock=lambda: now[0], on_failure=failures.append)
    first = cache.get()
    # A new snapshot is published (so the pointer changes), then broken.
    new_pointer, _ = publish_snapshot(objects, MODEL, CatalogColumns.from_songs(songs[:-1] + _songs(13)[-1:]))
    CORRUPTIONS[case](objects, new_pointer)
    now[0] = 25.0  # past 2 x TTL: reloaded on the caller's thread
    assert cache.get() is first
    assert len(failures) == 1 and isinstance(failures[0], SnapshotError)


def test_refresh_of_an_unchanged_catalog_is_one_request_and_no_body() -> None:
    objects, _, songs = _published()
    source = SnapshotSource(objects, MODEL)
    requests = objects.requests
    first = source()
    assert objects.requests - requests == 3  # the pointer, then one GET per file
    requests, read = objects.requests, objects.bytes_read
    assert source() is first
    assert (objects.requests - requests, objects.bytes_read - read) == (1, 0)
    # Changed: the pointer names a new snapshot, which is read and swapped in.
    publish_snapshot(objects, MODEL, CatalogColumns.from_songs(songs[:4]))
    requests = objects.requests
    second = source()
    assert second is not first and len(second) == 4 and objects.requests - requests == 3
    # The pointer rewritten with the same snapshot (a new ETag): no file is read again.
    objects.objects[pointer_key(MODEL)] += b"\n"
    requests = objects.requests
    assert source() is second and objects.requests - requests == 1


def test_memory_objects_answer_like_s3() -> None:
    objects = MemoryObjects()
    objects.put("k", b"body", "text/plain")
    fetched = objects.get("k")
    assert fetched is not None and fetched.body == b"body"
    assert objects.get("k", if_none_match=fetched.etag) is None
    with pytest.raises(ObjectMissing):
        objects.get("other")


def test_model_versions_that_cannot_name_a_key_are_refused() -> None:
    for bad in ("", "../x", "a/b", "x" * 200):
        with pytest.raises(ValueError):
            pointer_key(bad)


def test_loaded_columns_are_views_of_the_downloaded_bytes() -> None:
    objects, _, _ = _published()
    catalog = SnapshotSource(objects, MODEL)()
    columns = catalog.columns
    for array in (columns.matrix, columns.dominant, columns.title.data, columns.song_ids.offsets):
        assert not array.flags.owndata and not array.flags.writeable  # no copy of the snapshot


def test_a_deflated_song_table_loads_too() -> None:
    objects, pointer, _ = _published()
    with np.load(io.BytesIO(objects.objects[pointer.files[SONGS]["key"]])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    _corrupt(objects, pointer, SONGS, out.getvalue(), True)
    catalog = SnapshotSource(objects, MODEL)()  # the writer may trade CPU for bytes; serving reads both
    assert [catalog.songs[i] for i in range(len(catalog))] == list(Catalog(MODEL, _songs()).songs)


def test_an_empty_catalog_round_trips() -> None:
    objects = MemoryObjects()
    publish_snapshot(objects, MODEL, CatalogColumns.from_songs([]))
    catalog = SnapshotSource(objects, MODEL)()
    assert len(catalog) == 0 and catalog.song("x") is None and catalog.matrix.shape == (0, 7)
    assert recommend(catalog, np.full(7, 1 / 7, np.float32)) == []
