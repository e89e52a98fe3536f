"""The event envelope (PROTOCOL.md section 1) and the typed client messages.

Server events are plain dicts: they are built once per token and handed straight to the
encoder, so a dict is the cheapest honest representation. Client messages are parsed into
frozen dataclasses tagged by a Literal ``type`` so handlers can ``match`` on them and mypy
checks every case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

__all__ = [
    "PROTOCOL_VERSION",
    "Cancel",
    "ClientMessage",
    "ContentPart",
    "Envelope",
    "EventType",
    "ImagePart",
    "Message",
    "NamedTool",
    "Ping",
    "Reasoning",
    "ReasoningConfig",
    "Resume",
    "Role",
    "Start",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "Unwatch",
    "Watch",
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
    REASONING_CHUNK = "reasoning_chunk"
    TOOL_CALL_START = "tool_call_start"
    TOOL_CALL_DELTA = "tool_call_delta"
    TOOL_CALL_END = "tool_call_end"
    SOURCE = "source"
    METADATA = "metadata"
    CONTENT_COMPLETE = "content_complete"
    STREAM_END = "stream_end"


def connection_event(type_: EventType, data: dict[str, Any], timestamp_ms: int) -> Envelope:
    """A connection-level event: no ``session``, no ``seq``."""
    return {"type": type_.value, "timestamp": timestamp_ms, "data": data}


Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text part of a turn's content."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL: ``https://…`` or ``data:<media type>;base64,<data>``."""

    url: str

    @property
    def inline(self) -> tuple[str, str] | None:
        """``(media type, base64 data)`` of a data URL; None for a fetchable URL."""
        if not self.url.startswith("data:"):
            return None
        head, _, data = self.url[5:].partition(",")
        return head.removesuffix(";base64"), data


ContentPart: TypeAlias = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made, as an assistant turn sends it back.

    ``signature`` is a provider's opaque token on the call (Gemini's thought signature).
    """

    id: str
    name: str
    arguments: Mapping[str, Any]
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Reasoning:
    """An assistant turn's reasoning, with the provider's signature when it signs it."""

    text: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation.

    ``content`` is the turn's text (its text parts joined); ``parts`` keeps the parts in
    order when the client sent a list (with images), and is empty for plain text.
    """

    role: Role
    content: str
    parts: tuple[ContentPart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: Reasoning | None = None
    tool_call_id: str | None = None  # a tool turn: the call it answers

    @property
    def content_parts(self) -> tuple[ContentPart, ...]:
        """The content as parts, whichever way it was sent."""
        if self.parts:
            return self.parts
        return (TextPart(self.content),) if self.content else ()


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    parameters: Mapping[str, Any]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class NamedTool:
    """``tool_choice: {name}``: the model must call this tool."""

    name: str


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedTool


@dataclass(frozen=True, slots=True)
class ReasoningConfig:
    """The request's ``reasoning``: an effort, a token budget, or off (``enabled=False``)."""

    effort: Literal["low", "medium", "high"] | None = None
    budget_tokens: int | None = None
    enabled: bool = True


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
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    reasoning: ReasoningConfig | None = None
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
class Watch:
    """Read a session as one more reader, without taking it over (PROTOCOL.md §12)."""

    session: str
    resume_token: str
    after_seq: int
    type: Literal["watch"] = "watch"


@dataclass(frozen=True, slots=True)
class Unwatch:
    """Stop reading a watched session; the session goes on."""

    session: str
    type: Literal["unwatch"] = "unwatch"


@dataclass(frozen=True, slots=True)
class Ping:
    """Liveness probe; answered by a ``pong`` echoing ``data``."""

    data: dict[str, Any]
    type: Literal["ping"] = "ping"


ClientMessage: TypeAlias = Start | Cancel | Resume | Watch | Unwatch | Ping
