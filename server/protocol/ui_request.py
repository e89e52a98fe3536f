"""The AI SDK's chat request, read as a tokenmux request (PROTOCOL.md §11).

``ui_chat_body`` takes ``{id, messages: [UIMessage], trigger, messageId?}`` (plus
``provider``, ``model``, ``params``, ``system``, ``tools``, ``tool_choice``, ``reasoning``
and ``on_disconnect`` set through the transport's ``body`` option) and returns the body
``POST /api/stream`` takes, which the shared validator then checks. UIMessage parts map
onto §9's messages:

- ``text`` parts join into the turn's text; ``file`` parts holding an image become
  ``{type: "image", url}`` parts;
- ``reasoning`` parts of an assistant turn become its ``reasoning``;
- tool parts (``tool-<name>`` and ``dynamic-tool``) that have an output (``addToolResult``,
  or ``tool-output-available``) become the assistant turn's ``tool_calls`` plus one ``tool``
  turn per result; an error result is sent as its error text. Calls still waiting for
  their result are left out, since no provider accepts a call without its result;
- text after a tool result starts a new assistant turn, as the model wrote it in a new step;
- ``step-start``, ``source-*`` and ``data-*`` parts are the stream's own annotations: skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import ErrorCode, ProtocolError
from server.protocol.validate import validate_session_id

__all__ = ["UiChatRequest", "ui_chat_body", "ui_messages"]

# Body keys passed on as they are (the validator checks them).
_PASSED_ON = ("provider", "system", "tools", "tool_choice", "reasoning", "on_disconnect")
_SDK_KEYS = frozenset({"id", "messages", "trigger", "messageId", "model", "params"})
_SKIPPED_PARTS = ("step-start", "source-url", "source-document")
_DONE_STATES = frozenset({"output-available", "output-error"})


@dataclass(frozen=True, slots=True)
class UiChatRequest:
    chat_id: str
    body: dict[str, Any]  # the tokenmux request (POST /api/stream's shape)
    message_id: str | None  # the assistant message to continue (after tool results)


def _invalid(field: str, why: str) -> ProtocolError:
    return ProtocolError(f"{field}: {why}", code=ErrorCode.INVALID_FIELD)


def ui_chat_body(obj: Any) -> UiChatRequest:
    """Read an AI SDK chat request. Raises ProtocolError naming the field."""
    if not isinstance(obj, dict):
        raise ProtocolError("the request body must be a JSON object")
    chat_id = validate_session_id(obj.get("id"), "id")
    for key in obj:
        if key not in _SDK_KEYS and key not in _PASSED_ON:
            raise _invalid(key, "is not supported by this server")
    raw = obj.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages", "must be a non-empty list")
    params = obj.get("params") or {}
    if not isinstance(params, dict):
        raise _invalid("params", "must be an object")
    if obj.get("model") is not None:
        params = {**params, "model": obj["model"]}
    body: dict[str, Any] = {
        "session_id": chat_id,
        "messages": ui_messages(raw),
        "llm_params": params,
    }
    body.update({key: obj[key] for key in _PASSED_ON if obj.get(key) is not None})
    last = raw[-1]
    continued = (
        last.get("id") if isinstance(last, dict) and last.get("role") == "assistant" else None
    )
    return UiChatRequest(chat_id, body, continued if isinstance(continued, str) else None)


def ui_messages(raw: list[Any]) -> list[dict[str, Any]]:
    """UIMessages → tokenmux messages (§9)."""
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid(field, "must be an object {id, role, parts}")
        role, parts = message.get("role"), message.get("parts")
        if role not in ("system", "user", "assistant"):
            raise _invalid(f"{field}.role", "must be system, user or assistant")
        if not isinstance(parts, list):
            raise _invalid(f"{field}.parts", "must be a list")
        if role == "assistant":
            turns.extend(_assistant_turns(parts, f"{field}.parts"))
        else:
            turns.append({"role": role, "content": _content(parts, f"{field}.parts")})
    return turns


def _content(parts: list[Any], field: str) -> str | list[dict[str, Any]]:
    """A user or system turn: its text, or a list of parts when it holds images."""
    out: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            out.append({"type": "text", "text": part.get("text")})
        elif kind == "file":
            out.append(_image(part, f"{field}[{i}]"))
        elif not _skipped(kind):
            raise _invalid(f"{field}[{i}].type", f"{kind!r} parts are not supported here")
    if all(part["type"] == "text" for part in out):
        return "".join(str(part["text"]) for part in out)
    return out


def _image(part: dict[str, Any], field: str) -> dict[str, Any]:
    media_type = part.get("mediaType")
    if not isinstance(media_type, str) or not media_type.startswith("image/"):
        raise _invalid(f"{field}.mediaType", "only image files are supported")
    return {"type": "image", "url": part.get("url")}


def _skipped(kind: Any) -> bool:
    return kind in _SKIPPED_PARTS or (isinstance(kind, str) and kind.startswith("data-"))


class _Step:
    """One assistant step being collected: text, reasoning, tool calls and their results."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []

    def turns(self) -> list[dict[str, Any]]:
        if not (self.text or self.reasoning or self.calls):
            return []
        turn: dict[str, Any] = {"role": "assistant", "content": "".join(self.text)}
        if self.reasoning:
            turn["reasoning"] = {"text": "".join(self.reasoning)}
        if self.calls:
            turn["tool_calls"] = self.calls
        return [turn, *self.results]


def _assistant_turns(parts: list[Any], field: str) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    step = _Step()
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "reasoning") and step.calls:
            turns.extend(step.turns())  # the model went on after its tools answered
            step = _Step()
        if kind == "text":
            step.text.append(str(part.get("text", "")))
        elif kind == "reasoning":
            step.reasoning.append(str(part.get("text", "")))
        elif isinstance(kind, str) and (kind.startswith("tool-") or kind == "dynamic-tool"):
            _tool_part(part, kind, step, f"{field}[{i}]")
        elif not _skipped(kind) and kind != "file":
            raise _invalid(f"{field}[{i}].type", f"{kind!r} parts are not supported here")
    turns.extend(step.turns())
    return turns


def _tool_part(part: dict[str, Any], kind: str, step: _Step, field: str) -> None:
    if part.get("state") not in _DONE_STATES:
        return  # no result yet: nothing a provider could take
    call_id = part.get("toolCallId")
    name = part.get("toolName") if kind == "dynamic-tool" else kind[len("tool-") :]
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise _invalid(field, "a tool part needs toolCallId and a tool name")
    step.calls.append({"id": call_id, "name": name, "arguments": part.get("input") or {}})
    if part["state"] == "output-error":
        result = str(part.get("errorText", "the tool failed"))
    else:
        output = part.get("output")
        result = output if isinstance(output, str) else orjson.dumps(output).decode()
    step.results.append({"role": "tool", "tool_call_id": call_id, "content": result})
