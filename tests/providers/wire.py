"""The five upstream wire formats, written from each provider's public API reference.

Each ``Wire`` knows how its provider frames a streamed reply (head frames, one frame per
text delta, the tail that carries finish reason and usage), how it streams a rich reply
(``script``: reasoning, tool calls, citations, refusals; PROTOCOL.md section 9), what an
in-stream error looks like, and the JSON body of an HTTP error. The local upstream
(upstream.py) uses them to answer the official SDKs exactly as the real services would;
tests/providers/test_wire_sdks.py proves each format by letting the SDK assemble it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["WIRES", "Call", "Cite", "Item", "Redacted", "Refuse", "Say", "Script", "Think", "Wire"]


# Rich replies (PROTOCOL.md section 9): a reply is a sequence of items, and each wire
# renders them the way its provider streams them. Consecutive calls are one group: the
# parallel calls of one turn.


@dataclass(frozen=True)
class Think:
    """Reasoning text, with the provider's signature where it signs reasoning."""

    text: str
    signature: str = "c2lnLTE="


@dataclass(frozen=True)
class Redacted:
    """Anthropic's encrypted reasoning."""

    data: str


@dataclass(frozen=True)
class Cite:
    url: str
    title: str
    cited_text: str = ""


@dataclass(frozen=True)
class Say:
    """Text, with the citations that back it."""

    text: str
    cites: tuple[Cite, ...] = ()


@dataclass(frozen=True)
class Call:
    """A tool call: its arguments as JSON text, streamed in two fragments."""

    id: str
    name: str
    arguments: str
    signature: str | None = None  # Gemini's thought signature (base64)


@dataclass(frozen=True)
class Refuse:
    text: str


Item = Think | Redacted | Say | Call | Refuse


@dataclass(frozen=True)
class Script:
    """What a rich reply says, and the counts its usage reports."""

    items: tuple[Item, ...]
    input_tokens: int = 11
    output_tokens: int = 7
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    finish: str | None = None  # the provider's own finish word; None: its usual one
    input_at_end: bool = False  # Anthropic via LiteLLM: 0 input tokens at the start
    blocked: str | None = None  # Gemini: the prompt is blocked with this reason


