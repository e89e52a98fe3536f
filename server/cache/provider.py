"""CachedProvider: the content cache in front of a provider's chain.

A request uses the cache when it says ``params.cache: true``, or when its provider's
entry says ``cache: true`` and the request does not say ``params.cache: false``. Others
go straight to the provider: ``stream()`` then returns the provider's own iterator, so
the cache costs nothing per event when unused.

A miss streams from the provider while recording its events, and stores them once the
provider finished (its Finish arrived and the stream ended): a stream that was cancelled
or failed is never stored. A hit replays the stored events to the session, which makes
them a normal session: the same envelopes, the same ``seq`` rules. It is announced by
``metadata{cache: "hit"}`` (a miss by ``metadata{cache: "miss"}``), and its usage
reports every input token as cached (``cached_input_tokens`` = ``input_tokens``, PROTOCOL
section 9's field for input served from a cache; output counts are the stored answer's,
and ``cache: "hit"`` says no provider was asked). ``replay: paced`` keeps the original
timing; ``fast`` sends it all at once, yielding to the event loop every
few events.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from server.cache.base import ContentCache, Entry, cache_key
from server.errors import ErrorCode, ProtocolError
from server.providers.base import (
    AttemptFailed,
    Finish,
    Metadata,
    Provider,
    ProviderEvent,
    ProviderRequest,
    Usage,
)

__all__ = ["CachedProvider"]

FAST_BURST = 16  # a fast replay yields to the loop once per this many events


class CachedProvider:
    """A Provider that answers repeated requests from a ContentCache."""

    def __init__(
        self, inner: Provider, cache: ContentCache | None, *, always: bool, paced: bool
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.default_model = inner.default_model
        self._cache = cache
        self._always = always
        self._paced = paced

    def __getattr__(self, name: str) -> Any:
        """The wrapped provider's own attributes (its chain, the simulator's stats)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        asked = request.params.get("cache")
        if asked is not None:
            params = {k: v for k, v in request.params.items() if k != "cache"}
            request = dataclasses.replace(request, params=params)
        if not (self._always if asked is None else asked):
            return self.inner.stream(request)
        if self._cache is None:
            return _refuse()
        return self._through_cache(self._cache, request)

    async def _through_cache(
        self, cache: ContentCache, request: ProviderRequest
    ) -> AsyncIterator[ProviderEvent]:
        key = cache_key(self.name, request.model or self.default_model, request)
        entry = await cache.get(key)
        if entry is not None:
            yield Metadata({"cache": "hit"})
            async for event in self._replay(entry):
                yield event
            return
        yield Metadata({"cache": "miss"})
        loop = asyncio.get_running_loop()
        began = loop.time()
        recorded: list[tuple[float, ProviderEvent]] = []
        finished = False
        events = self.inner.stream(request)
        try:
            async for event in events:
                if not isinstance(event, AttemptFailed):  # for the metrics, not the text
                    recorded.append((round(loop.time() - began, 4), event))
                finished = isinstance(event, Finish)
                yield event
        finally:  # closes the provider's stream (and its upstream request) however this ends
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()
        if finished:  # reached only when the stream ran to its end, cancelled or failed not
            cache.put(key, recorded)

    async def _replay(self, entry: Entry) -> AsyncIterator[ProviderEvent]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        for n, (at, event) in enumerate(entry):
            if self._paced:
                if (wait := began + at - loop.time()) > 0:
                    await asyncio.sleep(wait)
            elif n % FAST_BURST == FAST_BURST - 1:
                await asyncio.sleep(0)  # other sessions and cancels get their turn
            yield _as_cached(event)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _as_cached(event: ProviderEvent) -> ProviderEvent:
    if isinstance(event, Usage):
        return dataclasses.replace(event, cached_input_tokens=event.input_tokens)
    return event


async def _refuse() -> AsyncIterator[ProviderEvent]:
    raise ProtocolError(
        "params.cache: this server has no content cache (config cache.type)",
        code=ErrorCode.INVALID_FIELD,
    )
    yield  # pragma: no cover - makes this an async generator
