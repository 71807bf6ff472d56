"""The committed demo catalog (data/demo/songs.jsonl, song_intent.tsv) meets its spec (issue 4)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from moodtune.catalog.ingest import CatalogEntry, read_catalog_file
from moodtune.labels import LABELS

DEMO = Path(__file__).resolve().parents[3] / "data" / "demo"
FIELDS = {"song_id", "title", "artist", "lyrics", "album", "year", "genre"}
GENRES = {"ballad", "dance", "hip-hop", "indie", "trot", "rock", "r&b"}
_HANGUL = re.compile("[가-힣]")
_LATIN = re.compile("[A-Za-z]")


@pytest.fixture(scope="module")
def songs() -> list[dict[str, Any]]:
    path = DEMO / "songs.jsonl"
    assert path.is_file(), f"{path} is missing: the demo catalog is part of the repository"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _lines(song: dict[str, Any]) -> list[str]:
    return song["lyrics"].split("\n")


def _name(text: str) -> str:
    """A name as a reader compares it: case, spaces and punctuation do not make two names differ."""
    return re.sub(r"[\W_]+", "", text).lower()


def is_english(line: str) -> bool:
    """A lyric line written mostly in Latin letters (``We go up, up``), not a Korean line."""
    latin, hangul = len(_LATIN.findall(line)), len(_HANGUL.findall(line))
    return latin >= 4 and latin > hangul


def test_size_fields_and_unique_ids(songs: list[dict[str, Any]]) -> None:
    assert len(songs) >= 300
    for song in songs:
        assert set(song) == FIELDS, song.get("song_id")
        assert all(isinstance(song[key], str) and song[key].strip() for key in FIELDS - {"year"}), song
        assert isinstance(song["year"], int) and 1990 <= song["year"] <= 2026, song["song_id"]
    ids = [song["song_id"] for song in songs]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]


def test_the_ingest_reader_accepts_every_song() -> None:
    parsed = list(read_catalog_file(DEMO / "songs.jsonl"))
    rejected = [str(p) for p in parsed if not isinstance(p, CatalogEntry)]
    assert rejected == []
    assert len(parsed) >= 300


def test_lyrics_have_8_to_32_lines_and_no_blank_line(songs: list[dict[str, Any]]) -> None:
    bad = [(s["song_id"], len(_lines(s))) for s in songs if not 8 <= len(_lines(s)) <= 32]
    assert bad == []
    assert [s["song_id"] for s in songs if any(not line.strip() for line in _lines(s))] == []


def test_seven_genres_each_well_represented(songs: list[dict[str, Any]]) -> None:
    genres = Counter(song["genre"].lower() for song in songs)
    assert set(genres) == GENRES, genres
    assert min(genres.values()) >= 30, genres


def test_korean_with_some_english_lines(songs: list[dict[str, Any]]) -> None:
    assert is_english("We go up, up, 멈추지 마") and not is_english("오늘 밤은 우리 거야 알잖아")
    with_english = [s for s in songs if any(is_english(line) for line in _lines(s))]
    assert len(with_english) >= 0.2 * len(songs)
    # Korean first: in every song most lines are Korean.
    mostly_korean = [s for s in songs if sum(not is_english(x) for x in _lines(s)) > len(_lines(s)) / 2]
    assert len(mostly_korean) == len(songs)


def test_every_song_repeats_its_chorus_word_for_word(songs: list[dict[str, Any]]) -> None:
    """Some 4-line stanza (the chunk the model scores) comes back unchanged later in the song."""

    def repeats_a_stanza(song: dict[str, Any]) -> bool:
        lines = _lines(song)
        stanzas = Counter(tuple(lines[i : i + 4]) for i in range(0, len(lines) - 3, 4))
        return max(stanzas.values()) >= 2

    assert [s["song_id"] for s in songs if not repeats_a_stanza(s)] == []


def test_titles_are_distinct_and_never_an_artist_name(songs: list[dict[str, Any]]) -> None:
    titles = Counter(_name(song["title"]) for song in songs)
    assert [t for t, n in titles.items() if n > 1] == []
    artists = {_name(song["artist"]) for song in songs}
    assert [s["title"] for s in songs if _name(s["title"]) in artists] == []
    assert len(artists) >= 60


def test_every_emotion_is_the_intended_dominant_of_a_fair_share(songs: list[dict[str, Any]]) -> None:
    text = (DEMO / "song_intent.tsv").read_text(encoding="utf-8")
    header, *rows = text.splitlines()
    assert header == "song_id\tintended_dominant"
    intent = dict(row.split("\t") for row in rows if row.strip())
    assert len(intent) == len([row for row in rows if row.strip()]), "a song_id appears twice"
    assert set(intent) == {song["song_id"] for song in songs}
    assert set(intent.values()) <= set(LABELS)
    counts = Counter(intent.values())
    # Seven emotions, 300 songs: each one meant for 1/7 of them give or take a third.
    share = len(songs) / len(LABELS)
    assert all(2 / 3 * share <= counts[label] <= 4 / 3 * share for label in LABELS), counts
