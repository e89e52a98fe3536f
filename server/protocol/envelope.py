"""The event envelope (PROTOCOL.md section 1) and the typed client messages.

Server events are plain dicts: they are built once per token and handed straight to the
encoder, so a dict is the cheapest honest representation. Client messages are parsed into
frozen dataclasses tagged by a Literal ``type`` so handlers can ``match`` on them and mypy
checks every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

__all__ = [
    "PROTOCOL_VERSION",
    "Cancel",
    "ClientMessage",
    "Envelope",
    "EventType",
    "Message",
    "Ping",
    "Resume",
    "Start",
    "connection_event",
]

PROTOCOL_VERSION = 1

Envelope: TypeAlias = dict[str, Any]
"""``{type, session?, seq?, timestamp, data}`` exactly as it goes on the wire."""


class EventType(StrEnum):
    """Server-to-client event types."""

    READY = "ready"
    PONG = "pong"
    GOAWAY = "goaway"
    ERROR = "error"
    STREAM_START = "stream_start"
    CONTENT_CHUNK = "content_chunk"
    METADATA = "metadata"
    CONTENT_COMPLETE = "content_complete"
    STREAM_END = "stream_end"


def connection_event(type_: EventType, data: dict[str, Any], timestamp_ms: int) -> Envelope:
    """A connection-level event: no ``session``, no ``seq``."""
    return {"type": type_.value, "timestamp": timestamp_ms, "data": data}


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Start:
    """Start a generation session on this connection."""

    session: str
    messages: tuple[Message, ...]
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    chunk_delay_ms: float = 0.0
    on_disconnect: Literal["cancel", "detach"] = "cancel"
    type: Literal["start"] = "start"


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a session; acknowledged by its ``stream_end{reason: cancelled}``."""

    session: str
    type: Literal["cancel"] = "cancel"


@dataclass(frozen=True, slots=True)
class Resume:
    """Re-attach to a detached session and replay what was missed."""

    session: str
    resume_token: str
    after_seq: int
    type: Literal["resume"] = "resume"


@dataclass(frozen=True, slots=True)
class Ping:
    """Liveness probe; answered by a ``pong`` echoing ``data``."""

    data: dict[str, Any]
    type: Literal["ping"] = "ping"


ClientMessage: TypeAlias = Start | Cancel | Resume | Ping
