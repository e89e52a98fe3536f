"""Deadlines and retries count any progress: a model that thinks longer than the
first-token deadline is not cut off, not retried and not billed twice.

Times are scaled down (a 0.6 s think under a 0.2 s first-token deadline stands for a 3 s
think under 1 s): the semantic is the same, the test stays fast."""

from __future__ import annotations

import asyncio

import pytest

from server.config import ProviderConfig
from server.errors import ProviderError
from server.protocol.envelope import Message
from server.providers.base import (
    AttemptFailed,
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
)
from server.providers.resilience import ResilientProvider, RetryPolicy, Route
from server.providers.sim import SimProvider

THINK_WORDS, RATE = 12, 20.0  # 12 words at 20/s: 0.6 s of reasoning before the first text
POLICY = RetryPolicy(
    max_attempts=3, backoff_base_s=0.01, first_token_timeout_s=0.2, stall_timeout_s=0.2
)


def thinker() -> tuple[SimProvider, ResilientProvider]:
    sim = SimProvider("sim", ProviderConfig(type="sim"))
    return sim, ResilientProvider([Route(sim, POLICY)])


def request(**params: object) -> ProviderRequest:
    knobs = {"reasoning_tokens": THINK_WORDS, "tokens_per_second": RATE, "max_tokens": 2}
    return ProviderRequest(messages=(Message("user", "Think"),), params=knobs | params)


async def test_a_long_think_before_the_first_text_completes_and_is_not_retried() -> None:
    sim, provider = thinker()
    loop_time = asyncio.get_running_loop().time
    began = loop_time()
    events: list[tuple[float, ProviderEvent]] = [
        (loop_time() - began, event) async for event in provider.stream(request())
    ]
    first_text = next(at for at, e in events if isinstance(e, TextDelta))
    assert first_text > POLICY.first_token_timeout_s * 2  # the think outlasted the deadline
    assert not any(isinstance(e, AttemptFailed) for _, e in events)
    assert isinstance(events[-1][1], Finish)
    assert sum(isinstance(e, ReasoningDelta) and bool(e.text) for _, e in events) == THINK_WORDS
    assert (sim.stats.started, sim.stats.completed) == (1, 1)


async def test_a_failure_after_reasoning_is_not_retried() -> None:
    """Reasoning was passed on, so a restart would repeat (and bill) it: the error ends it."""
    sim, provider = thinker()
    with pytest.raises(ProviderError):
        async for _ in provider.stream(request(fail_at=3, tokens_per_second=0)):
            pass
    assert (sim.stats.started, sim.stats.failed) == (1, 1)


async def test_silence_after_reasoning_is_still_a_stall() -> None:
    """Progress re-arms the stall deadline; it does not switch deadlines off."""
    sim, provider = thinker()
    seen: list[ProviderEvent] = []
    with pytest.raises(ProviderError) as caught:
        async for event in provider.stream(request(hang_at=2, tokens_per_second=0)):
            seen.append(event)
    assert caught.value.code == "provider_timeout"
    assert len(seen) == 2 and sim.stats.started == 1


async def test_a_first_token_deadline_longer_than_the_stall_deadline_holds() -> None:
    """The deadline's timer first fires at the shorter stall time; before any progress it
    must wait on for the first-token deadline, and then end the attempt."""
    sim = SimProvider("sim", ProviderConfig(type="sim"))
    policy = RetryPolicy(max_attempts=1, first_token_timeout_s=0.5, stall_timeout_s=0.1)
    provider = ResilientProvider([Route(sim, policy)])
    slow_start = {"reasoning_tokens": 0, "tokens_per_second": 0, "ttft_ms": 300}
    events = [event async for event in provider.stream(request(**slow_start))]
    assert isinstance(events[-1], Finish)
    loop_time = asyncio.get_running_loop().time
    began = loop_time()
    with pytest.raises(ProviderError) as caught:
        async for _ in provider.stream(request(**(slow_start | {"ttft_ms": 2000}))):
            pass
    assert caught.value.code == "provider_timeout"
    assert loop_time() - began > 0.45  # the first-token deadline, not the stall one
