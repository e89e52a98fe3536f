"""Turn a decoded client object into a typed ClientMessage, or say exactly what is wrong.

``parse_client_message`` raises ProtocolError and nothing else. Each error names the field
(``data.prompt``, ``session``) so a client author can fix the request from the message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, cast

from server.errors import ErrorCode, ProtocolError
from server.protocol.envelope import Cancel, ClientMessage, Message, Ping, Resume, Start

__all__ = [
    "InputLimits",
    "message_ref",
    "parse_client_message",
    "parse_http_request",
    "parse_messages",
    "parse_params",
    "validate_session_id",
]

SESSION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ROLES = frozenset({"system", "user", "assistant"})
MAX_CHUNK_DELAY_MS = 10_000.0


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Size limits that validation enforces (from config ``limits``)."""

    max_prompt_chars: int = 100_000
    max_messages: int = 256


def _invalid(field: str, why: str) -> ProtocolError:
    return ProtocolError(f"{field}: {why}", code=ErrorCode.INVALID_FIELD)


def validate_session_id(value: Any, field: str = "session") -> str:
    if not isinstance(value, str) or SESSION_ID.fullmatch(value) is None:
        raise _invalid(field, "must be 1-64 characters of A-Za-z0-9_.:-")
    return value


def message_ref(obj: Any) -> dict[str, Any]:
    """The ``ref`` of a connection-level error answering ``obj`` (PROTOCOL.md section 8)."""
    ref: dict[str, Any] = {}
    if isinstance(obj, dict):
        if isinstance(obj.get("type"), str):
            ref["type"] = obj["type"]
        if "session" in obj and isinstance(obj["session"], str | int | float):
            ref["session"] = obj["session"]
    return ref


def parse_client_message(obj: Any, limits: InputLimits) -> ClientMessage:
    """Validate one decoded frame. Raises ProtocolError with a stable code."""
    if not isinstance(obj, dict):
        raise ProtocolError("a message must be an object", code=ErrorCode.BAD_REQUEST)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise _invalid("type", "must be a string")
    data = obj.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _invalid("data", "must be an object")
    match kind:
        case "start":
            return _parse_start(obj, data, limits)
        case "cancel":
            if "session" not in obj:
                raise _invalid("session", "is required")
            return Cancel(session=validate_session_id(obj["session"]))
        case "resume":
            return _parse_resume(obj, data)
        case "ping":
            return Ping(data=data)
    raise ProtocolError(f"unknown message type {kind[:64]!r}", code=ErrorCode.UNKNOWN_TYPE)


def _parse_start(obj: dict[str, Any], data: dict[str, Any], limits: InputLimits) -> Start:
    session = validate_session_id(obj.get("session"))
    return Start(
        session=session,
        messages=parse_messages(data, limits, prefix="data."),
        provider=_optional_str(data, "provider", "data.provider"),
        model=_optional_str(data, "model", "data.model"),
        system=_optional_str(data, "system", "data.system"),
        params=parse_params(data.get("params"), "data.params"),
        chunk_delay_ms=_chunk_delay_ms(data.get("chunk_delay_ms"), "data.chunk_delay_ms"),
        on_disconnect=_on_disconnect(data.get("on_disconnect")),
    )


def _parse_resume(obj: dict[str, Any], data: dict[str, Any]) -> Resume:
    session = validate_session_id(obj.get("session"))
    token = data.get("resume_token")
    if not isinstance(token, str) or not token:
        raise _invalid("data.resume_token", "must be a non-empty string")
    after = data.get("after_seq", -1)
    if not _is_int(after) or after < -1:
        raise _invalid("data.after_seq", "must be an integer >= -1")
    return Resume(session=session, resume_token=token, after_seq=after)


def parse_messages(
    data: dict[str, Any], limits: InputLimits, *, prefix: str
) -> tuple[Message, ...]:
    """Read ``messages`` and/or ``prompt``; a prompt is appended as the last user turn."""
    turns: list[Message] = []
    raw = data.get("messages")
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise _invalid(f"{prefix}messages", "must be a non-empty list")
        if len(raw) > limits.max_messages:
            raise _invalid(f"{prefix}messages", f"at most {limits.max_messages} messages")
        turns.extend(_message(item, f"{prefix}messages[{i}]") for i, item in enumerate(raw))
    prompt = data.get("prompt")
    if prompt is not None or raw is None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid(f"{prefix}prompt", "must be a non-empty string")
        turns.append(Message("user", prompt))
    total = sum(len(turn.content) for turn in turns)
    if total > limits.max_prompt_chars:
        raise _invalid(f"{prefix}prompt", f"longer than {limits.max_prompt_chars} characters")
    return tuple(turns)


