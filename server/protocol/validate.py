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
from server.protocol.envelope import (
    Cancel,
    ClientMessage,
    ContentPart,
    ImagePart,
    Message,
    NamedTool,
    Ping,
    Reasoning,
    ReasoningConfig,
    Resume,
    Role,
    Start,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    Unwatch,
    Watch,
)

__all__ = [
    "SIM_PARAMS",
    "InputLimits",
    "message_ref",
    "parse_client_message",
    "parse_http_request",
    "parse_messages",
    "parse_params",
    "parse_rich_fields",
    "validate_session_id",
]

SESSION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ROLES = ("system", "user", "assistant", "tool")
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_TOOLS = 128
EFFORTS = ("low", "medium", "high")
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
        case "watch":
            resume = _parse_resume(obj, data)
            return Watch(resume.session, resume.resume_token, resume.after_seq)
        case "unwatch":
            if "session" not in obj:
                raise _invalid("session", "is required")
            return Unwatch(session=validate_session_id(obj["session"]))
        case "ping":
            return Ping(data=data)
    raise ProtocolError(f"unknown message type {kind[:64]!r}", code=ErrorCode.UNKNOWN_TYPE)


def _parse_start(obj: dict[str, Any], data: dict[str, Any], limits: InputLimits) -> Start:
    session = validate_session_id(obj.get("session"))
    _refuse_unknown(data, START_KEYS, "data.")
    return Start(
        session=session,
        messages=parse_messages(data, limits, prefix="data."),
        provider=_optional_str(data, "provider", "data.provider"),
        model=_optional_str(data, "model", "data.model"),
        system=_optional_str(data, "system", "data.system"),
        params=parse_params(data.get("params"), "data.params"),
        chunk_delay_ms=_chunk_delay_ms(data.get("chunk_delay_ms"), "data.chunk_delay_ms"),
        on_disconnect=_on_disconnect(data.get("on_disconnect")),
        **parse_rich_fields(data, "data."),
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
    _refuse_unknown(item, MESSAGE_KEYS, f"{field}.")
    role = item.get("role")
    if role not in ROLES:
        raise _invalid(f"{field}.role", "must be one of system, user, assistant, tool")
    text, parts = _content(item.get("content"), f"{field}.content", role)
    tool_calls: tuple[ToolCall, ...] = ()
    if item.get("tool_calls") is not None:
        if role != "assistant":
            raise _invalid(f"{field}.tool_calls", "only an assistant turn has tool calls")
        tool_calls = _tool_calls(item["tool_calls"], f"{field}.tool_calls")
    reasoning = None
    if item.get("reasoning") is not None:
        if role != "assistant":
            raise _invalid(f"{field}.reasoning", "only an assistant turn has reasoning")
        reasoning = _reasoning_turn(item["reasoning"], f"{field}.reasoning")
    tool_call_id = item.get("tool_call_id")
    if role == "tool":
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise _invalid(f"{field}.tool_call_id", "a tool turn needs the id of its call")
    elif tool_call_id is not None:
        raise _invalid(f"{field}.tool_call_id", "only a tool turn answers a call")
    return Message(
        cast(Role, role),
        text,
        parts=parts,
        tool_calls=tool_calls,
        reasoning=reasoning,
        tool_call_id=tool_call_id,
    )


MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "reasoning", "tool_call_id"})


def _content(raw: Any, field: str, role: str) -> tuple[str, tuple[ContentPart, ...]]:
    """A string, or a list of text and image parts: (the text, the parts if a list)."""
    if isinstance(raw, str):
        return raw, ()
    if raw is None and role == "assistant":  # a turn of tool calls only
        return "", ()
    if not isinstance(raw, list) or not raw:
        raise _invalid(field, "must be a string or a non-empty list of parts")
    parts: list[ContentPart] = []
    for i, part in enumerate(raw):
        where = f"{field}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image" and isinstance(part.get("url"), str):
            if role != "user":
                raise _invalid(where, "images go in user turns")
            parts.append(_image(part["url"], f"{where}.url"))
        else:
            raise _invalid(where, 'must be {type: "text", text} or {type: "image", url}')
    text = "".join(part.text for part in parts if isinstance(part, TextPart))
    return text, tuple(parts)


