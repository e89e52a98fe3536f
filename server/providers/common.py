"""What the upstream adapters share: generation parameters, finish reasons, tool-call
assembly, lazy clients.

Request ``params`` come from clients and are untrusted: the protocol layer checked every
key; here each adapter reads the generation parameters its provider has and refuses the
others with ``invalid_field`` naming them (``refuse``), as it refuses the simulator's
knobs. A config entry's ``params`` are the defaults.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from server.errors import ConfigError, ErrorCode, ProtocolError
from server.protocol.envelope import Message, NamedTool
from server.protocol.validate import SIM_PARAMS
from server.providers.base import (
    ProviderRequest,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)

__all__ = [
    "GenerationParams",
    "LazyClient",
    "ToolCalls",
    "effort",
    "finish_reason",
    "invalid",
    "parse_arguments",
    "raw_reason",
    "read_in_task",
    "require_model",
    "split_system",
    "tool_called",
    "tool_name_of",
]

T = TypeVar("T")

_FINISH = {
    # OpenAI's vocabulary is the normal form; the others map onto it.
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "end_turn": "stop",  # anthropic
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "other",
    "model_context_window_exceeded": "length",
    "STOP": "stop",  # gemini
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "other",
    "max_output_tokens": "length",  # openai responses (incomplete_details.reason)
}


def finish_reason(raw: object) -> str:
    """One finish vocabulary across providers: stop, length, content_filter, tool_calls,
    other."""
    return _FINISH.get(raw_reason(raw) or "", "other")


def raw_reason(raw: object) -> str | None:
    """The provider's own finish word (an SDK enum's value, or the string)."""
    if raw is None:
        return None
    return str(getattr(raw, "value", raw))


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """The parameters every provider understands, after defaults and type checks."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_k: int | None = None
    provider_options: Mapping[str, Any] = field(default_factory=dict)
    asked: frozenset[str] = frozenset()  # the keys the request itself set

    @classmethod
    def of(cls, defaults: Mapping[str, Any], request: ProviderRequest) -> GenerationParams:
        for key in request.params:
            if key in SIM_PARAMS:
                raise invalid(f"params.{key}", "only the simulator takes this parameter")
        merged = {**defaults, **request.params}
        options = merged.get("provider_options") or {}
        if not isinstance(options, dict):
            raise _invalid("provider_options", "an object")
        stop = merged.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)
        ):
            raise _invalid("stop", "a string or a list of strings")
        return cls(
            temperature=_number(merged, "temperature"),
            max_tokens=_positive_int(merged, "max_tokens"),
            top_p=_number(merged, "top_p"),
            stop=tuple(stop or ()),
            seed=_int(merged, "seed"),
            top_k=_positive_int(merged, "top_k"),
            provider_options=options,
            asked=frozenset(request.params),
        )

    def refuse(self, provider: str, *keys: str) -> None:
        """``invalid_field`` for the first of ``keys`` the request set: ``provider`` has
        no such setting, and nothing is silently dropped."""
        for key in keys:
            if key in self.asked:
                raise invalid(f"params.{key}", f"{provider} has no such setting")


def invalid(field: str, why: str) -> ProtocolError:
    """A request field this provider cannot honour."""
    return ProtocolError(f"{field}: {why}", code=ErrorCode.INVALID_FIELD)


def _int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(key, "an integer")
    return value


def _invalid(key: str, expected: str) -> ProtocolError:
    return ProtocolError(f"params.{key}: must be {expected}", code=ErrorCode.INVALID_FIELD)


def _number(params: Mapping[str, Any], key: str) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(key, "a number")
    return float(value)


def _positive_int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(key, "a positive integer")
    return value


def effort(provider: str, request: ProviderRequest) -> str | None:
    """The request's reasoning as an effort word, for APIs that take only an effort
    (OpenAI's): off is "none"; a budget is refused."""
    reasoning = request.reasoning
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None:
        raise invalid("reasoning.budget_tokens", f"{provider} takes an effort, not a budget")
    return reasoning.effort if reasoning.enabled else "none"


def tool_called(request: ProviderRequest) -> str | None:
    """The tool ``tool_choice`` names, if it names one."""
    choice = request.tool_choice
    return choice.name if isinstance(choice, NamedTool) else None