def halves(text: str) -> list[str]:
    middle = max(len(text) // 2, 1)
    return [piece for piece in (text[:middle], text[middle:]) if piece]


def groups(items: tuple[Item, ...]) -> list[Item | list[Call]]:
    """The items, with each run of consecutive calls gathered into one list."""
    out: list[Item | list[Call]] = []
    for item in items:
        if isinstance(item, Call) and out and isinstance(out[-1], list):
            out[-1].append(item)
        else:
            out.append([item] if isinstance(item, Call) else item)
    return out


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

    def tail(self, model: str, input_tokens: int, output_tokens: int, text: str) -> list[bytes]:
        raise NotImplementedError

    def script(self, model: str, script: Script) -> list[bytes]:
        """The whole body of a rich reply."""
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

    def tail(self, model: str, input_tokens: int, output_tokens: int, text: str) -> list[bytes]:
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

    def script(self, model: str, script: Script) -> list[bytes]:
        frames = self.head(model, script.input_tokens)
        calls = 0

        def delta(**fields: Any) -> bytes:
            choice = {"index": 0, "delta": fields, "finish_reason": None}
            return _sse(self._chunk(model, choices=[choice]))

        for item in groups(script.items):
            if isinstance(item, list):  # parallel calls: each begins, then fragments interleave
                for i, call in enumerate(item):
                    function = {"name": call.name, "arguments": ""}
                    start = {"index": calls + i, "id": call.id, "type": "function"}
                    frames.append(delta(tool_calls=[{**start, "function": function}]))
                pieces = [halves(call.arguments) for call in item]
                for k in range(2):
                    for i, parts in enumerate(pieces):
                        if k < len(parts):
                            fragment = {"index": calls + i, "function": {"arguments": parts[k]}}
                            frames.append(delta(tool_calls=[fragment]))
                calls += len(item)
            elif isinstance(item, Think):  # DeepSeek's (and vLLM's) reasoning_content
                frames += [delta(content=None, reasoning_content=p) for p in halves(item.text)]
            elif isinstance(item, Say):
                frames += [delta(content=piece) for piece in halves(item.text)]
            elif isinstance(item, Refuse):
                frames += [delta(content=None, refusal=piece) for piece in halves(item.text)]
        finish = {
            "index": 0,
            "delta": {},
            "finish_reason": script.finish or ("tool_calls" if calls else "stop"),
        }
        usage = {
            "prompt_tokens": script.input_tokens,
            "completion_tokens": script.output_tokens,
            "total_tokens": script.input_tokens + script.output_tokens,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
        }
        return [
            *frames,
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

    def tail(self, model: str, input_tokens: int, output_tokens: int, text: str) -> list[bytes]:
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

    def script(self, model: str, script: Script) -> list[bytes]:
        head = self.head(model, 0 if script.input_at_end else script.input_tokens)[:1]
        message_start = json.loads(head[0].decode().split("data: ", 1)[1])
        message_start["message"]["usage"]["cache_read_input_tokens"] = script.cached_tokens
        frames = [_sse(message_start, "message_start")]
        calls = refused = False
        for index, item in enumerate(script.items):

            def event(kind: str, index: int = index, **fields: Any) -> bytes:
                return _sse({"type": kind, "index": index, **fields}, kind)

            def delta(index: int = index, **fields: Any) -> bytes:
                return event("content_block_delta", index, delta=fields)

            if isinstance(item, Think):
                block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
                frames.append(event("content_block_start", content_block=block))
                frames += [delta(type="thinking_delta", thinking=p) for p in halves(item.text)]
                frames.append(delta(type="signature_delta", signature=item.signature))
            elif isinstance(item, Redacted):
                block = {"type": "redacted_thinking", "data": item.data}
                frames.append(event("content_block_start", content_block=block))
            elif isinstance(item, Say | Refuse):
                refused = refused or isinstance(item, Refuse)
                cites = item.cites if isinstance(item, Say) else ()
                block = {"type": "text", "text": ""}
                if cites:
                    block["citations"] = []
                frames.append(event("content_block_start", content_block=block))
                for cite in cites:
                    citation = {
                        "type": "web_search_result_location",
                        "url": cite.url,
                        "title": cite.title,
                        "cited_text": cite.cited_text,
                        "encrypted_index": "ZW5j",
                    }
                    frames.append(delta(type="citations_delta", citation=citation))
                frames += [delta(type="text_delta", text=piece) for piece in halves(item.text)]
            elif isinstance(item, Call):
                calls = True
                block = {"type": "tool_use", "id": item.id, "name": item.name, "input": {}}
                frames.append(event("content_block_start", content_block=block))
                frames += [
                    delta(type="input_json_delta", partial_json=p) for p in halves(item.arguments)
                ]
            frames.append(event("content_block_stop"))
        stop = script.finish or ("refusal" if refused else "tool_use" if calls else "end_turn")
        usage: dict[str, Any] = {"output_tokens": script.output_tokens}
        if script.input_at_end:  # cumulative: the real count arrives at the end
            usage["input_tokens"] = script.input_tokens
            usage["cache_read_input_tokens"] = script.cached_tokens
        if script.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": script.reasoning_tokens}
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": usage,
        }
        return [
            *frames,
            _sse(message_delta, "message_delta"),
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

    def tail(self, model: str, input_tokens: int, output_tokens: int, text: str) -> list[bytes]:
        usage = {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": input_tokens + output_tokens,
        }
        content = {"parts": [{"text": ""}], "role": "model"}
        candidate = {"content": content, "finishReason": "STOP", "index": 0}
        return [_sse({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model})]

    def script(self, model: str, script: Script) -> list[bytes]:
        usage = {
            "promptTokenCount": script.input_tokens,
            "candidatesTokenCount": script.output_tokens - script.reasoning_tokens,
            "thoughtsTokenCount": script.reasoning_tokens,
            "cachedContentTokenCount": script.cached_tokens,
            "totalTokenCount": script.input_tokens + script.output_tokens,
        }
        if script.blocked:  # the prompt is refused before any candidate
            feedback = {"blockReason": script.blocked}
            return [
                _sse({"promptFeedback": feedback, "usageMetadata": usage, "modelVersion": model})
            ]

        def chunk(parts: list[dict[str, Any]], **candidate: Any) -> bytes:
            content = {"parts": parts, "role": "model"}
            body = {"candidates": [{"content": content, "index": 0, **candidate}]}
            return _sse({**body, "modelVersion": model, "responseId": "r1"})

        frames: list[bytes] = []
        cites: list[Cite] = []
        for item in groups(script.items):
            if isinstance(item, list):  # parallel calls arrive whole, in one chunk
                parts = []
                for call in item:
                    part: dict[str, Any] = {
                        "functionCall": {"name": call.name, "args": json.loads(call.arguments)}
                    }
                    if call.signature:
                        part["thoughtSignature"] = call.signature
                    parts.append(part)
                frames.append(chunk(parts))
            elif isinstance(item, Think):
                frames += [chunk([{"text": p, "thought": True}]) for p in halves(item.text)]
            elif isinstance(item, Say):
                frames += [chunk([{"text": piece}]) for piece in halves(item.text)]
                cites += item.cites
        grounding = {"groundingChunks": [{"web": {"uri": c.url, "title": c.title}} for c in cites]}
        last = {"finishReason": script.finish or "STOP"}
        if cites:
            last["groundingMetadata"] = grounding  # type: ignore[assignment]
        body = {
            "candidates": [
                {"content": {"parts": [{"text": ""}], "role": "model"}, "index": 0, **last}
            ]
        }
        return [*frames, _sse({**body, "usageMetadata": usage, "modelVersion": model})]

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

    def tail(self, model: str, input_tokens: int, output_tokens: int, text: str) -> list[bytes]:
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

    def script(self, model: str, script: Script) -> list[bytes]:
        def line(**message: Any) -> bytes:
            body = {"role": "assistant", "content": "", **message}
            stamp = "2024-01-01T00:00:00Z"
            return _line({"model": model, "created_at": stamp, "message": body, "done": False})

        frames: list[bytes] = []
        for item in groups(script.items):
            if isinstance(item, list):  # a turn's calls come whole, in one line
                calls = [
                    {"function": {"index": i, "name": c.name, "arguments": json.loads(c.arguments)}}
                    for i, c in enumerate(item)
                ]
                frames.append(line(tool_calls=calls))
            elif isinstance(item, Think):
                frames += [line(thinking=piece) for piece in halves(item.text)]
            elif isinstance(item, Say):
                frames += [line(content=piece) for piece in halves(item.text)]
        tail = json.loads(self.tail(model, script.input_tokens, script.output_tokens, "")[0])
        tail["done_reason"] = script.finish or "stop"
        return [*frames, _line(tail)]

    def stream_error(self) -> bytes:
        return _line({"error": "an error was encountered while running the model"})

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}


_SEQUENCE = itertools.count()  # sequence_number: increasing, as the API's are


class ResponsesWire(Wire):
    """The Responses API: typed semantic events (``event: response.…``), each with a
    ``sequence_number``, from ``response.created`` to ``response.completed``."""

    def _event(self, kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(_SEQUENCE), **fields}, kind)

    def _response(self, model: str, status: str, output: list[Any], **more: Any) -> dict[str, Any]:
        return {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "status": status,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "usage": None,
            **more,
        }

    def _usage(
        self, input_tokens: int, output_tokens: int, cached: int, reasoning: int
    ) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        }

    def _message_start(self, index: int, item_id: str, part: dict[str, Any]) -> list[bytes]:
        item = {
            "type": "message",
            "id": item_id,
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        return [
            self._event("response.output_item.added", output_index=index, item=item),
            self._event("response.content_part.added", **where, part=part),
        ]

    def _message_end(
        self, index: int, item_id: str, part: dict[str, Any]
    ) -> tuple[list[bytes], dict[str, Any]]:
        item = {
            "type": "message",
            "id": item_id,
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        frames = [
            self._event("response.content_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=index, item=item),
        ]
        return frames, item

    def head(self, model: str, input_tokens: int) -> list[bytes]:
        response = self._response(model, "in_progress", [])
        part = {"type": "output_text", "text": "", "annotations": []}
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
            *self._message_start(0, "msg_1", part),
        ]

    def delta(self, model: str, text: str) -> bytes:
        where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        return self._event("response.output_text.delta", **where, delta=text, logprobs=[])

    def tail(self, model: str, input_tokens: int, output_tokens: int, text: str) -> list[bytes]:
        where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": []}
        frames, item = self._message_end(0, "msg_1", part)
        usage = self._usage(input_tokens, output_tokens, 0, 0)
        response = self._response(model, "completed", [item], usage=usage)
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            *frames,
            self._event("response.completed", response=response),
        ]

    def script(self, model: str, script: Script) -> list[bytes]:
        response = self._response(model, "in_progress", [])
        frames = [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]
        output: list[dict[str, Any]] = []
        for index, item in enumerate(script.items):
            if isinstance(item, Think):
                frames += self._reasoning(index, f"rs_{index}", item.text, output)
            elif isinstance(item, Say):
                frames += self._text(index, f"msg_{index}", item, output)
            elif isinstance(item, Refuse):
                frames += self._refusal(index, f"msg_{index}", item.text, output)
            elif isinstance(item, Call):
                frames += self._call(index, f"fc_{index}", item, output)
        usage = self._usage(
            script.input_tokens, script.output_tokens, script.cached_tokens, script.reasoning_tokens
        )
        if script.finish:  # a reason the response stopped short
            details = {"reason": script.finish}
            final = self._response(
                model, "incomplete", output, usage=usage, incomplete_details=details
            )
            return [*frames, self._event("response.incomplete", response=final)]
        final = self._response(model, "completed", output, usage=usage)
        return [*frames, self._event("response.completed", response=final)]

    def _reasoning(self, index: int, item_id: str, text: str, output: list[Any]) -> list[bytes]:
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        empty = {"type": "summary_text", "text": ""}
        full = {"type": "summary_text", "text": text}
        item = {"type": "reasoning", "id": item_id, "summary": [full]}
        output.append(item)
        return [
            self._event(
                "response.output_item.added", output_index=index, item={**item, "summary": []}
            ),
            self._event("response.reasoning_summary_part.added", **where, part=empty),
            *[
                self._event("response.reasoning_summary_text.delta", **where, delta=p)
                for p in halves(text)
            ],
            self._event("response.reasoning_summary_text.done", **where, text=text),
            self._event("response.reasoning_summary_part.done", **where, part=full),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _text(self, index: int, item_id: str, say: Say, output: list[Any]) -> list[bytes]:
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        annotations = [
            {
                "type": "url_citation",
                "url": c.url,
                "title": c.title,
                "start_index": 0,
                "end_index": len(say.text),
            }
            for c in say.cites
        ]
        frames = self._message_start(
            index, item_id, {"type": "output_text", "text": "", "annotations": []}
        )
        frames += [
            self._event("response.output_text.delta", **where, delta=p, logprobs=[])
            for p in halves(say.text)
        ]
        frames += [
            self._event(
                "response.output_text.annotation.added", **where, annotation_index=k, annotation=a
            )
            for k, a in enumerate(annotations)
        ]
        frames.append(self._event("response.output_text.done", **where, text=say.text, logprobs=[]))
        part = {"type": "output_text", "text": say.text, "annotations": annotations}
        end, item = self._message_end(index, item_id, part)
        output.append(item)
        return frames + end

    def _refusal(self, index: int, item_id: str, text: str, output: list[Any]) -> list[bytes]:
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        frames = self._message_start(index, item_id, {"type": "refusal", "refusal": ""})
        frames += [self._event("response.refusal.delta", **where, delta=p) for p in halves(text)]
        frames.append(self._event("response.refusal.done", **where, refusal=text))
        end, item = self._message_end(index, item_id, {"type": "refusal", "refusal": text})
        output.append(item)
        return frames + end

    def _call(self, index: int, item_id: str, call: Call, output: list[Any]) -> list[bytes]:
        where = {"item_id": item_id, "output_index": index}
        item = {"type": "function_call", "id": item_id, "call_id": call.id, "name": call.name}
        done = {**item, "arguments": call.arguments, "status": "completed"}
        output.append(done)
        return [
            self._event(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            ),
            *[
                self._event("response.function_call_arguments.delta", **where, delta=p)
                for p in halves(call.arguments)
            ],
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=call.name,
                arguments=call.arguments,
            ),
            self._event("response.output_item.done", output_index=index, item=done),
        ]

    def stream_error(self) -> bytes:
        return self._event(
            "error", code="server_error", message="The server had an error", param=None
        )

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return OpenAIWire("openai").error_body(status, message)


WIRES: dict[str, Wire] = {
    "openai": OpenAIWire("openai"),
    "anthropic": AnthropicWire("anthropic"),
    "gemini": GeminiWire("gemini"),
    "ollama": OllamaWire("ollama", content_type="application/x-ndjson"),
    "openai_responses": ResponsesWire("openai_responses"),
}