_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+;base64,[A-Za-z0-9+/=]+")


def _image(url: str, field: str) -> ImagePart:
    if (url.startswith("https://") and len(url) > len("https://")) or _DATA_URL.fullmatch(url):
        return ImagePart(url)
    raise _invalid(field, "must be an https:// URL or a data:<media type>;base64,… URL")


def _tool_calls(raw: Any, field: str) -> tuple[ToolCall, ...]:
    if not isinstance(raw, list):
        raise _invalid(field, "must be a list of {id, name, arguments}")
    calls = []
    for i, call in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(call, dict):
            raise _invalid(where, "must be an object {id, name, arguments}")
        _refuse_unknown(call, frozenset({"id", "name", "arguments", "signature"}), f"{where}.")
        for key in ("id", "name"):
            if not isinstance(call.get(key), str) or not call[key]:
                raise _invalid(f"{where}.{key}", "must be a non-empty string")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, dict):
            raise _invalid(f"{where}.arguments", "must be an object")
        signature = call.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise _invalid(f"{where}.signature", "must be a string")
        calls.append(ToolCall(call["id"], call["name"], arguments, signature))
    return tuple(calls)


def _reasoning_turn(raw: Any, field: str) -> Reasoning:
    if not isinstance(raw, dict):
        raise _invalid(field, "must be an object {text, signature?}")
    _refuse_unknown(raw, frozenset({"text", "signature"}), f"{field}.")
    text, signature = raw.get("text", ""), raw.get("signature")
    if not isinstance(text, str):
        raise _invalid(f"{field}.text", "must be a string")
    if signature is not None and not isinstance(signature, str):
        raise _invalid(f"{field}.signature", "must be a string")
    return Reasoning(text, signature)


_RICH_KEYS = frozenset({"tools", "tool_choice", "reasoning"})
START_KEYS = _RICH_KEYS | {
    "prompt",
    "messages",
    "provider",
    "model",
    "system",
    "params",
    "chunk_delay_ms",
    "on_disconnect",
}
HTTP_KEYS = _RICH_KEYS | {
    "prompt",
    "messages",
    "provider",
    "session_id",
    "system",
    "llm_params",
    "chunk_delay",
    "on_disconnect",
}


def _refuse_unknown(obj: dict[str, Any], known: frozenset[str], prefix: str) -> None:
    """Nothing is silently ignored: a key we do not know is named in the error."""
    for key in obj:
        if key not in known:
            raise _invalid(f"{prefix}{str(key)[:64]}", "is not a known field")


