"""The catalog snapshot: one model version's catalog as immutable numpy files in S3, and a pointer.

Layout under the snapshot bucket (``docs/architecture.md``, "The catalog snapshot"):

- ``snapshots/<model_version>/<snapshot>/vectors.npy``: float32 [n, 7], label order, rows by song_id;
- ``snapshots/<model_version>/<snapshot>/songs.npz``: the other columns, uncompressed ``.npz``
  (``dominant`` int8, ``chunks`` and ``year`` int32, and per text column ``<name>.offsets`` uint32
  [n + 1] with ``<name>.data`` uint8, the UTF-8 bytes of every row back to back);
- ``snapshots/<model_version>/current.json``: the pointer, naming the snapshot, each file's key,
  size and sha256, and the song count.

``<snapshot>`` is the sha256 of the two files' digests, so a snapshot's keys never change content.
Publishing writes the files first and the pointer last: a publish that fails midway leaves the
previous pointer, and so the previous catalog, in place. Pure logic over a two-method object store
(``Objects``); ``catalog.objects`` is the S3 adapter, ``MemoryObjects`` the in-memory one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from moodtune.catalog.songs import Catalog, CatalogColumns, TextColumn
from moodtune.errors import StoreUnavailable
from moodtune.labels import NUM_LABELS

FORMAT_VERSION = 1
PREFIX = "snapshots/"
VECTORS = "vectors.npy"
SONGS = "songs.npz"
_MODEL_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SnapshotError(StoreUnavailable):
    """A snapshot that cannot be served: missing, truncated, tampered with, of another model version,
    or of the wrong shape. Answered 503 while no catalog is loaded; a refresh keeps the old catalog."""


class ObjectMissing(SnapshotError):
    """The object store has no object under the key."""


@dataclass(frozen=True)
class Fetched:
    """An object's bytes and its ETag."""

    body: bytes
    etag: str


class Objects(Protocol):
    """The object store a snapshot lives in (S3: ``catalog.objects.S3Objects``)."""

    def get(self, key: str, if_none_match: str | None = None) -> Fetched | None:
        """The object; None when ``if_none_match`` is its ETag (304, no body); ``ObjectMissing`` if absent."""
        ...

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write the object whole."""
        ...


class MemoryObjects:
    """An in-memory ``Objects`` with S3's answers (ETag = MD5 of the body, 304 on a matching ETag) that
    counts requests and body bytes read: unit tests and the benchmark."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.requests = 0
        self.bytes_read = 0

    def get(self, key: str, if_none_match: str | None = None) -> Fetched | None:
        self.requests += 1
        body = self.objects.get(key)
        if body is None:
            raise ObjectMissing(f"no object {key}")
        etag = f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
        if if_none_match == etag:
            return None
        self.bytes_read += len(body)
        return Fetched(body, etag)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.requests += 1
        self.objects[key] = bytes(body)


@dataclass(frozen=True)
class Pointer:
    """``current.json``: which snapshot serves a model version."""

    model_version: str
    snapshot: str
    songs: int
    files: dict[str, dict[str, Any]]  # file name -> {"key", "bytes", "sha256"}
    created_at: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "model_version": self.model_version,
                "snapshot": self.snapshot,
                "songs": self.songs,
                "files": self.files,
                "created_at": self.created_at,
            },
            indent=2,
            sort_keys=True,
        ).encode()

    @classmethod
    def parse(cls, body: bytes, model_version: str) -> Pointer:
        """The pointer in ``body``; ``SnapshotError`` unless it is a pointer of ``model_version``."""
        try:
            raw = json.loads(body)
            if raw.get("format_version") != FORMAT_VERSION:
                raise SnapshotError(f"snapshot pointer format {raw.get('format_version')!r}, expected 1")
            pointer = cls(
                model_version=str(raw["model_version"]),
                snapshot=str(raw["snapshot"]),
                songs=int(raw["songs"]),
                files={name: dict(raw["files"][name]) for name in (VECTORS, SONGS)},
                created_at=str(raw.get("created_at", "")),
            )
            for entry in pointer.files.values():
                str(entry["key"]), int(entry["bytes"]), str(entry["sha256"])
        except SnapshotError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"snapshot pointer is not valid ({type(exc).__name__}: {exc})") from exc
        if pointer.model_version != model_version:
            raise SnapshotError(
                f"snapshot pointer names model version {pointer.model_version!r}, expected {model_version!r}"
            )
        return pointer


