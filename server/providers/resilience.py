"""Retries, fallbacks and deadlines around the adapters: the one retry owner.

``ResilientProvider`` is what the registry hands to sessions. For one request it tries its
chain (the configured provider, then its ``fallbacks`` in order), each provider up to its
``max_attempts`` times, and stops retrying the moment the first progress has been passed
on (text, reasoning, a tool-call fragment, a source or a refusal: ``is_progress``): after
that a failure ends the session (the client already has output, and a restart would
duplicate it, and bill it twice). Only retryable errors are retried or handed on; ``provider_auth``
and bad requests end the session at once.

Between attempts it waits an exponential backoff with full jitter (uniform in
``[0, min(backoff_max_s, backoff_base_s * 2**n)]``), or the upstream's Retry-After when
that is longer. A Retry-After beyond ``retry_after_max_s`` is not waited for: the next
provider in the chain is tried instead (or the error is reported).

Each attempt has deadlines: the first progress within ``first_token_timeout_s``, then each
next event within ``stall_timeout_s``. Reasoning is progress: a model that thinks for a
minute before its first word is not a timeout (nor retried, nor billed twice). A deadline
cancels the read in flight (so the upstream connection closes) and counts as
``provider_timeout``.

A fallback is asked with its own default model (the request's model names a model of the
first provider) and announced by a ``Metadata`` event before its first chunk.

With ``failover: continue`` on the provider asked for, a failure after text was sent hands
the request to the next provider of the chain, which continues from that text
(continuation.py: the request, and the trimming of what it repeats), announced by
``metadata{failover: {from, to, at_chars}}``; it then has its own attempts, and may itself
be continued by the next. Only text is continued: after reasoning alone, or once a tool
call began, a failure ends the session as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from server.config import ProviderConfig
from server.errors import ProviderError, ProviderRateLimited, ProviderTimeout
from server.providers.base import (
    AttemptFailed,
    Finish,
    Metadata,
    Provider,
    ProviderEvent,
    ProviderRequest,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    is_progress,
)
from server.providers.continuation import Cut, continuation_request

__all__ = ["ResilientProvider", "RetryPolicy"]

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One provider's retry and deadline settings (from its config entry)."""

    max_attempts: int = DEFAULT_ATTEMPTS
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 20.0
    first_token_timeout_s: float = 60.0
    stall_timeout_s: float = 30.0

    @classmethod
    def of(cls, config: ProviderConfig) -> RetryPolicy:
        attempts = config.max_attempts
        if attempts is None:  # the simulator's fault injection stays immediate by default
            attempts = 1 if config.type == "sim" else DEFAULT_ATTEMPTS
        return cls(
            max_attempts=attempts,
            backoff_base_s=config.backoff_base_s,
            backoff_max_s=config.backoff_max_s,
            retry_after_max_s=config.retry_after_max_s,
            first_token_timeout_s=config.first_token_timeout_s,
            stall_timeout_s=config.stall_timeout_s,
        )

    def delay(self, attempt: int, error: ProviderError, rng: random.Random) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None: do not retry here."""
        if attempt >= self.max_attempts:
            return None
        backoff = rng.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))
        retry_after = error.retry_after_s if isinstance(error, ProviderRateLimited) else None
        if retry_after is None:
            return backoff
        if retry_after > self.retry_after_max_s:
            return None
        return max(backoff, retry_after)


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    policy: RetryPolicy
    prefill: bool = False  # continues a trailing assistant turn (failover: continue)


class ResilientProvider:
    """A Provider that runs its chain of routes with retries and deadlines."""

    def __init__(
        self, routes: Sequence[Route], *, rng: random.Random | None = None, failover: bool = False
    ) -> None:
        self._routes = tuple(routes)
        self._failover = failover
        self._rng = rng or random.Random()
        self.name = routes[0].provider.name
        self.default_model = routes[0].provider.default_model

    def __getattr__(self, name: str) -> Any:
        """Expose the primary adapter's own extras (e.g. the simulator's ``stats``)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._routes[0].provider, name)

    @property
    def primary(self) -> Provider:
        return self._routes[0].provider

    @property
    def chain(self) -> list[str]:
        """The provider names tried, in order."""
        return [route.provider.name for route in self._routes]

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        # One generator for every attempt, not one per attempt inside this one: a live
        # session holds every frame of its provider chain, and each async generator layer
        # costs memory and a resumption per token. For the same reason this frame keeps few
        # locals: the rare paths read attributes or call helpers instead.
        error: ProviderError | None = None
        failover = self._failover  # off for good once a tool call began
        said: list[str] = []  # with failover on: the text passed on, for a continuation
        cut: Cut | None = None  # set once a provider failed after text
        # Counters, not enumerate()/range() iterators: this frame lives as long as the
        # session, and so would they.
        position = -1
        while position + 1 < len(self._routes):
            position += 1
            route = self._routes[position]
            if cut is not None:
                asked = continuation_request(request, cut.text, prefill=route.prefill)
            else:
                asked = request if position == 0 else replace(request, model=None)
            attempt = 0
            while attempt < route.policy.max_attempts:
                attempt += 1
                if position and attempt == 1:
                    logger.info("%s: falling back to %s", self.name, route.provider.name)
                announce = position > 0
                progressed = finished = continued = False
                deadline = _Deadline(
                    route.policy.first_token_timeout_s, route.policy.stall_timeout_s
                )
                events = route.provider.stream(asked)
                if cut is not None:
                    events = cut.trimmed(events)
                try:
                    while True:
                        deadline.waiting = True
                        try:
                            event = await anext(events)
                        except StopAsyncIteration:
                            break
                        except asyncio.CancelledError:
                            if deadline.expired and _uncancel():
                                raise ProviderTimeout(
                                    f"{route.provider.name}: no "
                                    f"{'next chunk' if progressed else 'first token'} in time"
                                ) from None
                            raise  # a real cancel (the session's), not our deadline
                        finally:
                            deadline.waiting = False
                        if is_progress(event):
                            progressed = True
                            deadline.touch()
                        if announce:
                            announce = False
                            yield Metadata(
                                self._answered_by(route, attempt)
                                if cut is None
                                else cut.announcement(route.provider.name)
                            )
                        if failover:
                            if isinstance(event, TextDelta):
                                said.append(event.text)
                            elif isinstance(event, ToolCallStart | ToolCallDelta | ToolCallEnd):
                                failover = False  # a call cannot be taken over half-way
                        finished = isinstance(event, Finish)
                        yield event
                    if not finished:
                        raise ProviderError(
                            f"{route.provider.name}: the stream ended without its final frame"
                        )
                    return
                except ProviderError as exc:
                    error = exc
                    continued = (
                        progressed and failover and any(said) and position + 1 < len(self._routes)
                    )
                    if not continued and (progressed or not exc.retryable):
                        raise
                finally:
                    # The attempt's upstream request is closed before any retry waits.
                    deadline.close()
                    await _close(events)
                if continued:
                    yield self._continued(route, position, error)
                    cut = Cut(route.provider.name, "".join(said))
                    break
                delay = route.policy.delay(attempt, error, self._rng)
                logger.info("%s attempt %d failed: %s", route.provider.name, attempt, error.code)
                nexts = self._routes[position + 1 :] if delay is None else [route]
                if nexts:
                    yield AttemptFailed(route.provider.name, error.code, nexts[0].provider.name)
                if delay is None:
                    break
                await asyncio.sleep(delay)
        assert error is not None
        raise error

    def _continued(self, route: Route, position: int, error: ProviderError) -> AttemptFailed:
        """The notice that ``route`` failed after text and the next route continues it."""
        following = self._routes[position + 1].provider.name
        logger.info("%s failed after text: %s continues it", route.provider.name, following)
        return AttemptFailed(route.provider.name, error.code, following)

    def _answered_by(self, route: Route, attempt: int) -> dict[str, Any]:
        return {
            "provider": route.provider.name,
            "model": route.provider.default_model,
            "fallback_from": self.name,
            "attempt": attempt,
        }

    async def aclose(self) -> None:
        await self.primary.aclose()  # fallbacks are closed as entries of their own


