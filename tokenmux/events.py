"""Typed events: one frozen dataclass per event type of PROTOCOL.md sections 2, 3 and 9.

``parse_event(envelope)`` turns a decoded envelope of a session into its event object.
Every event keeps the envelope's ``session``, ``seq`` and ``timestamp``, and its payload as
``data`` (so fields a newer server adds are never lost). An event type this client does not
know becomes an ``UnknownEvent``, as the protocol asks of clients. A known type whose
required fields are missing or mistyped is a server bug: ``BadResponse``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tokenmux.errors import BadResponse, TokenmuxError, error_from_payload

__all__ = [
    "ContentChunk",
    "ContentComplete",
    "ErrorEvent",
    "Event",
    "GoAway",
    "Metadata",
    "Ready",
    "Reasoning",
    "ReasoningChunk",
    "Source",
    "StreamEnd",
    "StreamStart",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "UnknownEvent",
    "Usage",
    "parse_event",
    "parse_ready",
]

EndReason = Literal["complete", "cancelled", "error", "timeout", "shutdown"]
_END_REASONS = ("complete", "cancelled", "error", "timeout", "shutdown")
_T = TypeVar("_T")
_Parser = Callable[["_Fields", dict[str, Any]], "Event"]
_MISSING: Any = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts; ``estimated`` when the provider never reported them (e.g. on cancel)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    estimated: bool = False
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reasoning:
    """The whole reasoning of a reply, with the provider's signature when it signs it."""

    text: str
    signature: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A finished tool call as ``content_complete`` lists it."""

    id: str
    name: str
    arguments: Mapping[str, Any] | None
    signature: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every event of a session has."""

    type: str
    session: str
    seq: int
    timestamp: int = 0
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStart(Event):
    type: str = field(default="stream_start", init=False)
    session_id: str
    provider: str
    model: str
    resume_token: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentChunk(Event):
    type: str = field(default="content_chunk", init=False)
    content: str
    index: int
    accumulated_length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningChunk(Event):
    """Visible reasoning; ``index`` and ``accumulated_length`` count reasoning alone."""

    type: str = field(default="reasoning_chunk", init=False)
    content: str
    index: int
    accumulated_length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallStart(Event):
    type: str = field(default="tool_call_start", init=False)
    id: str
    name: str
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta(Event):
    """A fragment of the call's JSON arguments text."""

    type: str = field(default="tool_call_delta", init=False)
    id: str
    arguments_delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallEnd(Event):
    """The parsed arguments; when they did not parse, ``arguments`` is None,
    ``arguments_text`` holds the raw text and ``error`` is ``"invalid_json"``."""

    type: str = field(default="tool_call_end", init=False)
    id: str
    name: str
    arguments: Mapping[str, Any] | None
    arguments_text: str | None = None
    error: str | None = None
    signature: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Source(Event):
    """A citation or grounding source."""

    type: str = field(default="source", init=False)
    url: str | None = None
    title: str | None = None
    cited_text: str | None = None
    document_index: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata(Event):
    """Usage, finish reason, model, time to first token, refusal, or a recovery notice.

    ``recovered`` is False when a resume could not replay everything: then
    ``content_so_far`` is all text before the first event replayed. Keys this class does
    not name are in ``extra``."""

    type: str = field(default="metadata", init=False)
    usage: Usage | None = None
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    model: str | None = None
    ttft_ms: int | None = None
    refusal: str | None = None
    recovered: bool = True
    content_so_far: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentComplete(Event):
    type: str = field(default="content_complete", init=False)
    total_content: str
    total_length: int
    reasoning: Reasoning | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(Event):
    """The session failed; ``stream_end{reason: "error"}`` follows."""

    type: str = field(default="error", init=False)
    code: str
    message: str
    retryable: bool

    def exception(self) -> TokenmuxError:
        """This error as the typed exception (``ProviderError``, ``ServerError``, ...)."""
        return error_from_payload(self.data, session=self.session)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnd(Event):
    """Always the last event of a session; ``chunks`` counts its ``content_chunk`` events."""

    type: str = field(default="stream_end", init=False)
    reason: EndReason
    duration_ms: int | None = None
    chunks: int = 0
    usage: Usage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An event type this client does not know; its payload is in ``data``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """The connection-level ``ready`` event: what the server offers."""

    protocol: int
    server: str
    encoding: str
    providers: tuple[str, ...]
    default_provider: str | None
    limits: Mapping[str, Any] = field(default_factory=dict, compare=False)
    resume: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway:
    """The server is shutting down; sessions get ``stream_end{shutdown}`` within ``drain_ms``."""

    reason: str
    drain_ms: int | None = None


