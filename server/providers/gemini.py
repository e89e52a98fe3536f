"""Gemini over Google's maintained SDK, ``google-genai`` (not the end-of-life
``google-generativeai``).

``client.aio.models.generate_content_stream`` calls ``streamGenerateContent?alt=sse``; each
event is a GenerateContentResponse. The final frame is the one whose candidate carries a
``finish_reason`` (with ``usage_metadata``); a stream that ends before it is truncated.

Parts: ``text``; ``thought: true`` parts are reasoning (streamed when the request asked for
reasoning: ``include_thoughts``); ``function_call`` parts are whole calls (the Gemini API
gives no call ids: one is made up, and a tool turn is matched back to its call's name);
``thought_signature`` bytes travel base64-encoded as the call's (or the reasoning's)
signature. ``grounding_metadata.grounding_chunks`` become sources. A prompt blocked before
any candidate (``prompt_feedback.block_reason``) is a refusal that finishes
``content_filter``: not an error, and never retried.
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
import base64
import mimetypes
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from server.config import ProviderConfig
from server.errors import ProviderError
from server.protocol.envelope import ContentPart, Message, TextPart
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
    retry_after_seconds,
    status_error,
)
from server.providers.common import (
    GenerationParams,
    LazyClient,
    ToolCalls,
    finish_reason,
    raw_reason,
    read_in_task,
    require_model,
    split_system,
    tool_called,
    tool_name_of,
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
        config = self.config_for(request)
        client = await self._get_client()
        model = request.model or self.default_model
        with map_provider_errors(self.name, self._classify):
            responses = await client.aio.models.generate_content_stream(
                model=model, contents=contents(request), config=config
            )
            reader = _Reader()
            async for response in read_in_task(responses):
                for event in reader.read(response):
                    yield event
            if reader.finish is not None:
                yield reader.finish

    def config_for(self, request: ProviderRequest) -> types.GenerateContentConfig:
        """Generation settings, tools, thinking; ``provider_options`` are merged verbatim
        into the request body (``http_options.extra_body``)."""
        system, _ = split_system(request)
        params = GenerationParams.of(self._config.params, request)
        options = dict(params.provider_options)
        return types.GenerateContentConfig(
            system_instruction=system,
            temperature=params.temperature,
            max_output_tokens=params.max_tokens,
            top_p=params.top_p,
            top_k=params.top_k,
            seed=params.seed,
            stop_sequences=list(params.stop) or None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            thinking_config=_thinking(request),
            http_options=types.HttpOptions(extra_body=options) if options else None,
            **_tools(request),
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


class _Reader:
    """One stream's state: the finish, the calls and sources seen."""

    def __init__(self) -> None:
        self.finish: Finish | None = None
        self.calls = ToolCalls()
        self.sources: set[str] = set()

    def read(self, response: types.GenerateContentResponse) -> list[ProviderEvent]:
        feedback = response.prompt_feedback
        if not response.candidates and feedback is not None and feedback.block_reason:
            # The prompt itself was refused: an answer (content_filter), not a failure, and
            # asking again would be refused the same way.
            raw = raw_reason(feedback.block_reason)
            message = feedback.block_reason_message or f"the prompt was blocked ({raw})"
            self.finish = Finish("content_filter", response.model_version, raw)
            return [Refusal(message), *self._usage(response)]
        candidate = response.candidates[0] if response.candidates else None
        if candidate is None:
            return []
        events: list[ProviderEvent] = []
        parts = (candidate.content.parts if candidate.content else None) or []
        for part in parts:
            events += self._part(part)
        events += self._grounding(candidate.grounding_metadata)
        if candidate.finish_reason is not None:
            raw = raw_reason(candidate.finish_reason)
            reason = "tool_calls" if self.calls.count and raw == "STOP" else finish_reason(raw)
            self.finish = Finish(reason, response.model_version, raw)
            events += self._usage(response)
        return events

    def _part(self, part: types.Part) -> list[ProviderEvent]:
        signature = _b64(part.thought_signature)
        if part.function_call is not None:
            call = part.function_call
            call_id = call.id or f"call_{uuid.uuid4().hex[:16]}"
            return list(self.calls.whole(call_id, call.name or "", call.args or {}, signature))
        if part.thought:
            return [ReasoningDelta(part.text or "", signature=signature)]
        events: list[ProviderEvent] = [TextDelta(part.text)] if part.text else []
        if signature:  # Gemini 3 signs its last text part too
            events.append(ReasoningDelta("", signature=signature))
        return events

    def _grounding(self, metadata: types.GroundingMetadata | None) -> list[ProviderEvent]:
        events: list[ProviderEvent] = []
        for chunk in (metadata.grounding_chunks if metadata else None) or []:
            web = chunk.web
            if web is not None and web.uri and web.uri not in self.sources:
                self.sources.add(web.uri)
                events.append(Source(url=web.uri, title=web.title))
        return events

    def _usage(self, response: types.GenerateContentResponse) -> list[ProviderEvent]:
        usage = response.usage_metadata
        if usage is None:
            return []
        thoughts = usage.thoughts_token_count
        output = (usage.candidates_token_count or 0) + (thoughts or 0)
        cached = usage.cached_content_token_count
        return [Usage(usage.prompt_token_count or 0, output, cached, thoughts)]


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def contents(request: ProviderRequest) -> list[types.Content]:
    """The turns as Gemini contents: ``model`` for the assistant; a tool turn is a user
    turn with a ``function_response`` (keyed by the call's name); signatures go back as
    ``thought_signature`` bytes."""
    _, turns = split_system(request)
    out: list[types.Content] = []
    for message in turns:
        if message.role == "tool":
            response = types.FunctionResponse(
                id=message.tool_call_id,
                name=tool_name_of(request.messages, message.tool_call_id),
                response={"result": message.content},
            )
            part = types.Part(function_response=response)
            if out and out[-1].role == "user" and _all_responses(out[-1]):
                (out[-1].parts or []).append(part)
            else:
                out.append(types.Content(role="user", parts=[part]))
        elif message.role == "assistant":
            out.append(types.Content(role="model", parts=_model_parts(message)))
        else:
            out.append(types.Content(role="user", parts=[_part(p) for p in message.content_parts]))
    return out


