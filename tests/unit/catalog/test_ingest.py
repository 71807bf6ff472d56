"""Catalog parsing and validation, batching, content hashes, resumable writes (in-process moto), fan-out."""

from __future__ import annotations

import base64
import json
import uuid
from types import SimpleNamespace
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from moodtune.catalog.fanout import (
    MessageError,
    SqsSender,
    encode_message,
    parse_message,
    split_catalog,
)
from moodtune.catalog.ingest import (
    CatalogEntry,
    CatalogSong,
    IngestSettings,
    Rejected,
    SongScorer,
    content_hash,
    ingest_entries,
    parse_catalog,
)
from moodtune.catalog.lyrics import LyricsOptions, chunk_lyrics
from moodtune.catalog.songs import decode_vector
from moodtune.labels import LABELS

REGION = "ap-northeast-2"


def song(song_id: str = "s1", **fields: Any) -> dict[str, Any]:
    base = {"song_id": song_id, "title": "제목", "artist": "가수", "lyrics": "첫 줄\n둘째 줄"}
    base.update(fields)
    return base


def line(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def test_every_kind_of_bad_line_is_reported_with_its_number_and_field() -> None:
    lines = [
        b"\xef\xbb\xbf"
        + line(song("ok1", album="앨범", year=2019, genre="ballad", external_ids={"isrc": "X1"})),
        b'{"song_id": "broken", \n',  # 2: malformed JSON
        line({"song_id": "s3", "title": "t", "artist": "a"}),  # 3: no lyrics
        b"\n",  # 4: blank, silently skipped
        line(song("s5", lyrics="  \n ")),  # 5: empty lyrics
        line(song("s6", lyrics="가" * 20)),  # 6: 60 bytes, over a 50-byte cap
        line(song("ok1")),  # 7: duplicate of line 1
        # 8: not UTF-8
        '{"song_id": "s8", "title": "제목", "artist": "a", "lyrics": "가사"}\n'.encode("cp949"),
        line([1, 2]),  # 9: not an object
        line(song("s10", year="2019")),  # 10: year as a string
        line(song("", lyrics="x")),  # 11: empty song_id
        line(song("ok2", title="  공백  ", extra="ignored")),  # 12: fine
    ]
    parsed = list(parse_catalog(lines, max_lyrics_bytes=50))
    good = [p for p in parsed if isinstance(p, CatalogEntry)]
    bad = {p.line: p for p in parsed if isinstance(p, Rejected)}
    assert [(e.line, e.song.song_id) for e in good] == [(1, "ok1"), (12, "ok2")]
    assert good[0].song.external_ids == {"isrc": "X1"} and good[0].song.year == 2019
    assert good[1].song.title == "공백"
    assert sorted(bad) == [2, 3, 5, 6, 7, 8, 9, 10, 11]
    assert bad[2].field is None and "not valid JSON" in bad[2].message
    assert bad[3].field == "lyrics" and "required" in bad[3].message.lower()
    assert bad[5].field == "lyrics" and "empty" in bad[5].message
    assert bad[6].field == "lyrics" and "over the cap of 50 bytes" in bad[6].message
    assert bad[7].field == "song_id" and "first on line 1" in bad[7].message
    assert bad[8].field is None and "not UTF-8" in bad[8].message
    assert "JSON object" in bad[9].message
    assert bad[10].field == "year"
    assert bad[11].field == "song_id"
    assert str(bad[6]) == "line 6 (s6): lyrics: 60 bytes, over the cap of 50 bytes"


def test_oversized_lines_are_rejected_before_decoding() -> None:
    (rejected,) = parse_catalog([line(song(lyrics="a" * 500))], max_line_bytes=100)
    assert isinstance(rejected, Rejected) and "over the cap of 100" in rejected.message


def test_capped_lines_splits_a_stream_and_cuts_overlong_lines() -> None:
    from moodtune.catalog.ingest import capped_lines

    data = b"first\n" + b"x" * 50 + b"\nthird\r\nno newline at the end"
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert list(capped_lines(chunks, max_line_bytes=20)) == [
        b"first\n",
        b"x" * 21,  # cut to the cap + 1: parse_catalog rejects it, numbering stays right
        b"third\r\n",
        b"no newline at the end",
    ]
    assert list(capped_lines([b"a\n\nb\n"])) == [b"a\n", b"\n", b"b\n"]
    stream = [line(song("a")), b"y" * 500 + b"\n", line(song("b"))]
    parsed = list(parse_catalog(capped_lines(stream, 300), max_line_bytes=300))
    assert [getattr(p, "line", None) for p in parsed] == [1, 2, 3]
    assert isinstance(parsed[1], Rejected) and "over the cap of 300" in parsed[1].message


def test_content_hash_covers_the_song_and_the_rules() -> None:
    a = CatalogSong.model_validate(song())
    rules = LyricsOptions()
    assert content_hash(a, rules) == content_hash(CatalogSong.model_validate(song()), rules)
    assert content_hash(a, rules) != content_hash(CatalogSong.model_validate(song(lyrics="다른")), rules)
    assert content_hash(a, rules) != content_hash(CatalogSong.model_validate(song(genre="pop")), rules)
    assert content_hash(a, rules) != content_hash(a, LyricsOptions(lines_per_chunk=2))
    assert content_hash(a, rules) != content_hash(a, LyricsOptions(weighting="length"))


def test_batched_scores_match_each_song_scored_alone(demo_classifier) -> None:
    lyrics = [
        "햇살이 좋아\n웃음이 나\n오늘은 최고야\n신나는 하루",
        "비가 내려\n너는 없고\n눈물만 나\n혼자 남았어\n다시 돌아와\n제발 돌아와",
        "문을 쾅 닫았어\n정말 화가 나",
    ]
    scorer = SongScorer(demo_classifier, LyricsOptions(), batch_size=3)  # the original's 4-line chunks
    together = scorer.score(lyrics)
    for text, score in zip(lyrics, together, strict=True):
        (alone,) = SongScorer(demo_classifier, LyricsOptions(), batch_size=64).score([text])
        assert score.chunks == alone.chunks == len(chunk_lyrics(text))
        # INT8 dynamic quantization scales activations per batch: close, not bit-identical.
        np.testing.assert_allclose(score.vector, alone.vector, atol=0.02)
        assert score.vector.sum() == pytest.approx(1.0, abs=1e-5)


def test_length_weighting_uses_token_counts(demo_classifier) -> None:
    text = "짧아\n아주 아주 길고 긴 두 번째 줄이 여기 있어\n셋\n넷\n다섯"
    scorer = SongScorer(demo_classifier, LyricsOptions(weighting="length"), batch_size=8)
    chunks = chunk_lyrics(text)
    probs, tokens = scorer.classify_chunks(chunks)
    (weighted,) = scorer.score([text])
    expected = (tokens[:, None] * probs).sum(axis=0) / tokens.sum()
    np.testing.assert_allclose(weighted.vector, expected, rtol=1e-5)
    (mean,) = SongScorer(demo_classifier, LyricsOptions(), batch_size=8).score([text])
    np.testing.assert_allclose(mean.vector, probs.mean(axis=0), rtol=1e-5)


def test_unknown_english_filter_uses_the_tokenizer(demo_classifier) -> None:
    scorer = SongScorer(demo_classifier, LyricsOptions(filter_unknown_english=True))
    (score,) = scorer.score(["zzqxv 너를 사랑해\nqqwwzz"])
    assert score.dropped_words == 2 and score.chunks == 1


@pytest.fixture
def songs_table(monkeypatch: pytest.MonkeyPatch) -> Any:
    """SongsTable as template.yaml defines it, in-process (mock_aws) for unit tests."""
    from infra.local.aws import create_tables
    from tests.conftest import TEMPLATE

    # The session's moto server (integration tests) sets AWS_ENDPOINT_URL; these tests stay in-process.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    name = f"songs-unit-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(TEMPLATE, client, {"SongsTable": name})
        yield boto3.resource("dynamodb", region_name=REGION).Table(name)


def entries(n: int, start: int = 0) -> list[CatalogEntry]:
    moods = ["좋아서 웃어", "슬퍼서 울어", "화가 나", "무서워 떨려"]
    return [
        CatalogEntry(i + 1, CatalogSong.model_validate(song(f"s{i:03d}", lyrics=f"{moods[i % 4]}\n{i}번째")))
        for i in range(start, start + n)
    ]


def test_ingest_is_idempotent_and_resumes_by_content_hash(demo_classifier, songs_table) -> None:
    scorer = SongScorer(demo_classifier)
    calls: list[int] = []

    class Crash(Exception):
        pass

    def crash_after_first_group(report: Any, lines: int) -> None:
        calls.append(lines)
        raise Crash

    with pytest.raises(Crash):
        ingest_entries(scorer, songs_table, entries(10), group_songs=4, progress=crash_after_first_group)
    assert calls == [4]
    assert songs_table.scan()["Count"] == 4  # the first group, every item whole

    report = ingest_entries(scorer, songs_table, entries(10), group_songs=4)
    assert (report.songs, report.unchanged, report.written) == (10, 4, 6)
    items = {i["song_id"]: i for i in songs_table.scan()["Items"]}
    assert len(items) == 10
    item = items["s001"]
    assert item["model_version"] == demo_classifier.model_version
    # SongScorer's default rules: the bundle's chunking (the demo bundle names 2 lines a chunk).
    rules = LyricsOptions(lines_per_chunk=demo_classifier.lines_per_chunk)
    assert demo_classifier.lines_per_chunk == 2 and scorer.lyrics == rules
    assert item["content_hash"] == content_hash(entries(2)[1].song, rules)
    assert item["dominant"] in LABELS and int(item["chunks"]) == 1
    assert decode_vector(item["vector"]).sum() == pytest.approx(1.0, abs=1e-5)

    again = ingest_entries(scorer, songs_table, entries(10), group_songs=4)
    assert (again.unchanged, again.written, again.chunks) == (10, 0, 0)
    assert sum(again.dominant.values()) == 10
    assert {i["song_id"]: i for i in songs_table.scan()["Items"]} == items

    # A changed song is scored again; the others stay.
    changed = entries(10)
    changed[3] = CatalogEntry(4, CatalogSong.model_validate(song("s003", lyrics="완전히 새로운 가사")))
    third = ingest_entries(scorer, songs_table, changed, group_songs=4)
    assert (third.unchanged, third.written) == (9, 1)
    forced = ingest_entries(scorer, songs_table, changed, group_songs=4, force=True)
    assert forced.written == 10


def test_a_song_without_lyric_lines_is_rejected_and_not_written(demo_classifier, songs_table) -> None:
    parsed = [
        *entries(2),
        CatalogEntry(3, CatalogSong.model_validate(song("markers", lyrics="[Chorus]\n(x2)"))),
        Rejected(4, None, "not valid JSON"),
    ]
    lines: list[int] = []
    report = ingest_entries(
        SongScorer(demo_classifier), songs_table, parsed, progress=lambda r, n: lines.append(n)
    )
    assert report.written == 2 and report.skipped == 2
    assert [(r.line, r.field) for r in report.rejected] == [(4, None), (3, "lyrics")]
    assert sum(lines) == 4
    assert {i["song_id"] for i in songs_table.scan()["Items"]} == {"s000", "s001"}


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("INGEST_LINES_PER_CHUNK", "6")
    monkeypatch.setenv("INGEST_MAX_REPEATS", "0")
    monkeypatch.setenv("INGEST_WEIGHTING", "length")
    options = IngestSettings().lyrics_options(bundle_lines_per_chunk=2)
    assert options == LyricsOptions(lines_per_chunk=6, max_repeats=None, weighting="length")
    monkeypatch.delenv("INGEST_LINES_PER_CHUNK")
    assert IngestSettings().lyrics_options(bundle_lines_per_chunk=2).lines_per_chunk == 2
    monkeypatch.setenv("INGEST_WEIGHTING", "median")
    with pytest.raises(ValueError):
        IngestSettings()


# ---------------------------------------------------------------- fan-out


def test_split_packs_songs_into_bounded_messages_and_reports_bad_lines() -> None:
    lines = [line(song(f"s{i}", lyrics=("가사 " * 40 + "\n") * 3)) for i in range(23)]
    lines.insert(5, b"{not json\n")
    sent: list[list[str]] = []
    report = split_catalog(
        lines, "s3://bucket/cat.jsonl", sent.append, songs_per_message=5, max_message_bytes=2000, send_every=3
    )
    bodies = [b for call in sent for b in call]
    assert all(len(call) <= 3 for call in sent)
    assert report.songs == 23 and report.messages == len(bodies)
    assert [(r.line, r.field) for r in report.rejected] == [(6, None)]
    assert all(len(b.encode()) <= 2000 for b in bodies)
    songs = []
    for body in bodies:
        source, parsed = parse_message(body)
        assert source == "s3://bucket/cat.jsonl"
        assert 1 <= len(parsed) <= 5
        songs.extend(parsed)
    assert [p.song.song_id for p in songs] == [f"s{i}" for i in range(23)]
    assert songs[5].line == 7  # line numbers of the file, the bad line included


def test_parse_message_refuses_a_body_that_is_not_an_ingestion_message() -> None:
    for body in ("not json", "{}", '{"format": 1, "source": "x", "songs": []}', '{"format": 2}'):
        with pytest.raises(MessageError):
            parse_message(body)
    body = encode_message("s3://b/k", [CatalogEntry(3, CatalogSong.model_validate(song()))])
    tampered = body.replace('"lyrics":"첫 줄\\n둘째 줄"', '"lyrics":""')
    _, (rejected,) = parse_message(tampered)
    assert isinstance(rejected, Rejected) and rejected.line == 3 and rejected.field == "lyrics"


class _FlakySqs:
    """SendMessageBatch that fails every other entry once (as SQS may), recording each call."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, str]]] = []
        self.failed_once: set[str] = set()
        self.received: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append(Entries)
        ok, failed = [], []
        for i, entry in enumerate(Entries):
            if i % 2 and entry["MessageBody"] not in self.failed_once:
                self.failed_once.add(entry["MessageBody"])
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                ok.append({"Id": entry["Id"]})
                self.received.append(entry["MessageBody"])
        return {"Successful": ok, "Failed": failed}


def test_sqs_sender_respects_batch_limits_and_resends_failed_entries(monkeypatch) -> None:
    monkeypatch.setattr("moodtune.catalog.fanout.time.sleep", lambda s: None)
    client = _FlakySqs()
    bodies = [f"m{i:02d}" + "x" * 100 for i in range(25)]
    sender = SqsSender(client, "https://queue", max_call_bytes=1000)
    sender.send(bodies)
    assert sorted(client.received) == bodies and sender.sent == 25
    assert all(len(c) <= 10 and sum(len(e["MessageBody"]) for e in c) <= 1000 for c in client.calls)


# ---------------------------------------------------------------- a song must fit one SQS message


def test_a_song_too_big_for_one_message_is_a_rejected_line_everywhere() -> None:
    from moodtune.catalog.ingest import MAX_EXTERNAL_IDS, MAX_SONG_JSON_BYTES

    # A control character is 1 byte in the file's UTF-8 but 6 in JSON (\u0001): these lines pass the
    # line cap (256 KiB) and the lyrics cap (32 KiB) and would still make a message SQS refuses.
    ids = {f"id{i}": "\x01" * 256 for i in range(MAX_EXTERNAL_IDS)}
    heavy = song("heavy", lyrics="\x01" * 30_000 + "\n가사", external_ids=ids)
    lines = [line(song("a")), line(heavy), line(song("many", external_ids={f"k{i}": "v" for i in range(33)}))]
    assert all(len(x) < 256 * 1024 for x in lines)
    parsed = list(parse_catalog(lines))
    assert isinstance(parsed[0], CatalogEntry)
    too_big, too_many = parsed[1], parsed[2]
    assert isinstance(too_big, Rejected) and (too_big.line, too_big.field, too_big.song_id) == (
        2,
        None,
        "heavy",
    )
    assert f"over the cap of {MAX_SONG_JSON_BYTES:,} bytes" in too_big.message
    assert isinstance(too_many, Rejected) and (too_many.line, too_many.field) == (3, "external_ids")


def test_the_largest_valid_song_fits_one_message_with_the_longest_source() -> None:
    from moodtune.catalog.fanout import MAX_MESSAGE_BYTES
    from moodtune.catalog.ingest import MAX_SONG_JSON_BYTES, song_json_bytes, validate_song

    ids: dict[str, str] = {}
    biggest = CatalogSong.model_validate(song("big", lyrics="\x01" * 32_000))
    while True:  # add external ids until one more passes the cap and is refused
        more = validate_song(
            song("big", lyrics="\x01" * 32_000, external_ids={**ids, f"id{len(ids)}": "\x01" * 256}), 1
        )
        if isinstance(more, Rejected):
            break
        biggest, ids = more.song, dict(more.song.external_ids or {})
    assert MAX_SONG_JSON_BYTES - 1600 < song_json_bytes(biggest) <= MAX_SONG_JSON_BYTES
    # The longest source an S3 event can name: a 63-character bucket and a 1,024-byte key.
    body = encode_message("s3://" + "b" * 63 + "/" + "k" * 1024, [CatalogEntry(999_999_999, biggest)])
    assert len(body.encode()) <= MAX_MESSAGE_BYTES


def test_split_rejects_a_song_that_cannot_fit_a_message_and_goes_on() -> None:
    small = [line(song(f"s{i}")) for i in range(4)]
    big = line(song("big", lyrics="가사 " * 400))  # ~2.4 KB as JSON
    sent: list[list[str]] = []
    report = split_catalog(
        [small[0], small[1], big, small[2], small[3]],
        "s3://bucket/cat.jsonl",
        sent.append,
        songs_per_message=2,
        max_message_bytes=1500,
    )
    bodies = [b for call in sent for b in call]
    assert [(r.line, r.song_id) for r in report.rejected] == [(3, "big")]
    assert "in one SQS message" in report.rejected[0].message
    assert report.songs == 4 and all(len(b.encode()) <= 1500 for b in bodies)
    ids = [p.song.song_id for b in bodies for p in parse_message(b)[1]]
    assert ids == ["s0", "s1", "s2", "s3"]


# ---------------------------------------------------------------- DynamoDB's unprocessed keys and items


def _fake_http() -> Any:
    return SimpleNamespace(status_code=200, headers={})


def _as_parsed(value: Any) -> Any:
    """A request's wire JSON as botocore's parser would give it back (binary values as bytes)."""
    if isinstance(value, dict):
        if set(value) == {"B"}:
            return {"B": base64.b64decode(value["B"])}
        if set(value) == {"BS"}:
            return {"BS": [base64.b64decode(v) for v in value["BS"]]}
        return {k: _as_parsed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_parsed(v) for v in value]
    return value


def _refuse_first(table: Any, operation: str, times: int) -> list[int]:
    """Answer the first ``times`` calls of ``operation`` with everything unprocessed (as DynamoDB does
    under throttling), without sending them; returns the list of calls' sizes."""
    calls: list[int] = []

    def handler(params: dict[str, Any], **_: Any) -> Any:
        request = _as_parsed(json.loads(params["body"])["RequestItems"])
        calls.append(sum(len(v.get("Keys", v) if isinstance(v, dict) else v) for v in request.values()))
        if len(calls) > times:
            return None
        if operation == "BatchGetItem":
            return _fake_http(), {"Responses": {table.name: []}, "UnprocessedKeys": request}
        return _fake_http(), {"UnprocessedItems": request}

    table.meta.client.meta.events.register(f"before-call.dynamodb.{operation}", handler)
    return calls


def test_unprocessed_items_and_keys_are_sent_again(demo_classifier, songs_table, monkeypatch) -> None:
    monkeypatch.setattr("moodtune.catalog.ingest.time.sleep", lambda s: None)
    writes = _refuse_first(songs_table, "BatchWriteItem", times=2)
    reads = _refuse_first(songs_table, "BatchGetItem", times=1)
    report = ingest_entries(SongScorer(demo_classifier), songs_table, entries(6), group_songs=6)
    assert report.written == 6 and songs_table.scan()["Count"] == 6
    assert writes == [6, 6, 6] and reads == [6, 6]  # refused twice / once, then sent again whole


def test_keys_that_stay_unprocessed_are_a_store_error(songs_table, monkeypatch) -> None:
    from moodtune.catalog.store import StoreError, fetch_stored

    monkeypatch.setattr("moodtune.catalog.ingest.time.sleep", lambda s: None)
    calls = _refuse_first(songs_table, "BatchGetItem", times=100)
    with pytest.raises(StoreError, match="unprocessed after 8 attempts"):
        fetch_stored(songs_table, "v1", ["a", "b"])
    assert len(calls) == 8
