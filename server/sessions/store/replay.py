"""Sans-I/O pieces of the shared store: key names, the log's wire form, and the reader
that turns logged batches into the events a resuming client receives.

The log of a session is a sequence of *entries*; each entry is one batch of that
session's events (one ``XADD`` per session per flush, not one per token), encoded as a
JSON array. The reader de-duplicates by ``seq``, so reading the same entry twice (the
replay and the live follow overlap by design) never sends an event twice.

Between the events sit *takeover marks*, ``{"attach": <epoch>, "by": <holder>}`` (and
``"ticket": <n>`` for a relay's): the owner writes one at the exact point where a new
reader took the session over (a relay on another node, or a resume on the owner itself).
A relay that reads a mark of a newer resume than its own stops there: after a takeover the
old reader receives nothing more. Relays are ordered by their tickets, which the store
hands out in the order relays ask for them; a resume on the owner by its epoch, which the
relay compares with the one it saw in the registry. The log never holds a resume token:
``stream_start`` is logged without it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.errors import ErrorCode
from server.protocol.envelope import Envelope, EventType

__all__ = [
    "WATCHING",
    "Keys",
    "LogReader",
    "attach_mark",
    "decode_control",
    "encode_batch",
    "issued_at",
    "new_token",
    "shareable",
    "token_key",
]

_STAMP_BYTES = 6  # milliseconds since the epoch, big-endian: good until the year 10889
_RANDOM_BYTES = 24


def token_key(token: str) -> str:
    """What the server keeps of a resume token, and looks sessions up by: its SHA-256, hex
    (the only hash of tokens, on every node and in the shared registry)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(now_s: float) -> str:
    """A resume token: 24 random bytes after the time it was issued, URL-safe base64.

    The time lets another node that does not find the token yet tell a token too new to be
    registered (wait for it) from an unknown one (refuse at once)."""
    stamp = round(now_s * 1000).to_bytes(_STAMP_BYTES, "big")
    return base64.urlsafe_b64encode(stamp + secrets.token_bytes(_RANDOM_BYTES)).decode()


def issued_at(token: str) -> float | None:
    """When ``token`` says it was issued (seconds), or None if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) != _STAMP_BYTES + _RANDOM_BYTES:
        return None
    return int.from_bytes(raw[:_STAMP_BYTES], "big") / 1000


def shareable(envelope: Envelope) -> Envelope:
    """``envelope`` as the shared log may hold it: a ``stream_start`` without its token."""
    if envelope["type"] != "stream_start" or "resume_token" not in envelope["data"]:
        return envelope
    data = {k: v for k, v in envelope["data"].items() if k != "resume_token"}
    return {**envelope, "data": data}


def attach_mark(epoch: int, holder: str, ticket: int | None = None) -> dict[str, Any]:
    """The log item recording that ``holder`` took the session over at ``epoch`` (a relay,
    with its ``ticket``; None: a resume on the owner)."""
    mark: dict[str, Any] = {"attach": epoch, "by": holder}
    if ticket is not None:
        mark["ticket"] = ticket
    return mark


@dataclass(frozen=True, slots=True)
class Keys:
    """Every Redis key and channel name, under one prefix."""

    prefix: str

    def entry(self, key: str) -> str:  # hash: id, node, state
        return f"{self.prefix}s:{key}"

    def log(self, key: str) -> str:  # stream of event batches
        return f"{self.prefix}log:{key}"

    def text(self, key: str) -> str:  # the whole content so far (for recovered: false)
        return f"{self.prefix}text:{key}"

    def http(self, session_id: str) -> str:  # owner node of an SSE/HTTP session id
        return f"{self.prefix}http:{session_id}"

    def chat(self, chat_id: str) -> str:  # a detached /api/chat answer: token hash, message id
        return f"{self.prefix}chat:{chat_id}"

    def node(self, node: str) -> str:  # heartbeat; expires when the node stops beating
        return f"{self.prefix}node:{node}"

    def control(self, node: str) -> str:  # pub/sub channel of one node
        return f"{self.prefix}ctl:{node}"


def encode_batch(items: list[Envelope]) -> tuple[bytes, str]:
    """One log entry for ``items`` (events and takeover marks), and the text they add."""
    text = "".join(e["data"]["content"] for e in items if e.get("type") == "content_chunk")
    return orjson.dumps(items), text


def decode_batch(raw: bytes) -> list[Envelope]:
    items: list[Envelope] = orjson.loads(raw)
    return items


def decode_control(raw: bytes | str) -> dict[str, Any] | None:
    """A control message, or None for anything malformed (a foreign publisher)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in ("op", "key")):
        return None
    return obj