def _all_responses(content: types.Content) -> bool:
    return all(part.function_response is not None for part in content.parts or [])


def _model_parts(message: Message) -> list[types.Part]:
    parts: list[types.Part] = []
    if (reasoning := message.reasoning) is not None and (reasoning.text or reasoning.signature):
        signature = _unb64(reasoning.signature)
        parts.append(types.Part(text=reasoning.text, thought=True, thought_signature=signature))
    if message.content:
        parts.append(types.Part(text=message.content))
    for call in message.tool_calls:
        function_call = types.FunctionCall(id=call.id, name=call.name, args=dict(call.arguments))
        parts.append(
            types.Part(function_call=function_call, thought_signature=_unb64(call.signature))
        )
    return parts or [types.Part(text="")]


def _unb64(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text else None


def _part(part: ContentPart) -> types.Part:
    if isinstance(part, TextPart):
        return types.Part(text=part.text)
    if (inline := part.inline) is not None:
        media_type, data = inline
        return types.Part(inline_data=types.Blob(mime_type=media_type, data=base64.b64decode(data)))
    media_type = mimetypes.guess_type(part.url.partition("?")[0])[0] or "image/jpeg"
    return types.Part(file_data=types.FileData(file_uri=part.url, mime_type=media_type))


def _tools(request: ProviderRequest) -> dict[str, Any]:
    if not request.tools:
        return {}
    declarations = [
        types.FunctionDeclaration(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=dict(tool.parameters),
        )
        for tool in request.tools
    ]
    named = tool_called(request)
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    calling = types.FunctionCallingConfig(
        mode=types.FunctionCallingConfigMode("ANY" if named else modes[str(request.tool_choice)]),
        allowed_function_names=[named] if named else None,
    )
    return {
        "tools": [types.Tool(function_declarations=declarations)],
        "tool_config": types.ToolConfig(function_calling_config=calling),
    }


def _thinking(request: ProviderRequest) -> types.ThinkingConfig | None:
    """effort: ``thinking_level`` (Gemini 3); budget_tokens: ``thinking_budget`` (Gemini
    2.5); both with ``include_thoughts`` so the thoughts stream. Off: a budget of 0."""
    reasoning = request.reasoning
    if reasoning is None:
        return None
    if not reasoning.enabled:
        return types.ThinkingConfig(thinking_budget=0)
    if reasoning.budget_tokens is not None:
        return types.ThinkingConfig(include_thoughts=True, thinking_budget=reasoning.budget_tokens)
    level = types.ThinkingLevel(str(reasoning.effort).upper())
    return types.ThinkingConfig(include_thoughts=True, thinking_level=level)
