"""Gemini over Google's maintained SDK, ``google-genai`` (not the end-of-life
``google-generativeai``).

``client.aio.models.generate_content_stream`` calls ``streamGenerateContent?alt=sse``; each
event is a GenerateContentResponse. The final frame is the one whose candidate carries a
``finish_reason`` (with ``usage_metadata``); a stream that ends before it is truncated.
SDK-internal retries are off: ``HttpRetryOptions(attempts=1)``, which also disables the
SDK's implicit reconnect-and-retry on connection errors.

Cancellation: ``aclose()`` on the SDK's stream does not close its HTTP connection (its
nested generators are left to the garbage collector); only cancelling the task that awaits
its read does. So the stream is read through ``read_in_task``, whose ``finally`` cancels
the read in flight however this adapter is left.

Timeouts: the SDK only has a whole-request timeout, which would cut long streams, so
``timeout_s`` is not passed on; the first-token and stall deadlines bound every wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from server.config import ProviderConfig
from server.errors import ProviderError
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    TextDelta,
    Usage,
    map_provider_errors,
    retry_after_seconds,
    status_error,
)
from server.providers.common import (
    GenerationParams,
    LazyClient,
    finish_reason,
    read_in_task,
    require_model,
    split_system,
)

__all__ = ["GeminiProvider"]


class GeminiProvider:
    """``type: gemini``: the Gemini API over google-genai."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = require_model(name, config.model)
        self._config = config
        self._http: aiohttp.ClientSession | None = None
        self._client = LazyClient(self._build, self._close)

    def _build(self) -> genai.Client:
        options = types.HttpOptions(
            base_url=self._config.base_url,
            retry_options=types.HttpRetryOptions(attempts=1),  # one retry owner: ours
            aiohttp_client=self._http,
        )
        return genai.Client(api_key=self._config.api_key, http_options=options)

    async def _get_client(self) -> genai.Client:
        """Our own aiohttp session, made in the loop (aiohttp needs one), is handed to the
        SDK: its built-in one subclasses ClientSession, which aiohttp deprecates."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return await self._client.get()

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        client = await self._get_client()
        model = request.model or self.default_model
        with map_provider_errors(self.name, self._classify):
            responses = await client.aio.models.generate_content_stream(
                model=model, contents=self._contents(request), config=self._config_for(request)
            )
            finish: Finish | None = None
            async for response in read_in_task(responses):
                candidate = response.candidates[0] if response.candidates else None
                content = candidate.content if candidate else None
                for part in (content.parts or []) if content else []:
                    if part.text and not part.thought:
                        yield TextDelta(part.text)
                if candidate is not None and candidate.finish_reason is not None:
                    finish = Finish(finish_reason(candidate.finish_reason), response.model_version)
                    if (usage := response.usage_metadata) is not None:
                        output = (usage.candidates_token_count or 0) + (
                            usage.thoughts_token_count or 0
                        )
                        yield Usage(usage.prompt_token_count or 0, output)
            if finish is not None:
                yield finish

    def _contents(self, request: ProviderRequest) -> list[Any]:
        _, turns = split_system(request)
        return [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in turns
        ]

    def _config_for(self, request: ProviderRequest) -> types.GenerateContentConfig:
        system, _ = split_system(request)
        params = GenerationParams.of(self._config.params, request)
        return types.GenerateContentConfig(
            system_instruction=system,
            temperature=params.temperature,
            max_output_tokens=params.max_tokens,
            top_p=params.top_p,
            stop_sequences=list(params.stop) or None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    def _classify(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, genai_errors.APIError):
            headers = getattr(exc.response, "headers", None)
            return status_error(self.name, exc.code, retry_after_seconds(headers), str(exc))
        return None

    async def _close(self, client: genai.Client) -> None:
        await client.aio.aclose()
        await asyncio.to_thread(client.close)  # the sync half it also built; never used

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._http is not None:
            await self._http.close()