def pointer_key(model_version: str) -> str:
    """The key of a model version's pointer."""
    if not _MODEL_VERSION.match(model_version):
        raise ValueError(f"model version {model_version!r} cannot name a snapshot key")
    return f"{PREFIX}{model_version}/current.json"


# ---------------------------------------------------------------------------------------------- encode


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


def encode_columns(columns: CatalogColumns) -> dict[str, bytes]:
    """The snapshot's two files for ``columns``."""
    arrays: dict[str, np.ndarray] = {
        "dominant": columns.dominant.astype(np.int8),
        "chunks": columns.chunks.astype(np.int32),
        "year": columns.year.astype(np.int32),
    }
    for name in CatalogColumns.TEXT:
        text: TextColumn = getattr(columns, name)
        arrays[f"{name}.offsets"] = text.offsets.astype(np.uint32)
        arrays[f"{name}.data"] = text.data.astype(np.uint8)
    songs = io.BytesIO()
    np.savez(songs, allow_pickle=False, **arrays)
    return {VECTORS: _npy(columns.matrix.astype("<f4")), SONGS: songs.getvalue()}


def publish_snapshot(
    objects: Objects,
    model_version: str,
    columns: CatalogColumns,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Pointer, bool]:
    """Write ``columns`` as ``model_version``'s snapshot: the files, then the pointer.

    Returns the pointer and whether it changed: a catalog whose snapshot is already current writes
    nothing (its pointer keeps its ETag, so serving environments' refreshes stay one 304 each).
    """
    key = pointer_key(model_version)
    files = encode_columns(columns)
    digests = {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}
    snapshot = hashlib.sha256(f"{digests[VECTORS]}\n{digests[SONGS]}\n".encode()).hexdigest()
    try:
        current = objects.get(key)
    except ObjectMissing:
        current = None
    if current is not None:
        try:
            existing = Pointer.parse(current.body, model_version)
        except SnapshotError:
            existing = None  # a broken pointer is replaced below
        if existing is not None and existing.snapshot == snapshot:
            return existing, False
    entries = {}
    for name, body in files.items():
        file_key = f"{PREFIX}{model_version}/{snapshot}/{name}"
        objects.put(file_key, body, "application/octet-stream")
        entries[name] = {"key": file_key, "bytes": len(body), "sha256": digests[name]}
    pointer = Pointer(
        model_version=model_version,
        snapshot=snapshot,
        songs=len(columns),
        files=entries,
        created_at=clock().isoformat(timespec="seconds"),
    )
    objects.put(key, pointer.to_json(), "application/json")  # last: readers switch only now
    return pointer, True


# ---------------------------------------------------------------------------------------------- decode


def _array_at(buffer: bytes | memoryview, what: str) -> np.ndarray:
    """A ``.npy`` file's array over ``buffer`` itself (no copy; read-only)."""
    header = io.BytesIO(buffer[:4096] if len(buffer) > 4096 else buffer)
    try:
        version = np.lib.format.read_magic(header)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(header)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(header)
    except ValueError as exc:
        raise SnapshotError(f"{what} is not a .npy array ({exc})") from exc
    if fortran or dtype.hasobject:
        raise SnapshotError(f"{what}: unexpected array layout {dtype}")
    count = int(np.prod(shape))
    offset = header.tell()
    if len(buffer) - offset != count * dtype.itemsize:
        raise SnapshotError(f"{what}: {len(buffer) - offset} data bytes for shape {shape} {dtype}")
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)


def _members(buffer: bytes) -> dict[str, bytes | memoryview]:
    """The members of a ``.npz`` file: stored ones (what ``publish_snapshot`` writes) as views of
    ``buffer`` itself, no copy; deflated ones (``np.savez_compressed``) inflated, a copy.

    A stored member's data starts after its local header (30 bytes, then its name and extra field,
    whose lengths the local header gives: numpy writes a zip64 extra field there).
    """
    view = memoryview(buffer)
    members: dict[str, bytes | memoryview] = {}
    with zipfile.ZipFile(io.BytesIO(buffer)) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                members[info.filename.removesuffix(".npy")] = archive.read(info)
                continue
            header = view[info.header_offset : info.header_offset + 30]
            if len(header) < 30 or bytes(header[:4]) != b"PK\x03\x04":
                raise SnapshotError(f"{SONGS}: member {info.filename} has no local header")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            if start + info.file_size > len(buffer):
                raise SnapshotError(f"{SONGS}: member {info.filename} runs past the end of the file")
            members[info.filename.removesuffix(".npy")] = view[start : start + info.file_size]
    return members


