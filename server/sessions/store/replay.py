"""Sans-I/O pieces of the shared store: key names, the log's wire form, and the reader
that turns logged batches into the events a resuming client receives.

The log of a session is a sequence of *entries*; each entry is one batch of that
session's events (one ``XADD`` per session per flush, not one per token), encoded as a
JSON array. The reader de-duplicates by ``seq``, so reading the same entry twice (the
replay and the live follow overlap by design) never sends an event twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.errors import ErrorCode
from server.protocol.envelope import Envelope, EventType

__all__ = ["Keys", "LogReader", "decode_control", "encode_batch", "token_key"]


def token_key(token: str) -> str:
    """What the server keeps of a resume token, and looks sessions up by: its SHA-256, hex
    (the only hash of tokens, on every node and in the shared registry)."""
    return hashlib.sha256(token.encode()).hexdigest()


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

    def node(self, node: str) -> str:  # heartbeat; expires when the node stops beating
        return f"{self.prefix}node:{node}"

    def control(self, node: str) -> str:  # pub/sub channel of one node
        return f"{self.prefix}ctl:{node}"


def encode_batch(events: list[Envelope]) -> tuple[bytes, str]:
    """One log entry for ``events``, and the content text they add."""
    text = "".join(event["data"]["content"] for event in events if event["type"] == "content_chunk")
    return orjson.dumps(events), text


def decode_batch(raw: bytes) -> list[Envelope]:
    events: list[Envelope] = orjson.loads(raw)
    return events


def decode_control(raw: bytes | str) -> dict[str, Any] | None:
    """A control message, or None for anything malformed (a foreign publisher)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in ("op", "key")):
        return None
    return obj


@dataclass
class LogReader:
    """Follows one session's log for a client that has seen up to ``after_seq``."""

    session_id: str
    after_seq: int
    clock_ms: int = 0
    last_seq: int = field(init=False)
    ended: bool = field(default=False, init=False)
    _chunks: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.last_seq = self.after_seq

    def feed(self, raw_entries: list[bytes], text: str | None = None) -> list[Envelope]:
        """Events of ``raw_entries`` (in log order) not sent yet.

        On the first call ``text`` is the session's content so far: when the log no
        longer reaches back to ``after_seq + 1`` the events start with a recovery
        ``metadata{recovered: false, content_so_far}``, as the in-memory replay does."""
        logged = [e for raw in raw_entries for e in decode_batch(raw)]
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

    def node_lost(self) -> list[Envelope]:
        """What the client gets when the owner died before the session ended."""
        self.ended = True
        error = {
            "code": ErrorCode.NODE_LOST.value,
            "message": "the node running this session was lost",
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
