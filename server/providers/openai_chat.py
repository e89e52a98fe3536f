"""OpenAI Chat Completions streaming, and every OpenAI-compatible server.

Uses the official ``openai`` SDK (``AsyncOpenAI(base_url=...)``) with
``stream_options.include_usage`` so the last chunk carries token counts. A config entry with
``type: openai`` and its own ``base_url`` serves DeepSeek, vLLM, LM Studio or Ollama's
``/v1`` the same way.

End of stream: the SDK hides ``data: [DONE]``, so a chunk with ``finish_reason`` is the
final frame that makes a stream complete; usage is taken when the server sends it
(compatible servers may not), and estimated by the session otherwise.

Cancellation: the session's CancelledError lands in the SDK's read of the response body,
whose HTTP client closes the connection; ``finally`` closes the SDK stream as well, so
leaving the loop any other way cannot leave the request streaming.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import openai

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
from server.providers.common import GenerationParams, LazyClient, finish_reason, require_model

__all__ = ["OpenAIProvider"]

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """``type: openai``: Chat Completions over the official SDK."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = require_model(name, config.model)
        self._config = config
        self._client = LazyClient(self._build, lambda client: client.close())
        # OpenAI itself deprecated max_tokens (its reasoning models reject it); compatible
        # servers (DeepSeek, vLLM, Ollama, LM Studio) know max_tokens.
        official = urlsplit(config.base_url or OPENAI_URL).hostname == "api.openai.com"
        self._max_tokens_key = "max_completion_tokens" if official else "max_tokens"

    def _build(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._config.api_key,
            base_url=self._config.base_url,
            timeout=self._config.timeout_s,
            max_retries=0,  # ResilientProvider is the only retry owner
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        client = await self._client.get()
        model = request.model or self.default_model
        with map_provider_errors(self.name, self._classify):
            chunks = await client.chat.completions.create(
                model=model,
                messages=self._messages(request),
                stream=True,
                stream_options={"include_usage": True},
                **self.request_params(request),
            )
            try:
                finish: Finish | None = None
                async for chunk in chunks:
                    if chunk.usage is not None:
                        yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices[:1]:
                        if choice.delta.content:
                            yield TextDelta(choice.delta.content)
                        if choice.finish_reason is not None:
                            finish = Finish(finish_reason(choice.finish_reason), chunk.model)
                if finish is not None:
                    yield finish
            finally:
                await chunks.close()

    def _messages(self, request: ProviderRequest) -> list[Any]:
        system = [{"role": "system", "content": request.system}] if request.system else []
        turns = [{"role": m.role, "content": m.content} for m in request.messages]
        return system + turns

    def request_params(self, request: ProviderRequest) -> dict[str, Any]:
        """The generation parameters under the names Chat Completions uses for this server."""
        params = GenerationParams.of(self._config.params, request)
        out: dict[str, Any] = {
            "temperature": params.temperature,
            self._max_tokens_key: params.max_tokens,
            "top_p": params.top_p,
            "stop": list(params.stop) or None,
        }
        return {key: value for key, value in out.items() if value is not None}

    def _classify(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, openai.APIStatusError):
            headers = exc.response.headers
            return status_error(self.name, exc.status_code, retry_after_seconds(headers), str(exc))
        if isinstance(exc, openai.APITimeoutError):
            return ProviderTimeout(f"{self.name} did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"the connection to {self.name} failed or was dropped")
        if isinstance(exc, openai.APIError):  # an `error` object inside the stream
            return stream_error(self.name, exc.message)
        return None

    async def aclose(self) -> None:
        await self._client.aclose()