def parse_event(envelope: Mapping[str, Any]) -> Event:
    """The typed event of one decoded session envelope. Raises BadResponse."""
    type_ = envelope.get("type")
    session = envelope.get("session")
    seq = envelope.get("seq")
    data = envelope.get("data", {})
    if not (isinstance(type_, str) and isinstance(session, str)):
        raise BadResponse("bad_response", f"an event without type or session: {envelope!r}")
    if not (isinstance(seq, int) and not isinstance(seq, bool)) or not isinstance(data, Mapping):
        raise BadResponse("bad_response", f"{type_} event without an integer seq or a data object")
    timestamp = envelope.get("timestamp")
    common: dict[str, Any] = {
        "session": session,
        "seq": seq,
        "timestamp": timestamp if isinstance(timestamp, int) else 0,
        "data": data,
    }
    parse = _PARSERS.get(type_)
    if parse is None:
        return UnknownEvent(type=type_, **common)
    try:
        return parse(_Fields(type_, data), common)
    except (TypeError, ValueError) as exc:
        raise BadResponse("bad_response", f"{type_} event: {exc}", session=session) from exc


def parse_ready(data: Mapping[str, Any]) -> Ready:
    """The ``ready`` payload. Raises BadResponse."""
    fields = _Fields("ready", data)
    try:
        return Ready(
            protocol=fields.integer("protocol"),
            server=fields.text("server"),
            encoding=fields.text("encoding"),
            providers=tuple(fields.items("providers", str)),
            default_provider=fields.text("default_provider", None),
            limits=fields.obj("limits", {}),
            resume=fields.obj("resume", {}),
        )
    except (TypeError, ValueError) as exc:
        raise BadResponse("bad_response", f"ready event: {exc}") from exc


class _Fields:
    """Typed reads from a payload; a missing required field or a wrong type is a ValueError."""

    def __init__(self, type_: str, data: Mapping[str, Any]) -> None:
        self.type = type_
        self.data = data

    def _get(self, key: str, kinds: type | tuple[type, ...], default: Any) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or (value is None and default is not _MISSING):
            if default is _MISSING:
                raise ValueError(f"data.{key} is missing")
            return default
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
            raise ValueError(f"data.{key} is not {_names(kinds)}: {value!r}")
        return value

    def text(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, str, default)

    def integer(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, int, default)

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, bool, default)

    def obj(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, Mapping, default)

    def items(self, key: str, item: type[_T], default: Any = _MISSING) -> list[_T]:
        values = self._get(key, list, default)
        if not all(isinstance(v, item) for v in values):
            raise ValueError(f"data.{key} holds something other than {item.__name__}")
        return list(values)


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _tuple(kinds))


def _usage(value: Any) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"usage is not an object: {value!r}")
    fields = _Fields("usage", value)
    return Usage(
        input_tokens=fields.integer("input_tokens", None),
        output_tokens=fields.integer("output_tokens", None),
        estimated=fields.flag("estimated", False),
        cached_input_tokens=fields.integer("cached_input_tokens", None),
        reasoning_tokens=fields.integer("reasoning_tokens", None),
    )


def _stream_start(f: _Fields, common: dict[str, Any]) -> Event:
    return StreamStart(
        session_id=f.text("session_id"),
        provider=f.text("provider"),
        model=f.text("model"),
        resume_token=f.text("resume_token", None),
        **common,
    )


