"""OpenAI Chat Completions streaming, and every OpenAI-compatible server.

Uses the official ``openai`` SDK (``AsyncOpenAI(base_url=...)``) with
``stream_options.include_usage`` so the last chunk carries token counts. A config entry with
``type: openai`` and its own ``base_url`` serves DeepSeek, vLLM, LM Studio or Ollama's
``/v1`` the same way.

Stream: ``delta.content`` is text; ``delta.reasoning_content`` (DeepSeek, vLLM) or
``delta.reasoning`` (OpenRouter, newer vLLM), which the SDK keeps as extra fields, is
reasoning; ``delta.refusal`` is a refusal; ``delta.tool_calls`` are fragments keyed by
``index`` (the first fragment of a call has its id and name), closed by the
``finish_reason``. Usage adds ``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens``.

End of stream: the SDK hides ``data: [DONE]``, so a chunk with ``finish_reason`` is the
final frame that makes a stream complete; usage is taken when the server sends it
(compatible servers may not), and estimated by the session otherwise.

Cancellation: the session's CancelledError lands in the SDK's read of the response body,
whose HTTP client closes the connection; ``finally`` closes the SDK stream as well, so
leaving the loop any other way cannot leave the request streaming.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletionChunk

from server.config import ProviderConfig
from server.errors import ProviderError, ProviderTimeout
from server.protocol.envelope import ImagePart, Message
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    Refusal,
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
    effort,
    finish_reason,
    raw_reason,
    require_model,
    tool_called,
)

__all__ = ["OpenAIProvider", "chat_messages", "chat_usage", "classify_openai", "openai_client"]

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """``type: openai``: Chat Completions over the official SDK."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = require_model(name, config.model)
        self._config = config
        self._client = LazyClient(lambda: openai_client(config), lambda client: client.close())
        # OpenAI itself deprecated max_tokens (its reasoning models reject it); compatible
        # servers (DeepSeek, vLLM, Ollama, LM Studio) know max_tokens.
        self._official = urlsplit(config.base_url or OPENAI_URL).hostname == "api.openai.com"
        self._max_tokens_key = "max_completion_tokens" if self._official else "max_tokens"

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        arguments = self.request_params(request)
        client = await self._client.get()
        model = request.model or self.default_model
        with map_provider_errors(self.name, self._classify):
            chunks = await client.chat.completions.create(
                model=model,
                messages=chat_messages(request),
                stream=True,
                stream_options={"include_usage": True},
                **arguments,
            )
            try:
                finish: Finish | None = None
                calls = ToolCalls()
                async for chunk in chunks:
                    for event in _chunk_events(chunk, calls):
                        if isinstance(event, Finish):
                            finish = event
                        else:
                            yield event
                if finish is not None:
                    yield finish
            finally:
                await chunks.close()

    def request_params(self, request: ProviderRequest) -> dict[str, Any]:
        """Everything but model and messages, under the names Chat Completions uses for
        this server; ``provider_options`` travel as ``extra_body`` (merged verbatim)."""
        params = GenerationParams.of(self._config.params, request)
        if self._official:
            params.refuse(self.name, "top_k")  # OpenAI has no top_k; compatible servers do
        out: dict[str, Any] = {
            "temperature": params.temperature,
            self._max_tokens_key: params.max_tokens,
            "top_p": params.top_p,
            "stop": list(params.stop) or None,
            "seed": params.seed,
            "reasoning_effort": effort(self.name, request),
            **_tools(request),
        }
        extra = {**({"top_k": params.top_k} if params.top_k else {}), **params.provider_options}
        if extra:
            out["extra_body"] = extra
        return {key: value for key, value in out.items() if value is not None}

    def _classify(self, exc: Exception) -> ProviderError | None:
        return classify_openai(self.name, exc)

    async def aclose(self) -> None:
        await self._client.aclose()


def openai_client(config: ProviderConfig) -> openai.AsyncOpenAI:
    """The SDK client of an entry (shared with the Responses adapter); blocking to build."""
    return openai.AsyncOpenAI(
        api_key=config.api_key,
        base_url=config.base_url,
        timeout=config.timeout_s,
        max_retries=0,  # ResilientProvider is the only retry owner
    )


def classify_openai(name: str, exc: Exception) -> ProviderError | None:
    """The openai SDK's exceptions (shared with the Responses adapter)."""
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        return status_error(name, exc.status_code, retry_after_seconds(headers), str(exc))
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{name} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"the connection to {name} failed or was dropped")
    if isinstance(exc, openai.APIError):  # an `error` object inside the stream
        return stream_error(name, exc.message)
    return None


def _chunk_events(chunk: ChatCompletionChunk, calls: ToolCalls) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    if chunk.usage is not None:
        events.append(chat_usage(chunk.usage))
    for choice in chunk.choices[:1]:
        delta = choice.delta
        extra = delta.model_extra or {}
        thought = extra.get("reasoning_content") or extra.get("reasoning")
        if isinstance(thought, str) and thought:
            events.append(ReasoningDelta(thought))
        if delta.content:
            events.append(TextDelta(delta.content))
        if delta.refusal:
            events.append(Refusal(delta.refusal))
        for fragment in delta.tool_calls or ():
            function = fragment.function
            if not calls.is_open(fragment.index):
                call_id = fragment.id or f"call_{fragment.index}"
                events.append(
                    calls.start(fragment.index, call_id, (function and function.name) or "")
                )
            if function is not None and function.arguments:
                events.append(calls.delta(fragment.index, function.arguments))
        if choice.finish_reason is not None:
            events += calls.end_all()
            raw = raw_reason(choice.finish_reason)
            # Some compatible servers say "stop" after calls; a reply of calls is tool_calls.
            reason = "tool_calls" if calls.count and raw == "stop" else finish_reason(raw)
            events.append(Finish(reason, chunk.model, raw))
    return events


def chat_usage(usage: Any) -> Usage:
    """Chat Completions usage, with its cached and reasoning details when reported."""
    cached = getattr(usage.prompt_tokens_details, "cached_tokens", None)
    reasoning = getattr(usage.completion_tokens_details, "reasoning_tokens", None)
    return Usage(usage.prompt_tokens, usage.completion_tokens, cached, reasoning)


def chat_messages(request: ProviderRequest) -> list[Any]:
    """The conversation as Chat Completions messages (tool calls, tool turns, images).

    An assistant turn's reasoning is not sent back: Chat Completions has no field for it
    (DeepSeek asks that ``reasoning_content`` be left out of the history)."""
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + [_chat_message(m) for m in request.messages]


def _chat_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.parts and any(isinstance(part, ImagePart) for part in message.parts):
        out["content"] = [
            {"type": "image_url", "image_url": {"url": part.url}}
            if isinstance(part, ImagePart)
            else {"type": "text", "text": part.text}
            for part in message.parts
        ]
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return out


def _tools(request: ProviderRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    tools = [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "parameters": dict(tool.parameters),
                **({"description": tool.description} if tool.description else {}),
            },
        }
        for tool in request.tools
    ]
    named = tool_called(request)
    choice = {"type": "function", "function": {"name": named}} if named else request.tool_choice
    return {"tools": tools, "tool_choice": choice}
