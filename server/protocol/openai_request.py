"""An OpenAI Chat Completions request, read as a tokenmux request (PROTOCOL.md §10).

``chat_request_body`` turns the OpenAI body into the body ``POST /api/stream`` takes (§4
and §9: ``messages`` with parts, ``tool_calls`` and ``tool`` turns, ``tools``,
``tool_choice``, ``reasoning``, ``llm_params``), which the one shared validator then
checks. Every OpenAI field is either mapped or refused with ``invalid_field`` naming it;
nothing is dropped silently. Errors leave as OpenAI's ``{error: {message, type, param,
code}}`` through ``openai_error_body``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import ErrorCode, ProtocolError, TokenmuxError

__all__ = [
    "ChatRequest",
    "chat_request_body",
    "openai_error_body",
    "resolve_model",
]

# Generation parameters that keep their name (OpenAI's and tokenmux's are the same).
_SAME_PARAMS = ("temperature", "top_p", "seed")
# Accepted and deliberately unused: OpenAI's end-user id for its abuse reports.
_ACCEPTED_UNUSED = frozenset({"user"})
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the route needs besides the tokenmux body."""

    body: dict[str, Any]  # the tokenmux request (POST /api/stream's shape)
    stream: bool
    include_usage: bool


def _invalid(field: str, why: str) -> ProtocolError:
    return ProtocolError(f"{field}: {why}", code=ErrorCode.INVALID_FIELD)


def resolve_model(model: Any, providers: Collection[str]) -> tuple[str, str | None]:
    """``"anthropic"`` → (anthropic, its default model); ``"anthropic/claude-x"`` →
    (anthropic, claude-x). Anything else is ``model_not_found``."""
    if not isinstance(model, str) or not model:
        raise _invalid("model", "must be a non-empty string")
    name, _, model_name = model.partition("/")
    if name not in providers or (model_name == "" and "/" in model):
        raise TokenmuxError(
            f"The model {model!r} does not exist: use a provider name "
            f"({', '.join(sorted(providers))}) or provider/model",
            code=ErrorCode.MODEL_NOT_FOUND,
        )
    return name, model_name or None


def chat_request_body(obj: Any, providers: Collection[str], *, session_id: str) -> ChatRequest:
    """Read a Chat Completions body. Raises ProtocolError or model_not_found."""
    if not isinstance(obj, dict):
        raise ProtocolError("the request body must be a JSON object")
    provider, model = resolve_model(obj.get("model"), providers)
    params: dict[str, Any] = {}
    extra = obj.get("params")  # tokenmux's own params, as the SDK's extra_body
    if extra is not None:
        if not isinstance(extra, dict):
            raise _invalid("params", "must be an object")
        params.update(extra)
    if model is not None:
        params["model"] = model
    body: dict[str, Any] = {
        "session_id": session_id,
        "provider": provider,
        "messages": _messages(obj.get("messages")),
        "llm_params": params,
    }
    for key, value in obj.items():
        if value is None or key in ("model", "messages", "params", "stream", "stream_options"):
            continue
        _map_field(key, value, body, params)
    stream = obj.get("stream") or False
    if not isinstance(stream, bool):
        raise _invalid("stream", "must be a boolean")
    return ChatRequest(body, stream, _include_usage(obj.get("stream_options")))


def _map_field(key: str, value: Any, body: dict[str, Any], params: dict[str, Any]) -> None:
    if key in _SAME_PARAMS:
        params[key] = value
    elif key in ("max_tokens", "max_completion_tokens"):
        params["max_tokens"] = value
    elif key == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _invalid("stop", "must be a string or a list of strings")
        params["stop"] = stops
    elif key == "n":
        if value != 1:
            raise _invalid("n", "only n = 1 is supported")
    elif key == "tools":
        body["tools"] = _tools(value)
    elif key == "tool_choice":
        body["tool_choice"] = _tool_choice(value)
    elif key == "reasoning_effort":
        if value not in _EFFORTS:
            raise _invalid("reasoning_effort", "must be minimal, low, medium or high")
        body["reasoning"] = {"effort": _EFFORTS[value]}
    elif key == "reasoning":  # tokenmux's own §9 form, as extra_body
        body["reasoning"] = value
    elif key == "parallel_tool_calls":
        if value is not True:
            raise _invalid("parallel_tool_calls", "only true is supported")
    elif key == "on_disconnect":
        body["on_disconnect"] = value
    elif key not in _ACCEPTED_UNUSED:
        raise _invalid(key, "is not supported by this server")


