"""The provider seam: one small interface every upstream adapter implements.

A provider turns a ProviderRequest into an async iterator of ProviderEvents::

    async for event in provider.stream(request):
        match event:
            case TextDelta(text): ...
            case ReasoningDelta(text, signature, redacted): ...   # thinking, in order
            case ToolCallStart(id, name, index): ...              # then ToolCallDelta(s),
            case ToolCallEnd(id, name, arguments, ...): ...       # then the parsed call
            case Source(url, title, cited_text, document_index): ...
            case Refusal(text): ...                               # the model declined
            case Usage(input_tokens, output_tokens, ...): ...
            case Metadata(data): ...            # forwarded as a `metadata` event
            case Finish(reason, model, raw_reason): ...   # always last on success

Any of TextDelta (non-empty), ReasoningDelta, the tool-call events, Source and Refusal is
progress (``is_progress``): deadlines and retries treat them alike.

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
from server.protocol.envelope import Message, ReasoningConfig, Start, Tool, ToolChoice

__all__ = [
    "AttemptFailed",
    "Classifier",
    "Finish",
    "Metadata",
    "Provider",
    "ProviderEvent",
    "ProviderRequest",
    "ReasoningDelta",
    "Refusal",
    "Source",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "Usage",
    "is_progress",
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
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    reasoning: ReasoningConfig | None = None

    @classmethod
    def of(cls, start: Start) -> ProviderRequest:
        """What a validated ``start`` asks of its provider (``params.model`` picks the
        model when ``model`` does not)."""
        return cls(
            messages=start.messages,
            model=start.model or start.params.get("model"),
            system=start.system,
            # The start's own params unless a model must be taken out (no copy per session).
            params=start.params
            if "model" not in start.params
            else {k: v for k, v in start.params.items() if k != "model"},
            tools=start.tools,
            tool_choice=start.tool_choice,
            reasoning=start.reasoning,
        )

    @property
    def prompt_chars(self) -> int:
        system = len(self.system) if self.system else 0
        return system + sum(len(message.content) for message in self.messages)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text from the model."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """New reasoning (thinking) text; or the provider's opaque data about it.

    ``signature``: the provider's signature over the reasoning so far (Anthropic's
    ``signature_delta``), to be sent back with the assistant turn. ``redacted``: reasoning
    the provider encrypted (Anthropic's ``redacted_thinking``), kept opaque.
    """

    text: str
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """The model began a call; ``index`` counts calls 0, 1, … in the order they began."""

    id: str
    name: str
    index: int


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a call's JSON arguments text."""

    id: str
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    """A complete call. ``arguments`` is None when ``arguments_text`` is not a JSON object.

    ``signature``: the provider's opaque token on the call (Gemini's thought signature).
    """

    id: str
    name: str
    arguments: Mapping[str, Any] | None
    arguments_text: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """A citation or grounding source."""

    url: str | None = None
    title: str | None = None
    cited_text: str | None = None
    document_index: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Refusal text: the model declined (OpenAI's ``refusal``); may come in pieces."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them. ``cached_input_tokens`` are part of
    ``input_tokens`` and ``reasoning_tokens`` part of ``output_tokens``; None: not
    reported."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The provider's own end of stream: without it a stream is truncated, not complete.

    ``reason`` is normalized (stop, length, tool_calls, content_filter, other);
    ``raw_reason`` is the provider's own word for it.
    """

    reason: str
    model: str | None = None
    raw_reason: str | None = None


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


ProviderEvent: TypeAlias = (
    TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | Source
    | Refusal
    | Usage
    | Metadata
    | Finish
    | AttemptFailed
)

_PROGRESS = frozenset({ReasoningDelta, ToolCallStart, ToolCallDelta, ToolCallEnd, Source, Refusal})


def is_progress(event: ProviderEvent) -> bool:
    """Output of the model that reaches the client: text, reasoning, a tool-call fragment,
    a source or a refusal. After it, nothing is retried; before it, deadlines still run."""
    kind = type(event)  # per token: one identity test, one set lookup (events are final)
    if kind is TextDelta:
        return bool(event.text)  # type: ignore[union-attr]
    return kind in _PROGRESS


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
