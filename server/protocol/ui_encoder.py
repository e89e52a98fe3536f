"""Session envelopes as the AI SDK's UI message stream (PROTOCOL.md §11): sans-I/O.

``UiMessageStream`` is an encoder (``encode(batch) -> bytes``, ``finish() -> bytes``) that
writes one ``data: <part JSON>`` block per UI message chunk: ``start`` (with the message
id and ``messageMetadata: {provider, model, sessionId}``) and ``start-step``; text and
reasoning as ``*-start``/``*-delta``/``*-end`` parts (one part per run: a switch between
text, reasoning and tool calls closes the open part); tool calls as ``tool-input-start``/
``tool-input-delta``/``tool-input-available`` (``tool-input-error`` when the model's JSON
did not parse); sources as ``source-url`` (``source-document`` when there is no URL);
``finish-step`` and ``finish`` with ``finishReason`` and ``messageMetadata: {usage, ttftMs,
finishReason, durationMs}``; ``error{errorText}`` on failure and ``abort`` on cancel; then
``data: [DONE]``.

A replay that lost the session's start (``metadata{recovered: false, content_so_far}``)
opens the message and sends the text so far as one delta, so a resumed reader still sees
the whole answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from server.protocol.encoding import Handler, Tally, encode_by_type
from server.protocol.envelope import Envelope
from server.protocol.sse import DATA, DONE, END

__all__ = ["UI_STREAM_HEADER", "UiMessageStream", "ui_usage"]

UI_STREAM_HEADER = ("x-vercel-ai-ui-message-stream", "v1")

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
}
_UNSETTLED_ENDS = {
    "timeout": "the generation ran out of time",
    "shutdown": "the server is shutting down",
}
_DELTA_END = b"}" + END
_CONTENT_CHUNK = "content_chunk"


def ui_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """tokenmux usage in the AI SDK's words (``LanguageModelUsage``)."""
    inputs, outputs = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    out = {"inputTokens": inputs, "outputTokens": outputs, "totalTokens": inputs + outputs}
    if "reasoning_tokens" in usage:
        out["reasoningTokens"] = usage["reasoning_tokens"]
    if "cached_input_tokens" in usage:
        out["cachedInputTokens"] = usage["cached_input_tokens"]
    if "estimated" in usage:
        out["estimated"] = usage["estimated"]
    return out