def _chunk(cls: type[ContentChunk] | type[ReasoningChunk]) -> _Parser:
    def parse(f: _Fields, common: dict[str, Any]) -> Event:
        return cls(
            content=f.text("content"),
            index=f.integer("index"),
            accumulated_length=f.integer("accumulated_length"),
            **common,
        )

    return parse


def _tool_call_start(f: _Fields, common: dict[str, Any]) -> Event:
    return ToolCallStart(id=f.text("id"), name=f.text("name"), index=f.integer("index"), **common)


def _tool_call_delta(f: _Fields, common: dict[str, Any]) -> Event:
    return ToolCallDelta(id=f.text("id"), arguments_delta=f.text("arguments_delta"), **common)


def _tool_call_end(f: _Fields, common: dict[str, Any]) -> Event:
    return ToolCallEnd(
        id=f.text("id"),
        name=f.text("name"),
        arguments=f.obj("arguments", None),
        arguments_text=f.text("arguments_text", None),
        error=f.text("error", None),
        signature=f.text("signature", None),
        **common,
    )


def _source(f: _Fields, common: dict[str, Any]) -> Event:
    return Source(
        url=f.text("url", None),
        title=f.text("title", None),
        cited_text=f.text("cited_text", None),
        document_index=f.integer("document_index", None),
        **common,
    )


_METADATA_KEYS = frozenset(
    {
        "usage",
        "finish_reason",
        "raw_finish_reason",
        "model",
        "ttft_ms",
        "refusal",
        "recovered",
        "content_so_far",
    }
)


def _metadata(f: _Fields, common: dict[str, Any]) -> Event:
    return Metadata(
        usage=_usage(f.data.get("usage")),
        finish_reason=f.text("finish_reason", None),
        raw_finish_reason=f.text("raw_finish_reason", None),
        model=f.text("model", None),
        ttft_ms=f.integer("ttft_ms", None),
        refusal=f.text("refusal", None),
        recovered=f.flag("recovered", True),
        content_so_far=f.text("content_so_far", None),
        extra={k: v for k, v in f.data.items() if k not in _METADATA_KEYS},
        **common,
    )


def _content_complete(f: _Fields, common: dict[str, Any]) -> Event:
    reasoning = f.obj("reasoning", None)
    calls = f.items("tool_calls", dict, [])
    return ContentComplete(
        total_content=f.text("total_content"),
        total_length=f.integer("total_length"),
        reasoning=None if reasoning is None else _reasoning(_Fields("reasoning", reasoning)),
        tool_calls=tuple(_tool_call(_Fields("tool_calls[]", call)) for call in calls),
        **common,
    )


def _reasoning(f: _Fields) -> Reasoning:
    return Reasoning(text=f.text("text"), signature=f.text("signature", None))


def _tool_call(f: _Fields) -> ToolCall:
    return ToolCall(
        id=f.text("id"),
        name=f.text("name"),
        arguments=f.obj("arguments", None),
        signature=f.text("signature", None),
    )


def _error(f: _Fields, common: dict[str, Any]) -> Event:
    code = f.text("code")
    return ErrorEvent(
        code=code,
        message=f.text("message", code),
        retryable=f.flag("retryable", error_from_payload({"code": code}).retryable),
        **common,
    )


def _stream_end(f: _Fields, common: dict[str, Any]) -> Event:
    reason = f.text("reason")
    if reason not in _END_REASONS:
        raise ValueError(f"data.reason is not one of {', '.join(_END_REASONS)}: {reason!r}")
    return StreamEnd(
        reason=reason,
        duration_ms=f.integer("duration_ms", None),
        chunks=f.integer("chunks", 0),
        usage=_usage(f.data.get("usage")),
        **common,
    )


_PARSERS: dict[str, _Parser] = {
    "stream_start": _stream_start,
    "content_chunk": _chunk(ContentChunk),
    "reasoning_chunk": _chunk(ReasoningChunk),
    "tool_call_start": _tool_call_start,
    "tool_call_delta": _tool_call_delta,
    "tool_call_end": _tool_call_end,
    "source": _source,
    "metadata": _metadata,
    "content_complete": _content_complete,
    "error": _error,
    "stream_end": _stream_end,
}
