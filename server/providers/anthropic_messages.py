"""Anthropic Messages streaming over the official ``anthropic`` SDK.

``messages.create(stream=True)`` yields the raw events: ``message_start`` (input tokens,
model), ``content_block_start`` / ``content_block_delta`` / ``content_block_stop`` per
content block, ``message_delta`` (stop reason, usage) and ``message_stop``, the final
frame: a stream without it is truncated, not complete. The SDK skips ``ping`` events and
raises on an in-stream ``error`` event. The raw events are used instead of the
``messages.stream()`` helper, which accumulates a message we do not need.

Blocks: ``text`` (``text_delta``; ``citations_delta`` become sources), ``thinking``
(``thinking_delta``, then ``signature_delta``: the signature the next turn must send back),
``redacted_thinking`` (its ``data`` kept opaque), ``tool_use`` (id and name at its start,
``input_json_delta`` fragments, complete at its stop).

Usage: ``message_delta.usage`` is cumulative and wins over ``message_start`` (a compatible
proxy such as LiteLLM sends 0 input tokens at the start and the real count at the end).
Anthropic counts cache reads and writes apart from ``input_tokens``; here input tokens are
their sum and ``cached_input_tokens`` the cache reads.

The system prompt (``system`` and any system turns) goes in Anthropic's ``system``
parameter; ``max_tokens`` is required by the API, so it defaults to 1024. API version
2026-10-21, which the SDK (2.x) speaks, rejects every sampling parameter (the SDK no longer
accepts them): a request's ``temperature``, ``top_p``, ``top_k`` or ``seed`` is refused
with ``invalid_field``.

Cancellation: as for OpenAI, the CancelledError lands in the SDK's read and the HTTP client
closes the connection; ``finally`` closes the SDK stream too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from server.config import ProviderConfig
from server.errors import ProviderError, ProviderTimeout
from server.protocol.envelope import ImagePart, Message
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    Source,
    TextDelta,
    Usage,
    map_provider_errors,
    retry_after_seconds,
    status_error,
    stream_error,
)
from server.providers.common import (
    GenerationParams,
    LazyClient,
    ToolCalls,
    finish_reason,
    raw_reason,
    require_model,
    split_system,
    tool_called,
)

__all__ = ["AnthropicProvider"]

DEFAULT_MAX_TOKENS = 1024


class AnthropicProvider:
    """``type: anthropic``: the Messages API over the official SDK."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = require_model(name, config.model)
        self._config = config
        self._client = LazyClient(self._build, lambda client: client.close())

    def _build(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self._config.api_key,
            base_url=self._config.base_url,
            timeout=self._config.timeout_s,
            max_retries=0,  # ResilientProvider is the only retry owner
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        arguments = self.arguments(request)
        client = await self._client.get()
        with map_provider_errors(self.name, self._classify):
            events = await client.messages.create(
                model=request.model or self.default_model, stream=True, **arguments
            )
            try:
                reader = _Reader()
                async for event in events:
                    for out in reader.read(event):
                        yield out
            finally:
                await events.close()

    def arguments(self, request: ProviderRequest) -> dict[str, Any]:
        """Everything but the model; ``provider_options`` travel as ``extra_body``."""
        system, turns = split_system(request)
        params = GenerationParams.of(self._config.params, request)
        params.refuse(self.name, "temperature", "top_p", "top_k", "seed")
        out: dict[str, Any] = {
            "messages": _messages(turns),
            "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS,
            "system": system,
            "stop_sequences": list(params.stop) or None,
            **_tools(request),
            **_thinking(request),
            "extra_body": dict(params.provider_options) or None,
        }
        return {key: value for key, value in out.items() if value is not None}

    def _classify(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, anthropic.APIStatusError):
            if exc.status_code == 200:  # an `error` event inside a 200 stream
                return stream_error(self.name, str(exc.body))
            headers = exc.response.headers
            return status_error(self.name, exc.status_code, retry_after_seconds(headers), str(exc))
        if isinstance(exc, anthropic.APITimeoutError):
            return ProviderTimeout(f"{self.name} did not answer in time")
        if isinstance(exc, anthropic.APIConnectionError):
            return ProviderError(f"the connection to {self.name} failed or was dropped")
        return None

    async def aclose(self) -> None:
        await self._client.aclose()


class _Reader:
    """One stream's state: the model, the usage so far, the open tool calls."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.input_tokens = self.output_tokens = 0
        self.cached_tokens: int | None = None  # None: never reported
        self.reasoning_tokens: int | None = None
        self.raw_reason: str | None = None
        self.calls = ToolCalls()

    def read(self, event: Any) -> list[ProviderEvent]:
        match event.type:
            case "message_start":
                self.model = event.message.model
                self._usage(event.message.usage)
            case "content_block_start":
                return self._block_start(event.index, event.content_block)
            case "content_block_delta":
                return self._delta(event.index, event.delta)
            case "content_block_stop" if self.calls.is_open(event.index):
                return [self.calls.end(event.index)]
            case "message_delta":
                self._usage(event.usage)
                self.raw_reason = raw_reason(event.delta.stop_reason)
            case "message_stop":
                usage = Usage(
                    self.input_tokens,
                    self.output_tokens,
                    self.cached_tokens,
                    self.reasoning_tokens,
                )
                reason = finish_reason(self.raw_reason)
                return [usage, Finish(reason, self.model, self.raw_reason)]
        return []

    def _usage(self, usage: Any) -> None:
        """Counts present in this usage object replace the earlier ones (they are
        cumulative); a 0 input count (LiteLLM's message_start) never hides a real one."""
        parts = [
            usage.input_tokens,
            usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens,
        ]
        if any(parts):
            self.input_tokens = sum(part or 0 for part in parts)
        if usage.cache_read_input_tokens is not None:
            self.cached_tokens = usage.cache_read_input_tokens
        self.output_tokens = usage.output_tokens or self.output_tokens
        details = getattr(usage, "output_tokens_details", None)
        if details is not None:
            self.reasoning_tokens = details.thinking_tokens

    def _block_start(self, index: int, block: Any) -> list[ProviderEvent]:
        match block.type:
            case "tool_use":
                return [self.calls.start(index, block.id, block.name)]
            case "redacted_thinking":
                return [ReasoningDelta("", redacted=block.data)]
            case "thinking" if block.thinking:
                return [ReasoningDelta(block.thinking)]
            case "text" if block.text:
                return [TextDelta(block.text)]
        return []

    def _delta(self, index: int, delta: Any) -> list[ProviderEvent]:
        match delta.type:
            case "text_delta":
                return [TextDelta(delta.text)]
            case "thinking_delta":
                return [ReasoningDelta(delta.thinking)]
            case "signature_delta":
                return [ReasoningDelta("", signature=delta.signature)]
            case "input_json_delta" if self.calls.is_open(index):
                return [self.calls.delta(index, delta.partial_json)] if delta.partial_json else []
            case "citations_delta":
                return [_source(delta.citation)]
        return []


def _source(citation: Any) -> Source:
    return Source(
        url=getattr(citation, "url", None),
        title=getattr(citation, "title", None) or getattr(citation, "document_title", None),
        cited_text=getattr(citation, "cited_text", None),
        document_index=getattr(citation, "document_index", None),
    )


def _messages(turns: list[Message]) -> list[dict[str, Any]]:
    """Anthropic's turns: tool results are user content blocks, and consecutive tool turns
    share one user message (the API wants every result of a turn's calls together)."""
    out: list[dict[str, Any]] = []
    for message in turns:
        if message.role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            if out and out[-1]["role"] == "user" and _all_results(out[-1]["content"]):
                out[-1]["content"].append(result)
            else:
                out.append({"role": "user", "content": [result]})
        elif message.role == "assistant" and (message.tool_calls or message.reasoning):
            out.append({"role": "assistant", "content": _assistant_blocks(message)})
        elif message.parts:
            out.append({"role": message.role, "content": [_block(part) for part in message.parts]})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def _all_results(content: object) -> bool:
    return isinstance(content, list) and all(block["type"] == "tool_result" for block in content)


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    """The signed thinking block first (the API checks it while a tool-use turn goes on),
    then text, then the calls."""
    blocks: list[dict[str, Any]] = []
    if message.reasoning is not None and message.reasoning.signature:
        blocks.append(
            {
                "type": "thinking",
                "thinking": message.reasoning.text,
                "signature": message.reasoning.signature,
            }
        )
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        for call in message.tool_calls
    ]
    return blocks


def _block(part: Any) -> dict[str, Any]:
    if not isinstance(part, ImagePart):
        return {"type": "text", "text": part.text}
    if (inline := part.inline) is not None:
        media_type, data = inline
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _tools(request: ProviderRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    tools = [
        {
            "name": tool.name,
            "input_schema": dict(tool.parameters),
            **({"description": tool.description} if tool.description else {}),
        }
        for tool in request.tools
    ]
    named = tool_called(request)
    kinds = {"auto": "auto", "none": "none", "required": "any"}
    choice = {"type": "tool", "name": named} if named else {"type": kinds[str(request.tool_choice)]}
    return {"tools": tools, "tool_choice": choice}


def _thinking(request: ProviderRequest) -> dict[str, Any]:
    """effort: adaptive thinking at that effort; budget_tokens: manual thinking with that
    budget; enabled false: thinking off."""
    reasoning = request.reasoning
    if reasoning is None:
        return {}
    if not reasoning.enabled:
        return {"thinking": {"type": "disabled"}}
    if reasoning.budget_tokens is not None:
        return {"thinking": {"type": "enabled", "budget_tokens": reasoning.budget_tokens}}
    return {"thinking": {"type": "adaptive"}, "output_config": {"effort": reasoning.effort}}
