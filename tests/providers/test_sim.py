"""The simulator streams exactly the reply sim_tokens() draws (the reference servers of
bench/refs use sim_tokens, so every stack moves the same text)."""

from __future__ import annotations

import pytest

from server.config import ProviderConfig
from server.protocol.envelope import Message
from server.providers.base import ProviderRequest, TextDelta, Usage
from server.providers.sim import SimProvider, sim_tokens


@pytest.mark.parametrize(
    ("prompt", "max_tokens"),
    [("go", 30), ("Hello there, how are you today?", 64), ("", 13), ("one two", 0)],
)
async def test_the_simulator_streams_what_sim_tokens_draws(prompt: str, max_tokens: int) -> None:
    sim = SimProvider("sim", ProviderConfig(type="sim", params={"tokens_per_second": 0}))
    request = ProviderRequest(
        messages=(Message("user", prompt),), model="sim-1", params={"max_tokens": max_tokens}
    )
    deltas, usage = [], None
    async for event in sim.stream(request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, Usage):
            usage = event
    assert deltas == sim_tokens(request, max_tokens)
    assert usage is not None and usage.output_tokens == len(deltas)