def decode_columns(files: dict[str, bytes]) -> CatalogColumns:
    """Columns over the snapshot's two files (already checked against the pointer's sha256): every
    array of a stored song table is a read-only view of the downloaded bytes, so the catalog costs
    its file sizes in memory."""
    matrix = _array_at(files[VECTORS], VECTORS)
    if matrix.dtype != np.dtype("<f4") or matrix.ndim != 2 or matrix.shape[1] != NUM_LABELS:
        raise SnapshotError(f"{VECTORS}: shape {matrix.shape} {matrix.dtype}, expected (n, {NUM_LABELS}) <f4")
    try:
        arrays = {name: _array_at(body, f"{SONGS}:{name}") for name, body in _members(files[SONGS]).items()}
        texts = {
            name: TextColumn(arrays[f"{name}.offsets"], arrays[f"{name}.data"])
            for name in CatalogColumns.TEXT
        }
        return CatalogColumns(
            matrix=matrix,
            dominant=arrays["dominant"],
            chunks=arrays["chunks"],
            year=arrays["year"],
            **texts,
        )
    except SnapshotError:
        raise
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, struct.error) as exc:
        raise SnapshotError(f"{SONGS} is not a valid song table ({type(exc).__name__}: {exc})") from exc


def load_snapshot(objects: Objects, pointer: Pointer) -> CatalogColumns:
    """GET the files the pointer names (side by side), check each one's size and sha256, decode;
    ``SnapshotError`` if one fails."""

    def fetch(name: str) -> bytes:
        entry = pointer.files[name]
        try:
            fetched = objects.get(entry["key"])
        except ObjectMissing as exc:
            raise SnapshotError(
                f"snapshot {pointer.snapshot[:12]}: {name} is missing ({entry['key']})"
            ) from exc
        assert fetched is not None  # an unconditional GET always has a body
        body = fetched.body
        if len(body) != int(entry["bytes"]) or hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise SnapshotError(
                f"snapshot {pointer.snapshot[:12]}: {name} does not match its checksum "
                f"({len(body)} bytes, pointer says {entry['bytes']})"
            )
        return body

    # Two GETs at once: S3 serves each at the speed of one connection; hashing releases the GIL.
    with ThreadPoolExecutor(max_workers=len(pointer.files), thread_name_prefix="snapshot") as pool:
        bodies = dict(zip(pointer.files, pool.map(fetch, pointer.files), strict=True))
    columns = decode_columns(bodies)
    if len(columns) != pointer.songs:
        raise SnapshotError(
            f"snapshot {pointer.snapshot[:12]}: {len(columns)} songs, pointer says {pointer.songs}"
        )
    return columns


class SnapshotSource:
    """The serving side's loader for ``CatalogCache``: the first call reads the pointer and the files;
    each later call is one conditional GET of the pointer (``If-None-Match``), which costs no catalog
    bytes when nothing was published, and swaps in the new snapshot when something was.

    A call that fails raises and leaves the catalog it had (the cache keeps serving that one).
    """

    def __init__(self, objects: Objects, model_version: str) -> None:
        self.objects = objects
        self.model_version = model_version
        self.key = pointer_key(model_version)
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._snapshot: str | None = None
        self._catalog: Catalog | None = None

    @property
    def snapshot(self) -> str | None:
        """The id of the snapshot being served (None before the first load)."""
        return self._snapshot

    def __call__(self) -> Catalog:
        with self._lock:
            try:
                fetched = self.objects.get(self.key, if_none_match=self._etag if self._catalog else None)
            except ObjectMissing as exc:
                raise SnapshotError(
                    f"no catalog snapshot published for model version {self.model_version} ({self.key})"
                ) from exc
            if fetched is None:
                assert self._catalog is not None
                return self._catalog  # 304: unchanged
            pointer = Pointer.parse(fetched.body, self.model_version)
            if self._catalog is None or pointer.snapshot != self._snapshot:
                catalog = Catalog.from_columns(self.model_version, load_snapshot(self.objects, pointer))
                self._catalog, self._snapshot = catalog, pointer.snapshot
            self._etag = fetched.etag
            return self._catalog
