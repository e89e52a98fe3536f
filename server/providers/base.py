"""The provider seam: one small interface every upstream adapter implements.

A provider turns a ProviderRequest into an async iterator of ProviderEvents::

    async for event in provider.stream(request):
        match event:
            case TextDelta(text): ...
            case Usage(input_tokens, output_tokens): ...
            case Finish(reason, model): ...     # always last on success

Contract for adapters:
- Only TokenmuxError subclasses (ProviderError and friends) escape ``stream()``; wrap SDK
  and HTTP calls in ``map_provider_errors()`` or translate at the border yourself.
- A stream that ends without Finish is a failure (the session reports provider_error).
- Cancelling the task that iterates must close the upstream connection promptly: the
  session manager cancels that task on ``cancel``, on socket close and on SSE disconnect.
- No SDK-internal retries: the session owns retries (before the first chunk only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from server.protocol.envelope import Message

__all__ = [
    "Finish",
    "Provider",
    "ProviderEvent",
    "ProviderRequest",
    "TextDelta",
    "Usage",
]


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


ProviderEvent: TypeAlias = TextDelta | Usage | Finish


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