def parse_rich_fields(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``reasoning`` of a start (PROTOCOL.md section 9), as
    keyword arguments of Start."""
    tools = _tools(data.get("tools"), f"{prefix}tools")
    choice = _tool_choice(data.get("tool_choice"), f"{prefix}tool_choice")
    if isinstance(choice, NamedTool) and choice.name not in {tool.name for tool in tools}:
        raise _invalid(f"{prefix}tool_choice.name", "must name one of the tools")
    if choice == "required" and not tools:
        raise _invalid(f"{prefix}tool_choice", '"required" needs tools')
    return {
        "tools": tools,
        "tool_choice": choice,
        "reasoning": _reasoning_config(data.get("reasoning"), f"{prefix}reasoning"),
    }


def _tools(raw: Any, field: str) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_TOOLS:
        raise _invalid(field, f"must be a list of at most {MAX_TOOLS} tools")
    tools: list[Tool] = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise _invalid(where, "must be an object {name, description?, parameters}")
        _refuse_unknown(item, frozenset({"name", "description", "parameters"}), f"{where}.")
        name, description = item.get("name"), item.get("description")
        if not isinstance(name, str) or TOOL_NAME.fullmatch(name) is None:
            raise _invalid(f"{where}.name", "must be 1-64 of A-Za-z0-9_.- (not a digit first)")
        if any(tool.name == name for tool in tools):
            raise _invalid(f"{where}.name", "is used by another tool")
        if description is not None and not isinstance(description, str):
            raise _invalid(f"{where}.description", "must be a string")
        parameters = item.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            raise _invalid(f"{where}.parameters", 'must be a JSON Schema of type "object"')
        tools.append(Tool(name, parameters, description))
    return tuple(tools)


def _tool_choice(raw: Any, field: str) -> ToolChoice:
    if raw is None:
        return "auto"
    if raw in ("auto", "none", "required"):
        return cast(ToolChoice, raw)
    if isinstance(raw, dict) and set(raw) == {"name"} and isinstance(raw["name"], str):
        return NamedTool(raw["name"])
    raise _invalid(field, 'must be "auto", "none", "required" or {name}')


_REASONING_WHY = {
    "effort": 'must be "low", "medium" or "high"',
    "budget_tokens": "must be an integer from 1 to 1000000",
    "enabled": "can only be false (leave reasoning out for the provider's default)",
}


def _reasoning_config(raw: Any, field: str) -> ReasoningConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1:
        raise _invalid(field, "must be one of {effort}, {budget_tokens} or {enabled: false}")
    ((key, value),) = raw.items()
    if key == "effort" and value in EFFORTS:
        return ReasoningConfig(effort=value)
    if key == "budget_tokens" and _is_int(value) and 1 <= value <= 1_000_000:
        return ReasoningConfig(budget_tokens=value)
    if key == "enabled" and value is False:
        return ReasoningConfig(enabled=False)
    raise _invalid(f"{field}.{str(key)[:64]}", _REASONING_WHY.get(key, "is not a known field"))


# The generation parameters every adapter maps, or refuses naming the key when its
# provider has no such setting.
_NUMBER_PARAMS = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
}
_INT_PARAMS = {
    "max_tokens": (1, 1_000_000),
    "top_k": (1, 1_000_000),
    "seed": (-(2**63), 2**63 - 1),
}
# The simulator's own knobs (server/providers/sim.py); every other provider refuses them.
_SIM_NUMBER_PARAMS = {
    "tokens_per_second": (0.0, 1e6),
    "ttft_ms": (0.0, 600_000.0),
}
_SIM_INT_PARAMS = {
    "fail_at": (0, 1_000_000),
    "hang_at": (0, 1_000_000),
    "burst": (1, 1_000_000),
    "reasoning_tokens": (0, 100_000),
    "sources": (0, 100),
}
SIM_PARAMS = frozenset({*_SIM_NUMBER_PARAMS, *_SIM_INT_PARAMS, "fail_code", "refusal"})
MAX_STOP = 16


def parse_params(raw: Any, field: str) -> dict[str, Any]:
    """Check every ``params`` key: the generation parameters, ``provider_options`` (an
    object merged verbatim upstream), the simulator's knobs, ``cache`` and ``model``. Any other key
    is refused, naming it."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid(field, "must be an object")
    numbers = _NUMBER_PARAMS | _SIM_NUMBER_PARAMS
    ints = _INT_PARAMS | _SIM_INT_PARAMS
    for key, value in raw.items():
        where = f"{field}.{str(key)[:64]}"
        if key in numbers:
            low, high = numbers[key]
            if not _is_number(value) or not low <= value <= high:
                raise _invalid(where, f"must be a number from {low:g} to {high:g}")
        elif key in ints:
            ilow, ihigh = ints[key]
            if not _is_int(value) or not ilow <= value <= ihigh:
                raise _invalid(where, f"must be an integer from {ilow} to {ihigh}")
        elif key == "stop":
            stops = [value] if isinstance(value, str) else value
            if not (isinstance(stops, list) and 0 < len(stops) <= MAX_STOP) or not all(
                isinstance(stop, str) and stop for stop in stops
            ):
                raise _invalid(where, f"must be a string or a list of 1 to {MAX_STOP} strings")
        elif key in ("model", "fail_code"):
            if not isinstance(value, str):
                raise _invalid(where, "must be a string")
        elif key == "refusal":
            if not isinstance(value, bool | str):
                raise _invalid(where, "must be true or the refusal text")
        elif key == "cache":  # the content cache (server/cache/), never sent upstream
            if not isinstance(value, bool):
                raise _invalid(where, "must be true or false")
        elif key == "provider_options":
            if not isinstance(value, dict):
                raise _invalid(where, "must be an object (merged into the upstream request)")
        else:
            raise _invalid(where, "is not a known parameter (see params.provider_options)")
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
    _refuse_unknown(obj, HTTP_KEYS, "")
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
        **parse_rich_fields(obj, ""),
    )
