"""The provider seam: one small interface every upstream adapter implements.

A provider turns a ProviderRequest into an async iterator of ProviderEvents::

    async for event in provider.stream(request):
        match event:
            case TextDelta(text): ...
            case Usage(input_tokens, output_tokens): ...
            case Metadata(data): ...            # forwarded as a `metadata` event
            case Finish(reason, model): ...     # always last on success

Contract for adapters:
- Only TokenmuxError subclasses (ProviderError and friends) escape ``stream()``; wrap SDK
  and HTTP calls in ``map_provider_errors()`` or translate at the border yourself.
- A stream that ends without Finish is a failure (the session reports provider_error).
- Cancelling the task that iterates must close the upstream connection promptly: the
  session manager cancels that task on ``cancel``, on socket close and on SSE disconnect.
- No SDK-internal retries: ResilientProvider (resilience.py) owns retries, before the
  first chunk only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeAlias

import aiohttp

from server.errors import (
    ProviderAuth,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    TokenmuxError,
)
from server.protocol.envelope import Message

__all__ = [
    "AttemptFailed",
    "Classifier",
    "Finish",
    "Metadata",
    "Provider",
    "ProviderEvent",
    "ProviderRequest",
    "TextDelta",
    "Usage",
    "map_provider_errors",
    "retry_after_seconds",
    "status_error",
    "stream_error",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """What a session asks of a provider; ``params`` holds temperature, max_tokens, ..."""

    messages: tuple[Message, ...]
    model: str | None = None
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def prompt_chars(self) -> int:
        system = len(self.system) if self.system else 0
        return system + sum(len(message.content) for message in self.messages)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text from the model."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The provider's own end of stream: without it a stream is truncated, not complete."""

    reason: str
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Metadata:
    """Facts for the client (e.g. which fallback answered); the session sends a `metadata`."""

    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """An attempt failed and the chain goes on to ``next_provider`` (itself: a retry).

    Not for the client (nothing was sent yet); the session counts it for the metrics.
    """

    provider: str
    code: str
    next_provider: str


ProviderEvent: TypeAlias = TextDelta | Usage | Metadata | Finish | AttemptFailed


class Provider(Protocol):
    """An upstream LLM behind one name in config (``providers.<name>``)."""

    name: str
    default_model: str

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        """Stream one generation. Cancelling the iterating task aborts the upstream."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients; called once at server shutdown."""
        ...


# Translating foreign errors at the border.

Classifier: TypeAlias = Callable[[Exception], ProviderError | None]
"""An adapter's own mapping of its SDK's exceptions; None leaves the exception to the
generic rules of ``map_provider_errors``."""


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(float(ms) / 1000, 0.0)
        if (value := headers.get("retry-after")) is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            when = parsedate_to_datetime(value)
            return max(when.timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def status_error(
    provider: str, status: int, retry_after_s: float | None = None, detail: str = ""
) -> ProviderError:
    """The error an HTTP status from ``provider`` means. Upstream bodies are logged, not
    forwarded: they can echo key fragments or account details."""
    if detail:
        logger.warning("%s answered %d: %s", provider, status, detail[:500])
    message = f"{provider} answered HTTP {status}"
    if status == 429:
        return ProviderRateLimited(message, retry_after_s=retry_after_s)
    if status in (401, 403):
        return ProviderAuth(message)
    if status == 408:
        return ProviderTimeout(message)
    # 5xx (and Anthropic's 529 overloaded) and 409 conflicts may pass; other 4xx are our
    # request's fault and would fail the same way again.
    return ProviderError(message, retryable=status >= 500 or status == 409)


def stream_error(provider: str, detail: str) -> ProviderError:
    """An error event inside a stream that had started well (always worth a retry)."""
    logger.warning("%s sent an error event: %s", provider, detail[:500])
    return ProviderError(f"{provider} reported an error mid-stream")


@contextmanager
def map_provider_errors(provider: str, classify: Classifier | None = None) -> Iterator[None]:
    """Let only TokenmuxError out: SDK, HTTP and socket errors become ProviderErrors.

    CancelledError and GeneratorExit are BaseExceptions and pass untouched, so wrapping a
    ``yield`` in this keeps cancellation reaching the upstream read.
    """
    try:
        yield
    except TokenmuxError:
        raise
    except Exception as exc:
        mapped = classify(exc) if classify is not None else None
        raise (mapped or _generic(provider, exc)) from exc


def _generic(provider: str, exc: Exception) -> ProviderError:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) or _is_httpx(exc, "TimeoutException"):
        return ProviderTimeout(f"{provider} did not answer in time")
    if isinstance(exc, aiohttp.ClientResponseError):
        return status_error(provider, exc.status, retry_after_seconds(exc.headers), exc.message)
    if isinstance(exc, aiohttp.ClientError | OSError) or _is_httpx(exc, "TransportError"):
        logger.warning("%s connection failed: %r", provider, exc)
        return ProviderError(f"the connection to {provider} failed or was dropped")
    # Unreadable responses and our own bugs: retrying would most likely fail the same way.
    logger.error("%s: unexpected error from the upstream client", provider, exc_info=exc)
    return ProviderError(f"{provider} sent a response that could not be read", retryable=False)


def _is_httpx(exc: Exception, name: str) -> bool:
    """httpx2 (the SDKs' HTTP client) is matched by class name: it is not our dependency,
    and an SDK may let its transport errors out unwrapped (anthropic does on a dropped
    stream)."""
    return any(
        cls.__name__ == name and cls.__module__.startswith("httpx") for cls in type(exc).__mro__
    )