WATCHING = "*watching"
"""The holder of a reader that only watches (PROTOCOL.md §12): takeovers do not end it."""


@dataclass
class LogReader:
    """Follows one session's log for a client that has seen up to ``after_seq``.

    ``epoch`` is the takeover epoch the registry showed when this reader attached,
    ``holder`` the name its attach carried and ``ticket`` its ticket (None: it sent no
    attach). A mark of a newer resume by anyone else ends the reading (``superseded``) at
    that mark: a relay's with a later ticket, or the owner's with a later epoch (for a
    reader without a ticket, any mark with a later epoch)."""

    session_id: str
    after_seq: int
    clock_ms: int = 0
    epoch: int = 0
    holder: str | None = None
    ticket: int | None = None
    last_seq: int = field(init=False)
    ended: bool = field(default=False, init=False)
    superseded: bool = field(default=False, init=False)
    _chunks: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.last_seq = self.after_seq

    @property
    def done(self) -> bool:
        return self.ended or self.superseded

    def feed(self, raw_entries: list[bytes], text: str | None = None) -> list[Envelope]:
        """Events of ``raw_entries`` (in log order) not sent yet.

        On the first call ``text`` is the session's content so far: when the log no
        longer reaches back to ``after_seq + 1`` the events start with a recovery
        ``metadata{recovered: false, content_so_far}``, as the in-memory replay does."""
        logged = []
        for raw in raw_entries:
            for item in decode_batch(raw):
                if "attach" not in item:
                    logged.append(item)
                elif self._newer(item):
                    self.superseded = True  # taken over: nothing after this mark is ours
                    break
            if self.superseded:
                break
        for event in logged:
            if event["type"] == "content_chunk":
                self._chunks = max(self._chunks, event["data"]["index"] + 1)
        events = [e for e in logged if e["seq"] > self.last_seq]
        out: list[Envelope] = []
        if not self._started:
            self._started = True
            if events and events[0]["seq"] > self.after_seq + 1:
                out.append(self._recovery(events, text or ""))
        for event in events:
            if event["seq"] <= self.last_seq:
                continue
            self.last_seq = event["seq"]
            out.append(event)
            if event["type"] == "stream_end":
                self.ended = True
                break
        return out

    def _newer(self, mark: dict[str, Any]) -> bool:
        """True if ``mark`` is a takeover by a resume newer than this reader's."""
        if self.holder == WATCHING or mark["by"] == self.holder:
            return False
        if self.ticket is not None and "ticket" in mark:
            return bool(mark["ticket"] > self.ticket)  # a relay that resumed later
        return bool(mark["attach"] > self.epoch)  # a takeover this reader did not see

    def node_lost(self, message: str = "the node running this session was lost") -> list[Envelope]:
        """What the client gets when the owner died (or its shared log was dropped) before
        the session ended."""
        self.ended = True
        error = {
            "code": ErrorCode.NODE_LOST.value,
            "message": message,
            "retryable": True,
        }
        end = {
            "reason": "error",
            "duration_ms": 0,
            "chunks": self._chunks,
            "usage": {"input_tokens": 0, "output_tokens": 0, "estimated": True},
        }
        return [self._event(EventType.ERROR, error), self._event(EventType.STREAM_END, end)]

    def _event(self, type_: EventType, data: dict[str, Any]) -> Envelope:
        self.last_seq += 1
        return {
            "type": type_.value,
            "session": self.session_id,
            "seq": self.last_seq,
            "timestamp": self.clock_ms,
            "data": data,
        }

    def _recovery(self, events: list[Envelope], text: str) -> Envelope:
        before = len(text)
        for event in events:
            if event["type"] == "content_chunk":
                data = event["data"]
                before = int(data["accumulated_length"]) - len(data["content"])
                break
        return {
            "type": EventType.METADATA.value,
            "session": self.session_id,
            "seq": events[0]["seq"] - 1,
            "timestamp": self.clock_ms,
            "data": {"recovered": False, "content_so_far": text[:before]},
        }