def parse_arguments(text: str) -> dict[str, Any] | None:
    """A call's arguments text as an object; None when it is not a JSON object. An empty
    text is no arguments (Anthropic streams none for a call without parameters)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(slots=True)
class _OpenCall:
    id: str
    name: str
    fragments: list[str]


class ToolCalls:
    """Streamed tool calls assembled from a provider's fragments, keyed as the provider
    keys them (a choice index, a content block index, an output index)."""

    def __init__(self) -> None:
        self._open: dict[object, _OpenCall] = {}
        self.count = 0  # calls begun so far: the next call's index

    def start(self, key: object, call_id: str, name: str) -> ToolCallStart:
        self._open[key] = _OpenCall(call_id, name, [])
        self.count += 1
        return ToolCallStart(call_id, name, self.count - 1)

    def is_open(self, key: object) -> bool:
        return key in self._open

    def delta(self, key: object, fragment: str) -> ToolCallDelta:
        call = self._open[key]
        call.fragments.append(fragment)
        return ToolCallDelta(call.id, fragment)

    def end(self, key: object, signature: str | None = None) -> ToolCallEnd:
        call = self._open.pop(key)
        text = "".join(call.fragments)
        return ToolCallEnd(call.id, call.name, parse_arguments(text), text, signature)

    def end_all(self) -> list[ToolCallEnd]:
        return [self.end(key) for key in list(self._open)]

    def whole(
        self, call_id: str, name: str, arguments: Mapping[str, Any], signature: str | None = None
    ) -> list[ToolCallStart | ToolCallDelta | ToolCallEnd]:
        """A call that arrives in one piece (Gemini, Ollama), as start, one delta, end."""
        key = object()
        text = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
        return [self.start(key, call_id, name), self.delta(key, text), self.end(key, signature)]


def split_system(request: ProviderRequest) -> tuple[str | None, list[Message]]:
    """The system prompt (``system`` plus any system turns) and the other turns, for APIs
    that take the system prompt apart from the conversation (Anthropic, Gemini)."""
    parts = [request.system] if request.system else []
    parts += [m.content for m in request.messages if m.role == "system"]
    turns = [m for m in request.messages if m.role != "system"]
    return ("\n\n".join(parts) or None), turns


def require_model(name: str, model: str | None) -> str:
    """Real providers have no sensible default model: config must name one."""
    if not model:
        raise ConfigError(f"providers.{name}.model: is required for this provider type")
    return model


class LazyClient(Generic[T]):
    """An SDK client built on first use, in a worker thread.

    Building an SDK client loads CA certificates and reads platform files: blocking I/O
    that must not run on the event loop. The first ``get()`` builds it in a thread (once,
    even under concurrent callers); later calls return it at once.
    """

    def __init__(self, build: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._build = build
        self._close = close
        self._client: T | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.to_thread(self._build)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._close(client)


async def read_in_task(source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Iterate ``source`` in a child task, so closing this generator cancels a read in flight.

    Some SDKs (google-genai) do not close the connection when their stream is closed with
    ``aclose()``: only cancelling the task that awaits their read does. Here that read is
    always in flight in the child task (items are handed over through an unbounded queue,
    so the reader never waits on us), and ``finally`` cancels it: whether this generator
    is cancelled while waiting or closed while suspended at a ``yield``, the cancellation
    reaches the transport.
    """
    # An item travels as a 1-tuple (it may be anything), an error as itself, the end as None.
    queue: asyncio.Queue[tuple[T] | Exception | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait((item,))
        except Exception as exc:
            queue.put_nowait(exc)
        else:
            queue.put_nowait(None)

    reader = asyncio.create_task(pump(), name="provider read")
    try:
        while (got := await queue.get()) is not None:
            if isinstance(got, Exception):
                raise got
            yield got[0]
    finally:
        reader.cancel()
        await asyncio.wait([reader])


def tool_name_of(messages: tuple[Message, ...], call_id: str | None) -> str:
    """The name of the call a tool turn answers (APIs that key results by name)."""
    calls = (call for m in messages if m.role == "assistant" for call in m.tool_calls)
    return next((call.name for call in calls if call.id == call_id), "unknown")
