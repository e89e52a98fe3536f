"""Session envelopes as OpenAI Chat Completions answers (PROTOCOL.md §10): sans-I/O.

``ChatCompletionChunks`` is an encoder (``encode(batch) -> bytes``, ``finish() -> bytes``):
it turns one session's envelopes into ``chat.completion.chunk`` SSE blocks, one ``id`` for
the whole stream, the first delta ``{role: "assistant", content: ""}``, text in
``delta.content``, reasoning in ``delta.reasoning_content``, tool calls in
``delta.tool_calls``, ``finish_reason`` on the last choice chunk, the usage chunk
(``choices: []``) when asked for, and ``data: [DONE]``. An ``error`` event becomes
``data: {"error": {...}}``. ``chat_completion`` builds the non-streaming answer from a
finished session's envelopes.

Text chunks are the hot path: their bytes are a precomputed prefix, the JSON string of the
text, and a constant suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from server.errors import ErrorCode, http_status
from server.protocol.encoding import Handler, Tally, encode_by_type
from server.protocol.envelope import Envelope
from server.protocol.openai_request import openai_error_body
from server.protocol.sse import DATA, DONE, END

__all__ = ["ChatCompletionChunks", "chat_completion", "openai_finish_reason", "openai_usage"]

_FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter"}
# A session that ended without settling: said in-band, as OpenAI says a failure mid-stream.
_UNSETTLED_ENDS = {
    "cancelled": ("the generation was cancelled", "cancelled"),
    "timeout": ("the generation ran out of time", ErrorCode.TIMEOUT.value),
    "shutdown": ("the server is shutting down", ErrorCode.SHUTTING_DOWN.value),
}
_CHOICE_END = b',"logprobs":null,"finish_reason":null}]}' + END
_CONTENT_END = b"}" + _CHOICE_END
_CONTENT_CHUNK = "content_chunk"


def openai_finish_reason(reason: Any, *, called_tools: bool) -> str:
    """§9's normalized finish_reason in OpenAI's words (``other`` becomes ``stop``)."""
    if reason in _FINISH_REASONS:
        return str(reason)
    return "tool_calls" if called_tools else "stop"


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """tokenmux usage → ``{prompt_tokens, completion_tokens, total_tokens, *_details}``."""
    prompt, completion = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if "cached_input_tokens" in usage:
        out["prompt_tokens_details"] = {"cached_tokens": usage["cached_input_tokens"]}
    if "reasoning_tokens" in usage:
        out["completion_tokens_details"] = {"reasoning_tokens": usage["reasoning_tokens"]}
    return out


def _model_name(start: dict[str, Any]) -> str:
    return f"{start['provider']}/{start['model']}"


class ChatCompletionChunks:
    """One streamed answer's encoder. Keeps the stream's id, tool indexes, and usage."""

    def __init__(
        self, completion_id: str, *, created: int, include_usage: bool, tally: Tally | None = None
    ) -> None:
        self.completion_id = completion_id
        self._tally = tally
        self.created = created
        self.include_usage = include_usage
        self.model = ""
        self._head = b""  # `data: {"id":…,"choices":[{"index":0,"delta":` up to the delta
        self._content_head = b""  # the same and `{"content":`
        self._tool_index: dict[str, int] = {}
        self._tool_streamed: set[str] = set()
        self._finish_reason: Any = None
        self._usage: dict[str, Any] = {}
        self._settled = False
        self._handlers: dict[str, Handler] = {
            "stream_start": self._start,
            "content_chunk": self._content,
            "reasoning_chunk": self._reasoning,
            "tool_call_start": self._tool_start,
            "tool_call_delta": self._tool_delta,
            "tool_call_end": self._tool_end,
            "source": self._source,
            "metadata": self._metadata,
            "content_complete": self._complete,
            "error": self._error,
            "stream_end": self._end,
        }

    def encode(self, batch: Sequence[Envelope]) -> bytes:
        out = bytearray()
        handlers, tally = self._handlers, self._tally
        for event in batch:
            kind = event["type"]
            if kind == _CONTENT_CHUNK and tally is not None:  # the per-token path, inlined
                text = orjson.dumps(event["data"]["content"])
                out += self._content_head
                out += text
                out += _CONTENT_END
                tally.events[kind] += 1
                tally.bytes[kind] += len(self._content_head) + len(text) + len(_CONTENT_END)
                continue
            encode_by_type(handlers, tally, event, out)
        return bytes(out)

    def finish(self) -> bytes:
        return DONE

    # One method per event type: each appends its SSE blocks to `out`.

    def _start(self, data: dict[str, Any], out: bytearray) -> None:
        self.model = _model_name(data)
        head = orjson.dumps(
            {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
            }
        )
        self._head = DATA + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._content_head = self._head + b'{"content":'
        self._delta({"role": "assistant", "content": ""}, out)

    def _content(self, data: dict[str, Any], out: bytearray) -> None:
        out += self._content_head
        out += orjson.dumps(data["content"])
        out += _CONTENT_END

    def _reasoning(self, data: dict[str, Any], out: bytearray) -> None:
        out += self._head
        out += b'{"reasoning_content":'
        out += orjson.dumps(data["content"])
        out += b"}"
        out += _CHOICE_END

    def _tool_start(self, data: dict[str, Any], out: bytearray) -> None:
        index = self._tool_index[data["id"]] = len(self._tool_index)
        call = {
            "index": index,
            "id": data["id"],
            "type": "function",
            "function": {"name": data["name"], "arguments": ""},
        }
        self._delta({"tool_calls": [call]}, out)

    def _tool_delta(self, data: dict[str, Any], out: bytearray) -> None:
        self._tool_streamed.add(data["id"])
        arguments = data["arguments_delta"]
        fragment = {"index": self._tool_index[data["id"]], "function": {"arguments": arguments}}
        self._delta({"tool_calls": [fragment]}, out)

    def _tool_end(self, data: dict[str, Any], out: bytearray) -> None:
        if data["id"] in self._tool_streamed:
            return
        # The provider gave the arguments whole: they go out as one fragment.
        text = data.get("arguments_text")
        if text is None:
            text = orjson.dumps(data.get("arguments") or {}).decode()
        fragment = {"index": self._tool_index[data["id"]], "function": {"arguments": text}}
        self._delta({"tool_calls": [fragment]}, out)

    def _source(self, data: dict[str, Any], out: bytearray) -> None:
        if data.get("url"):  # OpenAI's url_citation annotation; other sources have no place
            citation = {"url": data["url"], "title": data.get("title") or data["url"]}
            self._delta({"annotations": [{"type": "url_citation", "url_citation": citation}]}, out)

    def _metadata(self, data: dict[str, Any], out: bytearray) -> None:
        if "finish_reason" in data:
            self._finish_reason = data["finish_reason"]
        if isinstance(data.get("usage"), dict):
            self._usage.update(data["usage"])
        if data.get("refusal"):
            self._delta({"refusal": data["refusal"]}, out)

    def _complete(self, data: dict[str, Any], out: bytearray) -> None:
        self._settled = True
        reason = openai_finish_reason(self._finish_reason, called_tools=bool(self._tool_index))
        out += self._head
        out += b'{},"logprobs":null,"finish_reason":'
        out += orjson.dumps(reason)
        out += b"}]}" + END

    def _error(self, data: dict[str, Any], out: bytearray) -> None:
        self._settled = True
        self._in_band_error(data, out)

    def _end(self, data: dict[str, Any], out: bytearray) -> None:
        if not self._settled:
            message, code = _UNSETTLED_ENDS[data["reason"]]
            self._in_band_error({"code": code, "message": message}, out)
        elif data["reason"] == "complete" and self.include_usage:
            usage = openai_usage({**data["usage"], **self._usage})
            chunk = self._envelope() | {"choices": [], "usage": usage}
            out += DATA + orjson.dumps(chunk) + END

    # Helpers.

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _delta(self, delta: dict[str, Any], out: bytearray) -> None:
        out += self._head
        out += orjson.dumps(delta)
        out += _CHOICE_END

    def _in_band_error(self, payload: dict[str, Any], out: bytearray) -> None:
        status = _status(payload["code"])
        out += DATA + orjson.dumps(openai_error_body(payload, status)) + END


def _status(code: str) -> int:
    try:
        return http_status(ErrorCode(code))
    except ValueError:  # not one of §5's codes (e.g. "cancelled")
        return 500


def chat_completion(
    events: Sequence[Envelope], completion_id: str, *, created: int
) -> tuple[int, dict[str, Any]]:
    """A finished session's envelopes as ``(status, chat.completion object)``; a session
    that failed or did not finish gives ``(status, {error: …})`` instead."""
    start = events[0]["data"]
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {}
    usage: dict[str, Any] = {}
    for event in events[1:]:
        kind, data = event["type"], event["data"]
        if kind == "content_chunk":
            content.append(data["content"])
        elif kind == "reasoning_chunk":
            reasoning.append(data["content"])
        elif kind == "tool_call_end":
            calls[data["id"]] = data
        elif kind == "metadata":
            meta.update(data)
            usage.update(data.get("usage") or {})
        elif kind == "error":
            return _status(data["code"]), openai_error_body(data, _status(data["code"]))
        elif kind == "stream_end" and data["reason"] in _UNSETTLED_ENDS:
            why, code = _UNSETTLED_ENDS[data["reason"]]
            return _status(code), openai_error_body({"code": code, "message": why}, 500)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(content),
        "refusal": meta.get("refusal"),
    }
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [_tool_call(call) for call in calls.values()]
    finish = openai_finish_reason(meta.get("finish_reason"), called_tools=bool(calls))
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": _model_name(start),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": openai_usage({**events[-1]["data"]["usage"], **usage}),
    }
    return 200, body


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    text = call.get("arguments_text")
    if text is None:
        text = orjson.dumps(call.get("arguments") or {}).decode()
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": text},
    }
