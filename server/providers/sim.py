"""The built-in simulator: a deterministic provider that needs no keys.

Its reply is the user's last message verbatim, then ``max_tokens`` filler words chosen by a
PRNG seeded from the request, so the same request always yields the same text. Per-request
``params`` (over the config entry's ``params`` defaults):

    max_tokens          filler tokens after the echo (default 64)
    tokens_per_second   pacing (of reasoning words too); 0 streams as fast as the loop allows
    ttft_ms             delay before the first token
    fail_at             raise after this many tokens, reasoning words included (fault injection)
    fail_code           provider_error (default), provider_timeout, provider_rate_limited,
                        provider_auth
    hang_at             stop producing after this many tokens until cancelled
    burst               unpaced only: tokens produced per turn of the event loop after the
                        first (default 16), like an upstream whose reads carry several events
    reasoning_tokens    N words of reasoning before the reply, then its signature
    sources             N sources (``https://example.com/sim/1`` …) after the reply
    refusal             true (or the refusal text): refuse, with no reply
    seed                mixed into the PRNG seed: another seed, other filler

PROTOCOL.md section 9, deterministically: with ``tools`` and ``tool_choice`` not "none",
the reply is one call of ``tools[0]`` (or the named tool) whose arguments fill the schema's
required properties (``"sample"``, 1, true, [], {} by type; an enum's first value), its JSON
streamed in three fragments, finishing ``tool_calls``; unless the last turn is a ``tool``
turn, which is answered in text quoting the tool's result. The other generation
parameters (temperature, top_p, top_k, stop, provider_options) are accepted and have no
effect.

Cancellation is honoured at once: every wait is an awaitable the task can be cancelled in.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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
from server.protocol.envelope import Message, NamedTool, Tool
from server.providers.base import (
    Finish,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    Refusal,
    Source,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

__all__ = ["SimProvider", "SimStats", "iter_sim_tokens", "sim_arguments", "sim_tokens"]

DEFAULT_MAX_TOKENS = 64
DEFAULT_BURST = 16
SIM_REFUSAL = "I can't help with that."
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
    yield from _TOKEN.findall(_reply_head(request.messages))
    yield from _filler(_seed(request, ""), max_tokens, sentences=True)


def _reply_head(messages: tuple[Message, ...]) -> str:
    """The echoed user turn; or, after a tool turn, a sentence quoting the tool's result."""
    if messages and messages[-1].role == "tool":
        answered = messages[-1]
        calls = (call for m in messages if m.role == "assistant" for call in m.tool_calls)
        name = next((c.name for c in calls if c.id == answered.tool_call_id), "the tool")
        return f"{name} returned: {answered.content}"
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def _seed(request: ProviderRequest, salt: str) -> int:
    seed_text = "\x00".join(m.content for m in request.messages) + f"\x00{request.model}"
    if (seed := request.params.get("seed")) is not None or salt:
        seed_text += f"\x00{seed}{salt}"
    return int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")


def _filler(state: int, count: int, *, sentences: bool) -> Iterator[str]:
    # A 64-bit LCG (Knuth's MMIX constants) instead of random.Random: the same text for the
    # same request, without 2.5 KiB of Mersenne Twister state held by every live session.
    words, capital = len(_WORDS), sentences
    for n in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        word = _WORDS[(state >> 33) % words]
        if capital:
            word = word.capitalize()
        capital = sentences and n % 12 == 11
        end = "." if sentences and (capital or n == count - 1) else ""
        yield ("" if n == 0 and not sentences else " ") + word + end


# The reply's filler as TextDelta events, built once and shared (they are immutable):
# [word][capitalised][ends a sentence], the tokens _filler(sentences=True) draws.
_FILLER_DELTAS = tuple(
    tuple(
        tuple(
            TextDelta(" " + (word.capitalize() if capital else word) + ("." if end else ""))
            for end in (False, True)
        )
        for capital in (False, True)
    )
    for word in _WORDS
)


def _reply(request: ProviderRequest, max_tokens: int) -> Iterator[TextDelta]:
    """``iter_sim_tokens`` as events, the filler drawn here and taken ready-made from
    ``_FILLER_DELTAS``: per token an LCG step and an index, not nested generators and a
    new event each (the per-token path of every simulated session)."""
    for token in _TOKEN.findall(_reply_head(request.messages)):
        yield TextDelta(token)
    state, words, capital, last = _seed(request, ""), len(_WORDS), True, max_tokens - 1
    for n in range(max_tokens):
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        ends = n % 12 == 11
        yield _FILLER_DELTAS[(state >> 33) % words][capital][ends or n == last]
        capital = ends


def sim_arguments(tool: Tool) -> dict[str, Any]:
    """Arguments that satisfy ``tool``'s required properties, the same every time."""
    properties = tool.parameters.get("properties") or {}
    required = tool.parameters.get("required") or []
    samples = {"string": "sample", "number": 1, "integer": 1, "boolean": True, "array": []}
    out: dict[str, Any] = {}
    for name in required:
        schema = properties.get(name) if isinstance(properties, dict) else None
        schema = schema if isinstance(schema, dict) else {}
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            out[name] = schema["enum"][0]
        else:
            kind = schema.get("type")
            kind = kind[0] if isinstance(kind, list) and kind else kind
            out[name] = samples.get(kind, {}) if isinstance(kind, str) else "sample"
    return out