def _uncancel() -> bool:
    """Take back this task's cancel by a deadline; False if another cancel is pending."""
    task = asyncio.current_task()
    return task is not None and task.uncancel() == 0


async def _close(events: AsyncIterator[ProviderEvent]) -> None:
    """Close an attempt's events (and with them its upstream request)."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


# What a deadline's callback runs in: it reads no context variable and logs nothing, and a
# timer left to copy the session's context would hold one more object per live session.
_TIMER_CONTEXT = contextvars.Context()


class _Deadline:
    """The first-token / stall deadline of one attempt, with one timer re-armed lazily.

    A token costs a float store (``touch``), not a timer: ``asyncio.timeout`` around every
    read would create and cancel a TimerHandle per token. When the timer fires before the
    deadline moved on, it re-arms itself; when it fires past the deadline while the
    attempt is waiting on the provider, it cancels the task, so the read in flight (and
    with it the upstream request) is aborted.
    """

    __slots__ = ("_armed", "_loop", "_stall_s", "_task", "_timer", "due", "expired", "waiting")

    def __init__(self, first_s: float, stall_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._stall_s = stall_s
        now = self._loop.time()
        self.due = now + first_s
        self.waiting = False
        self.expired = False
        # When the timer fires (a float read, not a call, per token). Armed at the earlier
        # of the two deadlines, so that the first progress never has to re-arm it: a
        # cancelled timer would stay in the loop's heap, held by every session, until its
        # time came.
        self._armed = now + min(first_s, stall_s)
        self._timer = self._loop.call_at(self._armed, self._check, context=_TIMER_CONTEXT)

    def touch(self) -> None:
        """Progress arrived: the next event must come within the stall deadline."""
        due = self.due = self._loop.time() + self._stall_s
        if due < self._armed:  # earlier than armed (the first-token one): re-arm
            self._timer.cancel()
            self._armed = due
            self._timer = self._loop.call_at(due, self._check, context=_TIMER_CONTEXT)

    def close(self) -> None:
        self._timer.cancel()

    def _check(self) -> None:
        if self.waiting and self._loop.time() >= self.due:
            self.expired = True
            self._task.cancel()
        else:  # moved on, or the consumer has the event: look again later
            later = self._armed = max(self.due, self._loop.time() + min(self._stall_s, 0.05))
            self._timer = self._loop.call_at(later, self._check, context=_TIMER_CONTEXT)
