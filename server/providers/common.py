"""What the upstream adapters share: generation parameters, finish reasons, lazy clients.

Request ``params`` come from clients and are untrusted: only the generation parameters
below are read (each checked for type), everything else (for instance the simulator's
knobs) is ignored by real providers. A config entry's ``params`` are the defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.errors import ConfigError, ErrorCode, ProtocolError
from server.protocol.envelope import Message
from server.providers.base import ProviderRequest

__all__ = [
    "GenerationParams",
    "LazyClient",
    "finish_reason",
    "read_in_task",
    "require_model",
    "split_system",
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
    "STOP": "stop",  # gemini
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


def finish_reason(raw: object) -> str:
    """One finish vocabulary across providers: stop, length, content_filter, tool_calls,
    other."""
    text = getattr(raw, "value", raw)
    return _FINISH.get(str(text), "other")


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """The parameters every provider understands, after defaults and type checks."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def of(cls, defaults: Mapping[str, Any], request: ProviderRequest) -> GenerationParams:
        merged = {**defaults, **request.params}
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
        )


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