class UiMessageStream:
    """One answer's encoder: keeps the open text or reasoning part and the end metadata."""

    def __init__(self, message_id: str, tally: Tally | None = None) -> None:
        self.message_id = message_id
        self._tally = tally
        self._started = False
        self._open: str | None = None  # "text" or "reasoning"
        self._open_head = b""  # `data: {"type":"text-delta","id":"…","delta":`
        self._parts = 0
        self._sources = 0
        self._called_tools = False
        self._meta: dict[str, Any] = {}
        self._settled = False
        self._handlers: dict[str, Handler] = {
            "stream_start": self._start,
            "content_chunk": self._text,
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
            if kind == _CONTENT_CHUNK and self._open == "text" and tally is not None:
                # The per-token path, inlined: a delta of the text part already open.
                text = orjson.dumps(event["data"]["content"])
                out += self._open_head
                out += text
                out += _DELTA_END
                tally.events[kind] += 1
                tally.bytes[kind] += len(self._open_head) + len(text) + len(_DELTA_END)
                continue
            encode_by_type(handlers, tally, event, out)
        return bytes(out)

    def finish(self) -> bytes:
        return DONE

    # One method per event type: each appends its SSE blocks to `out`.

    def _start(self, data: dict[str, Any], out: bytearray) -> None:
        self._started = True
        metadata = {
            "provider": data["provider"],
            "model": data["model"],
            "sessionId": data["session_id"],
        }
        _part({"type": "start", "messageId": self.message_id, "messageMetadata": metadata}, out)
        _part({"type": "start-step"}, out)

    def _text(self, data: dict[str, Any], out: bytearray) -> None:
        if self._open != "text":
            self._open_part("text", out)
        out += self._open_head
        out += orjson.dumps(data["content"])
        out += _DELTA_END

    def _reasoning(self, data: dict[str, Any], out: bytearray) -> None:
        if self._open != "reasoning":
            self._open_part("reasoning", out)
        out += self._open_head
        out += orjson.dumps(data["content"])
        out += _DELTA_END

    def _tool_start(self, data: dict[str, Any], out: bytearray) -> None:
        self._close_part(out)
        self._called_tools = True
        _part({"type": "tool-input-start", "toolCallId": data["id"], "toolName": data["name"]}, out)

    def _tool_delta(self, data: dict[str, Any], out: bytearray) -> None:
        delta = {"type": "tool-input-delta", "toolCallId": data["id"]}
        _part(delta | {"inputTextDelta": data["arguments_delta"]}, out)

    def _tool_end(self, data: dict[str, Any], out: bytearray) -> None:
        call = {"toolCallId": data["id"], "toolName": data["name"]}
        if data.get("error") is not None:
            errored = {"type": "tool-input-error", **call, "input": data.get("arguments_text")}
            _part(
                errored | {"errorText": f"the tool input is not valid JSON ({data['error']})"}, out
            )
        else:
            _part({"type": "tool-input-available", **call, "input": data.get("arguments")}, out)

    def _source(self, data: dict[str, Any], out: bytearray) -> None:
        self._sources += 1
        source: dict[str, Any] = {"sourceId": f"source-{self._sources}"}
        if data.get("url"):
            source |= {"type": "source-url", "url": data["url"]}
            if data.get("title"):
                source["title"] = data["title"]
        else:
            title = data.get("title") or data.get("cited_text") or f"source {self._sources}"
            source |= {"type": "source-document", "mediaType": "text/plain", "title": title}
        _part(source, out)

    def _metadata(self, data: dict[str, Any], out: bytearray) -> None:
        if data.get("recovered") is False and not self._started:
            self._started = True
            _part({"type": "start", "messageId": self.message_id}, out)
            _part({"type": "start-step"}, out)
            if data.get("content_so_far"):
                self._text({"content": data["content_so_far"]}, out)
            return
        for key in ("usage", "finish_reason", "ttft_ms", "refusal"):
            if key in data:
                self._meta[key] = data[key]

    def _complete(self, data: dict[str, Any], out: bytearray) -> None:
        self._settled = True
        self._close_part(out)
        _part({"type": "finish-step"}, out)

    def _error(self, data: dict[str, Any], out: bytearray) -> None:
        self._settled = True
        self._close_part(out)
        _part({"type": "error", "errorText": data["message"]}, out)

    def _end(self, data: dict[str, Any], out: bytearray) -> None:
        reason = data["reason"]
        if reason == "complete":
            _part(self._finish(data), out)
        elif reason == "cancelled":
            self._close_part(out)
            _part({"type": "abort", "reason": "cancelled"}, out)
        elif not self._settled:
            self._close_part(out)
            _part({"type": "error", "errorText": _UNSETTLED_ENDS[reason]}, out)

    # Helpers.

    def _finish(self, end: dict[str, Any]) -> dict[str, Any]:
        meta = self._meta
        reason = meta.get("finish_reason")
        finish_reason = _FINISH_REASONS.get(str(reason), "other" if reason else "stop")
        if reason is None and self._called_tools:
            finish_reason = "tool-calls"
        metadata: dict[str, Any] = {
            "usage": ui_usage({**end["usage"], **(meta.get("usage") or {})}),
            "finishReason": finish_reason,
            "durationMs": end["duration_ms"],
        }
        if meta.get("ttft_ms") is not None:
            metadata["ttftMs"] = meta["ttft_ms"]
        if meta.get("refusal"):
            metadata["refusal"] = meta["refusal"]
        return {"type": "finish", "finishReason": finish_reason, "messageMetadata": metadata}

    def _open_part(self, kind: str, out: bytearray) -> None:
        self._close_part(out)
        self._parts += 1
        part_id = f"{kind}-{self._parts}"
        _part({"type": f"{kind}-start", "id": part_id}, out)
        self._open = kind
        self._open_head = (
            DATA + b'{"type":"' + kind.encode() + b'-delta","id":"' + part_id.encode() + b'",'
            b'"delta":'
        )

    def _close_part(self, out: bytearray) -> None:
        if self._open is not None:
            _part({"type": f"{self._open}-end", "id": f"{self._open}-{self._parts}"}, out)
            self._open = None


def _part(part: dict[str, Any], out: bytearray) -> None:
    out += DATA
    out += orjson.dumps(part)
    out += END