def _message(item: Any, field: str) -> Message:
    if not isinstance(item, dict):
        raise _invalid(field, "must be an object {role, content}")
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        raise _invalid(f"{field}.role", "must be one of system, user, assistant")
    if not isinstance(content, str):
        raise _invalid(f"{field}.content", "must be a string")
    return Message(cast(Literal["system", "user", "assistant"], role), content)


# Known generation parameters and their checks; unknown keys pass through to the provider.
_NUMBER_PARAMS = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "tokens_per_second": (0.0, 1e6),
    "ttft_ms": (0.0, 600_000.0),
}
_INT_PARAMS = {
    "max_tokens": (1, 1_000_000),
    "fail_at": (0, 1_000_000),
    "hang_at": (0, 1_000_000),
    "burst": (1, 1_000_000),
    "top_k": (1, 1_000_000),
    "seed": (-(2**63), 2**63 - 1),
}


def parse_params(raw: Any, field: str) -> dict[str, Any]:
    """Check the known generation parameters; keep the rest for the provider."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid(field, "must be an object")
    for key, value in raw.items():
        if key in _NUMBER_PARAMS:
            low, high = _NUMBER_PARAMS[key]
            if not _is_number(value) or not low <= value <= high:
                raise _invalid(f"{field}.{key}", f"must be a number from {low:g} to {high:g}")
        elif key in _INT_PARAMS:
            ilow, ihigh = _INT_PARAMS[key]
            if not _is_int(value) or not ilow <= value <= ihigh:
                raise _invalid(f"{field}.{key}", f"must be an integer from {ilow} to {ihigh}")
        elif key == "model" and not isinstance(value, str):
            raise _invalid(f"{field}.model", "must be a string")
    return dict(raw)


def _optional_str(data: dict[str, Any], key: str, field: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise _invalid(field, "must be a non-empty string")
    return value


def _chunk_delay_ms(value: Any, field: str) -> float:
    if value is None:
        return 0.0
    if not _is_number(value) or not 0 <= value <= MAX_CHUNK_DELAY_MS:
        raise _invalid(field, f"must be a number of milliseconds from 0 to {MAX_CHUNK_DELAY_MS:g}")
    return float(value)


def _on_disconnect(value: Any, field: str = "data.on_disconnect") -> Literal["cancel", "detach"]:
    if value is None or value == "cancel":
        return "cancel"
    if value == "detach":
        return "detach"
    raise _invalid(field, 'must be "cancel" or "detach"')


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


MAX_SSE_CHUNK_DELAY_S = MAX_CHUNK_DELAY_MS / 1000


def parse_http_request(obj: Any, limits: InputLimits, *, default_session: str) -> Start:
    """Read a ``POST /api/stream`` (or ``/api/completion``) body into a Start.

    Body: ``{prompt | messages, provider?, session_id?, system?, llm_params?, chunk_delay?}``.
    ``llm_params`` plays the part of WS ``data.params`` (its ``model`` picks the model);
    ``chunk_delay`` is in seconds, as the reference clients send it.
    """
    if not isinstance(obj, dict):
        raise ProtocolError("the request body must be a JSON object")
    session = obj.get("session_id")
    session = default_session if session is None else validate_session_id(session, "session_id")
    params = parse_params(obj.get("llm_params"), "llm_params")
    delay = obj.get("chunk_delay")
    if delay is not None and (not _is_number(delay) or not 0 <= delay <= MAX_SSE_CHUNK_DELAY_S):
        raise _invalid(
            "chunk_delay", f"must be a number of seconds from 0 to {MAX_SSE_CHUNK_DELAY_S:g}"
        )
    return Start(
        session=session,
        messages=parse_messages(obj, limits, prefix=""),
        provider=_optional_str(obj, "provider", "provider"),
        model=params.pop("model", None),
        system=_optional_str(obj, "system", "system"),
        params=params,
        chunk_delay_ms=float(delay or 0) * 1000,
        on_disconnect=_on_disconnect(obj.get("on_disconnect"), "on_disconnect"),
    )
