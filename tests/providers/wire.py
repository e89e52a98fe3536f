"""The four upstream wire formats, written from each provider's public API reference.

Each ``Wire`` knows how its provider frames a streamed reply (head frames, one frame per
text delta, the tail that carries finish reason and usage), what an in-stream error looks
like, and the JSON body of an HTTP error. The local upstream (upstream.py) uses them to
answer the official SDKs exactly as the real services would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["WIRES", "Wire"]


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _line(data: dict[str, Any]) -> bytes:
    return (json.dumps(data) + "\n").encode()


@dataclass(frozen=True)
class Wire:
    """One provider's framing; subclasses fill in the frames."""

    name: str
    content_type: str = "text/event-stream"

    def head(self, model: str, input_tokens: int) -> list[bytes]:
        return []

    def delta(self, model: str, text: str) -> bytes:
        raise NotImplementedError

    def tail(self, model: str, input_tokens: int, output_tokens: int) -> list[bytes]:
        raise NotImplementedError

    def stream_error(self) -> bytes:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError


class OpenAIWire(Wire):
    """Chat Completions: ``data: chat.completion.chunk`` lines, usage chunk, ``[DONE]``."""

    def _chunk(self, model: str, **fields: Any) -> dict[str, Any]:
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1}
        return {**chunk, "model": model, "usage": None, **fields}

    def head(self, model: str, input_tokens: int) -> list[bytes]:
        choice = {"index": 0, "delta": {"role": "assistant", "content": ""}}
        return [_sse(self._chunk(model, choices=[{**choice, "finish_reason": None}]))]

    def delta(self, model: str, text: str) -> bytes:
        choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        return _sse(self._chunk(model, choices=[choice]))

    def tail(self, model: str, input_tokens: int, output_tokens: int) -> list[bytes]:
        finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
        usage = {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        return [
            _sse(self._chunk(model, choices=[finish])),
            _sse(self._chunk(model, choices=[], usage=usage)),
            b"data: [DONE]\n\n",
        ]

    def stream_error(self) -> bytes:
        error = {"message": "The server had an error", "type": "server_error"}
        return _sse({"error": {**error, "param": None, "code": None}})

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = {401: "invalid_request_error", 429: "requests"}.get(status, "server_error")
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class AnthropicWire(Wire):
    """Messages: named SSE events from ``message_start`` to ``message_stop``, with pings."""

    def head(self, model: str, input_tokens: int) -> list[bytes]:
        message: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }
        block: dict[str, Any] = {"type": "content_block_start", "index": 0}
        return [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse({**block, "content_block": {"type": "text", "text": ""}}, block["type"]),
            _sse({"type": "ping"}, "ping"),
        ]

    def delta(self, model: str, text: str) -> bytes:
        delta: dict[str, Any] = {"type": "content_block_delta", "index": 0}
        return _sse({**delta, "delta": {"type": "text_delta", "text": text}}, delta["type"])

    def tail(self, model: str, input_tokens: int, output_tokens: int) -> list[bytes]:
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        return [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": delta,
                    "usage": {"output_tokens": output_tokens},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]

    def stream_error(self) -> bytes:
        return _sse(self.error_body(529, "Overloaded"), "error")

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kinds = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
        kind = kinds.get(status, "overloaded_error" if status == 529 else "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}


class GeminiWire(Wire):
    """streamGenerateContent?alt=sse: GenerateContentResponse objects, finishReason last."""

    def _chunk(self, model: str, text: str, **candidate: Any) -> bytes:
        content = {"parts": [{"text": text}], "role": "model"}
        body = {"candidates": [{"content": content, "index": 0, **candidate}]}
        return _sse({**body, "modelVersion": model, "responseId": "r1"})

    def delta(self, model: str, text: str) -> bytes:
        return self._chunk(model, text)

    def tail(self, model: str, input_tokens: int, output_tokens: int) -> list[bytes]:
        usage = {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": input_tokens + output_tokens,
        }
        content = {"parts": [{"text": ""}], "role": "model"}
        candidate = {"content": content, "finishReason": "STOP", "index": 0}
        return [_sse({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model})]

    def stream_error(self) -> bytes:
        return _sse(self.error_body(500, "Internal error encountered."))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        statuses = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}
        return {
            "error": {
                "code": status,
                "message": message,
                "status": statuses.get(status, "INTERNAL"),
            }
        }


class OllamaWire(Wire):
    """/api/chat: newline-delimited JSON objects, the last with ``done: true`` and counts."""

    def delta(self, model: str, text: str) -> bytes:
        message = {"role": "assistant", "content": text}
        return _line(
            {
                "model": model,
                "created_at": "2024-01-01T00:00:00Z",
                "message": message,
                "done": False,
            }
        )

    def tail(self, model: str, input_tokens: int, output_tokens: int) -> list[bytes]:
        message = {"role": "assistant", "content": ""}
        return [
            _line(
                {
                    "model": model,
                    "created_at": "2024-01-01T00:00:00Z",
                    "message": message,
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": input_tokens,
                    "eval_count": output_tokens,
                }
            )
        ]

    def stream_error(self) -> bytes:
        return _line({"error": "an error was encountered while running the model"})

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}


WIRES: dict[str, Wire] = {
    "openai": OpenAIWire("openai"),
    "anthropic": AnthropicWire("anthropic"),
    "gemini": GeminiWire("gemini"),
    "ollama": OllamaWire("ollama", content_type="application/x-ndjson"),
}
