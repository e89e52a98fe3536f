"""Ollama's native ``/api/chat`` (NDJSON), spoken with aiohttp directly.

Why not the ``ollama`` package: the wire format is one JSON object per line, a dozen lines
to read; aiohttp is already the server's HTTP stack, so no new dependency and no second
HTTP client; and owning the response object makes the cancel path explicit (``finally``
closes the response, which closes its connection when the body was not fully read) and
keeps ``Retry-After`` and the status at hand, which the package's ``ResponseError`` drops.
(For Ollama's OpenAI-compatible ``/v1``, use ``type: openai`` with that ``base_url``.)

Wire: ``POST {base_url}/api/chat`` with ``stream: true``; each line is ``{message:
{content, thinking?, tool_calls?}, done: false}``; the final frame is ``{done: true,
done_reason, prompt_eval_count, eval_count}``; an ``{error}`` line is an in-stream error.
Generation parameters go in ``options`` (``num_predict`` is Ollama's max_tokens); the
request's reasoning is ``think`` (true/false, or an effort for the models that take one);
images are base64 ``images`` of a turn (Ollama fetches no URLs: an https image is refused);
a call arrives whole in one line's ``tool_calls``. Ollama has no ``tool_choice``: "none"
sends no tools, "required" or a named tool is refused. ``provider_options`` are merged
into the body verbatim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from server.config import ProviderConfig
from server.protocol.envelope import ImagePart, Message
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    Usage,
    map_provider_errors,
    retry_after_seconds,
    status_error,
    stream_error,
)
from server.providers.common import (
    GenerationParams,
    ToolCalls,
    finish_reason,
    invalid,
    raw_reason,
    require_model,
    tool_name_of,
)

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
        body = self.body(request, model)
        calls = ToolCalls()
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
                            for event in self._events(json.loads(line), model, calls):
                                complete = isinstance(event, Finish)
                                yield event
                finally:
                    if not complete:  # close, not release: never pool a half-read connection
                        response.close()

    def _events(self, frame: dict[str, Any], model: str, calls: ToolCalls) -> list[ProviderEvent]:
        if "error" in frame:
            raise stream_error(self.name, str(frame["error"]))
        events: list[ProviderEvent] = []
        message = frame.get("message") or {}
        if thinking := message.get("thinking"):
            events.append(ReasoningDelta(thinking))
        if text := message.get("content"):
            events.append(TextDelta(text))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            call_id = call.get("id") or f"call_{uuid.uuid4().hex[:16]}"
            arguments = function.get("arguments")
            arguments = arguments if isinstance(arguments, dict) else {}
            events += calls.whole(call_id, str(function.get("name", "")), arguments)
        if frame.get("done"):
            usage = Usage(int(frame.get("prompt_eval_count", 0)), int(frame.get("eval_count", 0)))
            raw = raw_reason(frame.get("done_reason", "stop"))
            reason = "tool_calls" if calls.count and raw == "stop" else finish_reason(raw)
            events += [usage, Finish(reason, frame.get("model") or model, raw)]
        return events

    def body(self, request: ProviderRequest, model: str) -> dict[str, Any]:
        """The /api/chat request body."""
        params = GenerationParams.of(self._config.params, request)
        body: dict[str, Any] = {"model": model, "messages": _messages(request), "stream": True}
        options: dict[str, Any] = {
            "temperature": params.temperature,
            "num_predict": params.max_tokens,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "seed": params.seed,
            "stop": list(params.stop) or None,
        }
        if options := {key: value for key, value in options.items() if value is not None}:
            body["options"] = options
        if request.tools and request.tool_choice != "none":
            if request.tool_choice != "auto":
                raise invalid("tool_choice", f"{self.name} only decides by itself (auto or none)")
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description or "",
                        "parameters": dict(tool.parameters),
                    },
                }
                for tool in request.tools
            ]
        if (reasoning := request.reasoning) is not None:
            if reasoning.budget_tokens is not None:
                raise invalid("reasoning.budget_tokens", f"{self.name} takes no thinking budget")
            body["think"] = (reasoning.effort or True) if reasoning.enabled else False
        return {**body, **params.provider_options}

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _messages(request: ProviderRequest) -> list[dict[str, Any]]:
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + [_message(request, m, i) for i, m in enumerate(request.messages)]


def _message(request: ProviderRequest, message: Message, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    images = []
    for j, part in enumerate(message.parts):
        if isinstance(part, ImagePart):
            if part.inline is None:
                raise invalid(f"messages[{i}].content[{j}].url", "ollama takes data: URLs only")
            images.append(part.inline[1])
    if images:
        out["images"] = images
    if message.role == "tool":
        out["tool_name"] = tool_name_of(request.messages, message.tool_call_id)
    if message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": call.name, "arguments": dict(call.arguments)}}
            for call in message.tool_calls
        ]
    if message.reasoning is not None and message.reasoning.text:
        out["thinking"] = message.reasoning.text
    return out
