"""The AWS fan-out of ingestion: a catalog file is cut into SQS messages of songs for the workers.

``split_catalog`` checks every line with ``moodtune.catalog.ingest.parse_catalog`` (so bad lines are reported
once, by line number, at upload time) and packs the valid songs into message bodies of at most
``songs_per_message`` songs and ``max_message_bytes`` bytes; a song that cannot fit in one message on
its own is a rejected line, never a message SQS would refuse. ``SqsSender`` sends bodies with
SendMessageBatch and resends the entries SQS reports as failed. ``parse_message`` is the worker's side.

Delivery is at least once (a re-sent message, a retried upload event): the workers' content-hash check
makes a second delivery a no-op, so nothing is scored or written twice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moodtune.catalog.ingest import (
    MAX_LYRICS_BYTES,
    CatalogEntry,
    Parsed,
    Rejected,
    parse_catalog,
    validate_song,
)

MESSAGE_FORMAT = 1
SONGS_PER_MESSAGE = 25
# SQS takes 256 KiB per message and per SendMessageBatch call; keep a margin for attributes.
MAX_MESSAGE_BYTES = 240 * 1024
_SQS_BATCH_ENTRIES = 10
_SEND_ATTEMPTS = 5


class MessageSong(BaseModel):
    """One song in a message: its catalog line (for reports) and the song as the splitter checked it."""

    model_config = ConfigDict(extra="forbid")

    line: int = Field(ge=1)
    song: dict[str, Any]


class IngestMessage(BaseModel):
    """The body of one ingestion message."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1]
    source: str = Field(min_length=1, max_length=2048)
    songs: list[MessageSong] = Field(min_length=1)


class MessageError(ValueError):
    """A message body that is not an ingestion message: the worker fails that record alone."""


def _song_json(entry: CatalogEntry) -> str:
    return json.dumps(
        {"line": entry.line, "song": entry.song.model_dump(mode="json", exclude_none=True)},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _envelope(source: str, songs_json: Sequence[str]) -> str:
    head = json.dumps({"format": MESSAGE_FORMAT, "source": source}, ensure_ascii=False, separators=(",", ":"))
    return f'{head[:-1]},"songs":[{",".join(songs_json)}]}}'


def encode_message(source: str, entries: Sequence[CatalogEntry]) -> str:
    """The JSON body of a message carrying ``entries`` (Korean as UTF-8: half the bytes of \\u escapes)."""
    return _envelope(source, [_song_json(e) for e in entries])


def parse_message(body: str, max_lyrics_bytes: int = MAX_LYRICS_BYTES) -> tuple[str, list[Parsed]]:
    """The source and the songs of a message body; each song is checked again (``Rejected`` if bad).

    Raises ``MessageError`` when the body itself is not an ingestion message.
    """
    try:
        message = IngestMessage.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise MessageError(f"not an ingestion message: {where}: {first['msg']}") from None
    return message.source, [validate_song(s.song, s.line, max_lyrics_bytes) for s in message.songs]


@dataclass
class SplitReport:
    """What the splitter did with one catalog file."""

    source: str
    songs: int = 0
    messages: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "songs": self.songs,
            "messages": self.messages,
            "skipped": len(self.rejected),
            "rejected": [r.as_dict() for r in self.rejected],
        }


def split_catalog(
    lines: Iterable[bytes],
    source: str,
    send: Callable[[list[str]], None],
    *,
    songs_per_message: int = SONGS_PER_MESSAGE,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    max_lyrics_bytes: int = MAX_LYRICS_BYTES,
    send_every: int = _SQS_BATCH_ENTRIES,
) -> SplitReport:
    """Check catalog lines and hand message bodies to ``send``, ``send_every`` bodies at a time."""
    report = SplitReport(source=source)
    overhead = len(_envelope(source, []).encode("utf-8"))
    pending: list[str] = []
    current: list[str] = []
    current_bytes = overhead

    def flush_message() -> None:
        nonlocal current_bytes
        if current:
            pending.append(_envelope(source, current))
            report.messages += 1
            current.clear()
            current_bytes = overhead
        if len(pending) >= send_every:
            send(pending[:])
            pending.clear()

    for parsed in parse_catalog(lines, max_lyrics_bytes=max_lyrics_bytes):
        if isinstance(parsed, Rejected):
            report.rejected.append(parsed)
            continue
        song_json = _song_json(parsed)
        size = len(song_json.encode("utf-8")) + 1  # and a comma
        if overhead + size > max_message_bytes:
            # SQS would refuse the message, and a retried split would die at this line every time.
            report.rejected.append(
                Rejected(
                    parsed.line,
                    None,
                    f"the song is {size - 1:,} bytes in a message, over the room of "
                    f"{max_message_bytes - overhead - 1:,} bytes in one SQS message",
                    parsed.song.song_id,
                )
            )
            continue
        report.songs += 1
        if current and current_bytes + size > max_message_bytes:
            flush_message()
        current.append(song_json)
        current_bytes += size
        if len(current) >= songs_per_message:
            flush_message()
    flush_message()
    if pending:
        send(pending)
    return report


class SqsSender:
    """Sends message bodies to one queue with SendMessageBatch (10 entries and 256 KiB per call at most)
    and resends the entries SQS reports as failed, with a growing pause between attempts."""

    def __init__(self, client: Any, queue_url: str, max_call_bytes: int = 256 * 1024) -> None:
        self.client = client
        self.queue_url = queue_url
        self.max_call_bytes = max_call_bytes
        self.sent = 0

    def _calls(self, bodies: Sequence[str]) -> Iterable[list[str]]:
        call: list[str] = []
        size = 0
        for body in bodies:
            n = len(body.encode("utf-8"))
            if call and (len(call) == _SQS_BATCH_ENTRIES or size + n > self.max_call_bytes):
                yield call
                call, size = [], 0
            call.append(body)
            size += n
        if call:
            yield call

    def send(self, bodies: Sequence[str]) -> None:
        """Send every body; raise ``RuntimeError`` if some still fail after the retries."""
        for call in self._calls(bodies):
            entries = {uuid.uuid4().hex: body for body in call}
            for attempt in range(_SEND_ATTEMPTS):
                answer = self.client.send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": key, "MessageBody": body} for key, body in entries.items()],
                )
                for ok in answer.get("Successful", []):
                    entries.pop(ok["Id"], None)
                    self.sent += 1
                failed = answer.get("Failed", [])
                sender_faults = [f for f in failed if f.get("SenderFault")]
                if sender_faults:
                    raise RuntimeError(f"SQS refused a message: {sender_faults[0].get('Message', '')}")
                if not entries:
                    break
                time.sleep(min(0.1 * 2**attempt, 2.0))
            else:
                raise RuntimeError(f"SQS failed {len(entries)} message(s) after {_SEND_ATTEMPTS} attempts")
