"""OpenAI's Responses API (``POST /responses``, streamed), over the official ``openai`` SDK.

OpenAI recommends it for new projects, and reasoning summaries exist only there. The
stream is typed semantic events; the ones read here:

    response.created                         the model
    response.output_text.delta               text
    response.reasoning_summary_text.delta    reasoning (the summary OpenAI shows)
    response.reasoning_text.delta            reasoning (open-weight models' raw text)
    response.output_item.added               a function_call item: the call begins
    response.function_call_arguments.delta   fragments of its arguments
    response.output_item.done                the call is complete
    response.refusal.delta                   refusal text
    response.output_text.annotation.added    a url_citation: a source
    response.completed / .incomplete         usage and the finish (the final frame)
    response.failed, error                   an error inside the stream

Request: ``instructions`` is the system prompt; the turns are ``input`` items (a message
per turn; an assistant turn's calls are ``function_call`` items and a tool turn is a
``function_call_output``); ``max_tokens`` is ``max_output_tokens``; reasoning is
``reasoning: {effort, summary: "auto"}`` (a budget is refused; off is effort "none").
The API has no ``stop``, ``seed`` or ``top_k``: a request that sets one is refused.
``store`` is false (a gateway keeps no conversations upstream) unless ``provider_options``
says otherwise; ``provider_options`` travel as ``extra_body``. An assistant turn's
reasoning is not sent back (that takes the stored or encrypted reasoning item).

Cancellation: as for Chat Completions, the CancelledError lands in the SDK's read;
``finally`` closes the SDK stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from server.config import ProviderConfig
from server.errors import ProviderError
from server.protocol.envelope import ImagePart
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    Refusal,
    Source,
    TextDelta,
    Usage,
    map_provider_errors,
    stream_error,
)
from server.providers.common import (
    GenerationParams,
    LazyClient,
    ToolCalls,
    effort,
    finish_reason,
    require_model,
    tool_called,
)
from server.providers.openai_chat import classify_openai, openai_client

__all__ = ["OpenAIResponsesProvider"]


class OpenAIResponsesProvider:
    """``type: openai_responses``: the Responses API over the official SDK."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = require_model(name, config.model)
        self._config = config
        self._client = LazyClient(lambda: openai_client(config), lambda client: client.close())

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        arguments = self.arguments(request)
        client = await self._client.get()
        model = request.model or self.default_model
        with map_provider_errors(self.name, self._classify):
            events = await client.responses.create(model=model, stream=True, **arguments)
            try:
                reader = _Reader(self.name, model)
                async for event in events:
                    for out in reader.read(event):
                        yield out
            finally:
                await events.close()

    def arguments(self, request: ProviderRequest) -> dict[str, Any]:
        """Everything but the model and ``stream``."""
        params = GenerationParams.of(self._config.params, request)
        params.refuse(self.name, "stop", "seed", "top_k")
        out: dict[str, Any] = {
            "input": _input(request),
            "instructions": request.system,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_output_tokens": params.max_tokens,
            "store": False,
            **_tools(request),
        }
        if (word := effort(self.name, request)) is not None:
            # A summary is what the Responses API streams of its reasoning.
            out["reasoning"] = {"effort": word} | ({} if word == "none" else {"summary": "auto"})
        extra = dict(params.provider_options)
        if "store" in extra:  # the caller's choice, sent as they wrote it
            del out["store"]
        if extra:
            out["extra_body"] = extra
        return {key: value for key, value in out.items() if value is not None}

    def _classify(self, exc: Exception) -> ProviderError | None:
        return classify_openai(self.name, exc)

    async def aclose(self) -> None:
        await self._client.aclose()


class _Reader:
    """One stream's state: the model and the calls open by output index."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.calls = ToolCalls()

    def read(self, event: Any) -> list[ProviderEvent]:
        match event.type:
            case "response.created":
                self.model = event.response.model or self.model
            case "response.output_text.delta":
                return [TextDelta(event.delta)] if event.delta else []
            case "response.reasoning_summary_text.delta" | "response.reasoning_text.delta":
                return [ReasoningDelta(event.delta)] if event.delta else []
            case "response.refusal.delta":
                return [Refusal(event.delta)] if event.delta else []
            case "response.output_item.added" if event.item.type == "function_call":
                item = event.item
                return [self.calls.start(event.output_index, item.call_id, item.name)]
            case "response.function_call_arguments.delta" if event.delta:
                if self.calls.is_open(event.output_index):
                    return [self.calls.delta(event.output_index, event.delta)]
            case "response.output_item.done" if self.calls.is_open(event.output_index):
                return [self.calls.end(event.output_index)]
            case "response.output_text.annotation.added":
                return _source(event.annotation)
            case "response.completed" | "response.incomplete":
                return self._finish(event.response)
            case "response.failed":
                error = event.response.error
                raise stream_error(self.provider, error.message if error else "response.failed")
            case "error":
                raise stream_error(self.provider, f"{event.code}: {event.message}")
        return []

    def _finish(self, response: Any) -> list[ProviderEvent]:
        events: list[ProviderEvent] = []
        if (usage := response.usage) is not None:
            cached = getattr(usage.input_tokens_details, "cached_tokens", None)
            reasoning = getattr(usage.output_tokens_details, "reasoning_tokens", None)
            events.append(Usage(usage.input_tokens, usage.output_tokens, cached, reasoning))
        details = response.incomplete_details
        if response.status == "incomplete" and details is not None and details.reason:
            raw = str(details.reason)
            reason = finish_reason(raw)
        else:
            raw = str(response.status or "completed")
            reason = "tool_calls" if self.calls.count else "stop"
        events.append(Finish(reason, response.model or self.model, raw))
        return events


def _source(annotation: Any) -> list[ProviderEvent]:
    if isinstance(annotation, dict):  # the SDK leaves unknown annotation shapes as dicts
        url, title = annotation.get("url"), annotation.get("title")
    else:
        url, title = getattr(annotation, "url", None), getattr(annotation, "title", None)
    return [Source(url=url, title=title)] if url else []


def _input(request: ProviderRequest) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "tool":
            output = {"call_id": message.tool_call_id, "output": message.content}
            items.append({"type": "function_call_output", **output})
            continue
        if message.role == "assistant":
            if message.content:
                items.append({"role": "assistant", "content": message.content})
            items += [
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": json.dumps(call.arguments),
                }
                for call in message.tool_calls
            ]
            continue
        content = [
            {"type": "input_image", "image_url": part.url}
            if isinstance(part, ImagePart)
            else {"type": "input_text", "text": part.text}
            for part in message.content_parts
        ]
        items.append({"role": message.role, "content": content})
    return items


def _tools(request: ProviderRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    tools = [
        {
            "type": "function",
            "name": tool.name,
            "parameters": dict(tool.parameters),
            "strict": False,  # the schema as the client wrote it, not OpenAI's strict subset
            **({"description": tool.description} if tool.description else {}),
        }
        for tool in request.tools
    ]
    named = tool_called(request)
    choice = {"type": "function", "name": named} if named else request.tool_choice
    return {"tools": tools, "tool_choice": choice}