def _include_usage(options: Any) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise _invalid("stream_options", "must be an object")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise _invalid("stream_options.include_usage", "must be a boolean")
    return include


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages", "must be a non-empty list")
    return [_message(item, f"messages[{i}]") for i, item in enumerate(raw)]


def _message(item: Any, field: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _invalid(field, "must be an object")
    role = item.get("role")
    if role == "tool":
        return {
            "role": "tool",
            "tool_call_id": item.get("tool_call_id"),
            "content": _text_only(item.get("content"), f"{field}.content"),
        }
    if role not in _ROLES:
        raise _invalid(f"{field}.role", "must be system, developer, user, assistant or tool")
    turn: dict[str, Any] = {"role": _ROLES[role], "content": _content(item, field)}
    calls = item.get("tool_calls")
    if role == "assistant" and calls:
        turn["tool_calls"] = _tool_calls(calls, f"{field}.tool_calls")
    reasoning = item.get("reasoning_content")
    if role == "assistant" and isinstance(reasoning, str) and reasoning:
        turn["reasoning"] = {"text": reasoning}
    return turn


def _content(item: dict[str, Any], field: str) -> str | list[dict[str, Any]]:
    content = item.get("content")
    if content is None:  # an assistant turn that only calls tools
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(f"{field}.content", "must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{field}.content[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append({"type": "image", "url": url})
        elif kind == "refusal":  # an earlier assistant refusal sent back
            parts.append({"type": "text", "text": part.get("refusal")})
        else:
            raise _invalid(where, "only text and image_url parts are supported")
    if all(part["type"] == "text" for part in parts):
        return "".join(str(part["text"]) for part in parts)
    return parts


def _text_only(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise _invalid(field, "must be a string or a list of text parts")


def _tool_calls(raw: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _invalid(field, "must be a list")
    calls = []
    for i, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _invalid(f"{field}[{i}].function", "must be an object {name, arguments}")
        text = function.get("arguments") or "{}"
        try:
            arguments = orjson.loads(text)
        except (orjson.JSONDecodeError, TypeError):
            raise _invalid(f"{field}[{i}].function.arguments", "must be JSON text") from None
        calls.append({"id": call.get("id"), "name": function.get("name"), "arguments": arguments})
    return calls


def _tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _invalid("tools", "must be a list")
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _invalid(f"tools[{i}].type", 'only "function" tools are supported')
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _invalid(f"tools[{i}].function", "must be an object")
        entry = {"name": function.get("name"), "parameters": function.get("parameters", {})}
        if function.get("description") is not None:
            entry["description"] = function["description"]
        tools.append(entry)
    return tools


def _tool_choice(value: Any) -> str | dict[str, Any]:
    if value in ("auto", "none", "required"):
        return str(value)
    function = value.get("function") if isinstance(value, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"name": function["name"]}
    raise _invalid("tool_choice", 'must be "auto", "none", "required" or a function')


# OpenAI's error `type` by HTTP status; `code` stays tokenmux's stable code (§5).
_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


def openai_error_body(payload: dict[str, Any], status: int) -> dict[str, Any]:
    """``{error: {message, type, param, code}}`` from a tokenmux error payload."""
    code, message = payload["code"], payload["message"]
    param = None
    if code == ErrorCode.INVALID_FIELD and ": " in message:
        param = message.split(": ", 1)[0]
    elif code == ErrorCode.MODEL_NOT_FOUND:
        param = "model"
    default = "invalid_request_error" if status < 500 else "server_error"
    kind = _ERROR_TYPES.get(status, default)
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
