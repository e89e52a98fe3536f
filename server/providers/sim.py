"""The built-in simulator: a deterministic provider that needs no keys.

Its reply is the user's last message verbatim, then ``max_tokens`` filler words chosen by a
PRNG seeded from the request, so the same request always yields the same text. Per-request
``params`` (over the config entry's ``params`` defaults):

    max_tokens          filler tokens after the echo (default 64)
    tokens_per_second   pacing; 0 streams as fast as the loop allows
    ttft_ms             delay before the first token
    fail_at             raise after this many tokens (fault injection)
    fail_code           provider_error (default), provider_timeout, provider_rate_limited,
                        provider_auth
    hang_at             stop producing after this many tokens until cancelled
    burst               unpaced only: tokens produced per turn of the event loop after the
                        first (default 16), like an upstream whose reads carry several events

Cancellation is honoured at once: every wait is an awaitable the task can be cancelled in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from server.config import ProviderConfig
from server.errors import (
    ErrorCode,
    ProtocolError,
    ProviderAuth,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
)
from server.providers.base import Finish, ProviderEvent, ProviderRequest, TextDelta, Usage

__all__ = ["SimProvider", "SimStats", "iter_sim_tokens", "sim_tokens"]

DEFAULT_MAX_TOKENS = 64
DEFAULT_BURST = 16
_PROSE = (
    "the stream of tokens flows through one socket while many sessions share it and each "
    "chunk keeps its order so the client can render text as soon as it arrives without "
    "waiting for the whole answer a cancel stops the work at once and the server frees what "
    "it held every event carries a sequence number that lets a client resume after a drop"
)
_WORDS = tuple(_PROSE.split())
_TOKEN = re.compile(r"\s*\S+|\s+")
_FAULTS: dict[str, type[ProviderError]] = {
    "provider_error": ProviderError,
    "provider_timeout": ProviderTimeout,
    "provider_rate_limited": ProviderRateLimited,
    "provider_auth": ProviderAuth,
}


@dataclass(slots=True)
class SimStats:
    """What the simulator has seen: lets tests observe cancellation without sleeping."""

    started: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0

    @property
    def active(self) -> int:
        return self.started - self.completed - self.cancelled - self.failed


def sim_tokens(request: ProviderRequest, max_tokens: int) -> list[str]:
    """The full reply as tokens: the echo of the last user turn, then seeded filler."""
    return list(iter_sim_tokens(request, max_tokens))


def iter_sim_tokens(request: ProviderRequest, max_tokens: int) -> Iterator[str]:
    """``sim_tokens`` one at a time: the first token costs no more than one token, so a
    burst of new sessions gets first tokens out before anyone's whole reply is drawn."""
    last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    yield from _TOKEN.findall(last_user)
    seed_text = "\x00".join(m.content for m in request.messages) + f"\x00{request.model}"
    state = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
    del seed_text, last_user  # a suspended generator keeps its locals: keep only ints
    # A 64-bit LCG (Knuth's MMIX constants) instead of random.Random: the same text for the
    # same request, without 2.5 KiB of Mersenne Twister state held by every live session.
    words, capital = len(_WORDS), True
    for n in range(max_tokens):
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        word = _WORDS[(state >> 33) % words]
        if capital:
            word = word.capitalize()
        capital = n % 12 == 11
        yield " " + word + ("." if capital or n == max_tokens - 1 else "")


class SimProvider:
    """A Provider that simulates an LLM; see the module docstring for its knobs."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = config.model or "sim-1"
        self._defaults: Mapping[str, Any] = dict(config.params)
        self.stats = SimStats()

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        params = {**self._defaults, **request.params}
        tokens = iter_sim_tokens(request, int(params.get("max_tokens", DEFAULT_MAX_TOKENS)))
        fail_at, hang_at = params.get("fail_at"), params.get("hang_at")
        fault = _fault(params.get("fail_code", "provider_error"))
        rate = float(params.get("tokens_per_second", 0))
        ttft_s = float(params.get("ttft_ms", 0)) / 1000
        burst = max(int(params.get("burst", DEFAULT_BURST)), 1)
        del params  # this frame lives as long as the session: keep only what it reads
        self.stats.started += 1
        outcome = "cancelled"
        try:
            if ttft_s:  # no extra turn of the loop before the first token when there is no delay
                await asyncio.sleep(ttft_s)
            began = time.monotonic()
            # One comparison per token instead of two against possibly-None knobs.
            faults = [at for at in (fail_at, hang_at) if isinstance(at, int)]
            next_fault = min(faults, default=-1)
            i = -1  # after the loop, i + 1 is how many tokens were sent
            for i, token in enumerate(tokens):
                if i == next_fault:
                    if i == fail_at:
                        outcome = "failed"
                        raise fault(f"simulated failure after {i} tokens")
                    await asyncio.Event().wait()  # hang_at: until cancelled
                yield TextDelta(token)
                if rate:
                    # Pace against the start time so sleeps do not accumulate drift.
                    await asyncio.sleep(max(began + (i + 1) / rate - time.monotonic(), 0.0))
                elif i % burst == burst - 1 or i == 0:
                    # Unpaced: still yield to the loop so other sessions and cancels get
                    # their turn, once per burst (sleep(0) is a bare yield, no timer). The
                    # first token goes alone, as a real upstream's does: a crowd of new
                    # sessions all get their first token out before anyone's first burst.
                    await asyncio.sleep(0)
            yield Usage(_count_words(request), i + 1)
            outcome = "completed"
            yield Finish("stop", str(request.model or self.default_model))
        finally:
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)

    async def aclose(self) -> None:
        return None


def _fault(code: Any) -> type[ProviderError]:
    if code not in _FAULTS:
        raise ProtocolError(
            f"params.fail_code: must be one of {', '.join(_FAULTS)}", code=ErrorCode.INVALID_FIELD
        )
    return _FAULTS[code]


def _count_words(request: ProviderRequest) -> int:
    texts = [m.content for m in request.messages] + [request.system or ""]
    return sum(len(text.split()) for text in texts)
