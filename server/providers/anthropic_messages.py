"""Anthropic Messages streaming over the official ``anthropic`` SDK.

``messages.create(stream=True)`` yields the raw events: ``message_start`` (input tokens,
model), ``content_block_delta`` (text), ``message_delta`` (stop reason, output tokens) and
``message_stop``, the final frame: a stream without it is truncated, not complete. The SDK
skips ``ping`` events and raises on an in-stream ``error`` event. The raw events are used
instead of the ``messages.stream()`` helper, which accumulates a message we do not need.

The system prompt (``system`` and any system turns) goes in Anthropic's ``system``
parameter; ``max_tokens`` is required by the API, so it defaults to 1024. ``temperature``
and ``top_p`` are not sent: API version 2026-10-21, which the SDK (2.x) speaks, rejects
every sampling parameter with a 400, and the SDK no longer accepts them.

Cancellation: as for OpenAI, the CancelledError lands in the SDK's read and the HTTP client
closes the connection; ``finally`` closes the SDK stream too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from server.config import ProviderConfig
from server.errors import ProviderError, ProviderTimeout
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
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
    finish_reason,
    require_model,
    split_system,
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
        client = await self._client.get()
        with map_provider_errors(self.name, self._classify):
            events = await client.messages.create(
                model=request.model or self.default_model, stream=True, **self._arguments(request)
            )
            try:
                model, input_tokens, output_tokens, reason = None, 0, 0, "other"
                async for event in events:
                    if event.type == "message_start":
                        model = event.message.model
                        input_tokens = event.message.usage.input_tokens
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield TextDelta(event.delta.text)
                    elif event.type == "message_delta":
                        output_tokens = event.usage.output_tokens
                        reason = finish_reason(event.delta.stop_reason)
                    elif event.type == "message_stop":
                        yield Usage(input_tokens, output_tokens)
                        yield Finish(reason, model)
            finally:
                await events.close()

    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        system, turns = split_system(request)
        params = GenerationParams.of(self._config.params, request)
        out: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in turns],
            "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS,
            "system": system,
            "stop_sequences": list(params.stop) or None,
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
