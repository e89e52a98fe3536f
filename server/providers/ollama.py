"""Ollama's native ``/api/chat`` (NDJSON), spoken with aiohttp directly.

Why not the ``ollama`` package: the wire format is one JSON object per line, a dozen lines
to read; aiohttp is already the server's HTTP stack, so no new dependency and no second
HTTP client; and owning the response object makes the cancel path explicit (``finally``
closes the response, which closes its connection when the body was not fully read) and
keeps ``Retry-After`` and the status at hand, which the package's ``ResponseError`` drops.
(For Ollama's OpenAI-compatible ``/v1``, use ``type: openai`` with that ``base_url``.)

Wire: ``POST {base_url}/api/chat`` with ``stream: true``; each line is ``{message:
{content}, done: false}``; the final frame is ``{done: true, done_reason, prompt_eval_count,
eval_count}``; an ``{error}`` line is an in-stream error. Generation parameters go in
``options`` (``num_predict`` is Ollama's max_tokens).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from server.config import ProviderConfig
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
from server.providers.common import GenerationParams, finish_reason, require_model

__all__ = ["OllamaProvider"]

DEFAULT_BASE_URL = "http://127.0.0.1:11434"


class OllamaProvider:
    """``type: ollama``: a local or remote Ollama server; needs no key."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = require_model(name, config.model)
        self._config = config
        self._url = (config.base_url or DEFAULT_BASE_URL).rstrip("/") + "/api/chat"
        self._session: aiohttp.ClientSession | None = None  # made in the loop, on first use

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                sock_connect=self._config.timeout_s, sock_read=self._config.timeout_s
            )
            headers = {"Authorization": f"Bearer {self._config.api_key}"}
            self._session = aiohttp.ClientSession(
                timeout=timeout, headers=headers if self._config.api_key else None
            )
        return self._session

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        model = request.model or self.default_model
        body = {"model": model, "messages": self._messages(request), "stream": True}
        if options := self._options(request):
            body["options"] = options
        with map_provider_errors(self.name):
            async with self._http().post(self._url, json=body) as response:
                if response.status != 200:
                    detail = await response.text()
                    retry_after = retry_after_seconds(response.headers)
                    raise status_error(self.name, response.status, retry_after, detail)
                complete = False
                try:
                    async for line in response.content:
                        if line.strip():
                            for event in self._events(json.loads(line), model):
                                complete = isinstance(event, Finish)
                                yield event
                finally:
                    if not complete:  # close, not release: never pool a half-read connection
                        response.close()

    def _events(self, frame: dict[str, Any], model: str) -> list[ProviderEvent]:
        if "error" in frame:
            raise stream_error(self.name, str(frame["error"]))
        events: list[ProviderEvent] = []
        if text := (frame.get("message") or {}).get("content"):
            events.append(TextDelta(text))
        if frame.get("done"):
            usage = Usage(int(frame.get("prompt_eval_count", 0)), int(frame.get("eval_count", 0)))
            reason = finish_reason(frame.get("done_reason", "stop"))
            events += [usage, Finish(reason, frame.get("model") or model)]
        return events

    def _messages(self, request: ProviderRequest) -> list[dict[str, str]]:
        system = [{"role": "system", "content": request.system}] if request.system else []
        return system + [{"role": m.role, "content": m.content} for m in request.messages]

    def _options(self, request: ProviderRequest) -> dict[str, Any]:
        params = GenerationParams.of(self._config.params, request)
        options: dict[str, Any] = {
            "temperature": params.temperature,
            "num_predict": params.max_tokens,
            "top_p": params.top_p,
            "stop": list(params.stop) or None,
        }
        return {key: value for key, value in options.items() if value is not None}

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