def _called_tool(request: ProviderRequest) -> Tool | None:
    """The tool the simulator calls for this request, if any (PROTOCOL.md section 9)."""
    if not request.tools or request.tool_choice == "none":
        return None
    if request.messages and request.messages[-1].role == "tool":
        return None
    if isinstance(request.tool_choice, NamedTool):
        named = request.tool_choice.name
        return next((t for t in request.tools if t.name == named), request.tools[0])
    return request.tools[0]


def _tool_call(request: ProviderRequest, tool: Tool) -> Iterator[ProviderEvent]:
    call_id = f"call_{_seed(request, tool.name):016x}"
    text = json.dumps(sim_arguments(tool), separators=(",", ":"))
    yield ToolCallStart(call_id, tool.name, 0)
    third = -(-len(text) // 3)
    for i in range(0, len(text), third):
        yield ToolCallDelta(call_id, text[i : i + third])
    yield ToolCallEnd(call_id, tool.name, json.loads(text), text)


class SimProvider:
    """A Provider that simulates an LLM; see the module docstring for its knobs."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.default_model = config.model or "sim-1"
        self._defaults: Mapping[str, Any] = dict(config.params)
        self.stats = SimStats()

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        params = {**self._defaults, **request.params}
        fail_at, hang_at = params.get("fail_at"), params.get("hang_at")
        fault = _fault(params.get("fail_code", "provider_error"))
        rate = float(params.get("tokens_per_second", 0))
        ttft_s = float(params.get("ttft_ms", 0)) / 1000
        burst = max(int(params.get("burst", DEFAULT_BURST)), 1)
        script = _script(
            request,
            model=str(request.model or self.default_model),
            max_tokens=int(params.get("max_tokens", DEFAULT_MAX_TOKENS)),
            reasoning_words=int(params.get("reasoning_tokens", 0)),
            sources=int(params.get("sources", 0)),
            refusal=params.get("refusal"),
        )
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
            for event in script:
                # Per token: identity tests rather than isinstance() of a union.
                kind = event.__class__
                token = kind is TextDelta or kind is ReasoningDelta
                if not (token and event.text):  # type: ignore[union-attr]
                    yield event  # not a token: no pacing, no fault
                    continue
                i += 1
                if i == next_fault:
                    if i == fail_at:
                        outcome = "failed"
                        raise fault(f"simulated failure after {i} tokens")
                    await asyncio.Event().wait()  # hang_at: until cancelled
                yield event
                if rate:
                    # Pace against the start time so sleeps do not accumulate drift.
                    await asyncio.sleep(max(began + (i + 1) / rate - time.monotonic(), 0.0))
                elif i % burst == burst - 1 or i == 0:
                    # Unpaced: still yield to the loop so other sessions and cancels get
                    # their turn, once per burst (sleep(0) is a bare yield, no timer). The
                    # first token goes alone, as a real upstream's does: a crowd of new
                    # sessions all get their first token out before anyone's first burst.
                    await asyncio.sleep(0)
            outcome = "completed"
        finally:
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)

    async def aclose(self) -> None:
        return None


def _script(
    request: ProviderRequest,
    *,
    model: str,
    max_tokens: int,
    reasoning_words: int,
    sources: int,
    refusal: Any,
) -> Iterator[ProviderEvent]:
    """Everything one request streams, in order, ending with Usage and Finish."""
    if reasoning_words:
        thought = []
        for word in _filler(_seed(request, "\x00reasoning"), reasoning_words, sentences=False):
            thought.append(word)
            yield ReasoningDelta(word)
        digest = hashlib.sha256("".join(thought).encode()).hexdigest()[:24]
        yield ReasoningDelta("", signature=f"sim-{digest}")
    if refusal:
        yield Refusal(refusal if isinstance(refusal, str) else SIM_REFUSAL)
        yield Usage(_count_words(request), len(SIM_REFUSAL.split()), None, reasoning_words or None)
        yield Finish("content_filter", model, "refusal")
        return
    if (tool := _called_tool(request)) is not None:
        yield from _tool_call(request, tool)
        yield Usage(_count_words(request), 3 + reasoning_words, None, reasoning_words or None)
        yield Finish("tool_calls", model, "tool_calls")
        return
    count = 0
    for delta in _reply(request, max_tokens):
        count += 1
        yield delta
    for n in range(sources):
        title = f"Simulated source {n + 1}"
        yield Source(f"https://example.com/sim/{n + 1}", title, None, n)
    yield Usage(_count_words(request), count + reasoning_words, None, reasoning_words or None)
    yield Finish("stop", model, "stop")


def _fault(code: Any) -> type[ProviderError]:
    if code not in _FAULTS:
        raise ProtocolError(
            f"params.fail_code: must be one of {', '.join(_FAULTS)}", code=ErrorCode.INVALID_FIELD
        )
    return _FAULTS[code]


def _count_words(request: ProviderRequest) -> int:
    texts = [m.content for m in request.messages] + [request.system or ""]
    return sum(len(text.split()) for text in texts)
