"""Sessions driven by a scripted provider into a collecting sink (no transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from server.config import ProviderConfig
from server.errors import ProviderRateLimited
from server.protocol.envelope import Message, Start
from server.providers.base import Finish, ProviderEvent, ProviderRequest, TextDelta, Usage
from server.providers.registry import ProviderRegistry
from server.providers.sim import SimProvider
from server.sessions.manager import SessionManager
from server.sessions.outbox import CollectingSink
from tests._client import check_session


class ScriptedProvider:
    """Yields the given events (an exception in the script is raised there)."""

    def __init__(self, script: Sequence[ProviderEvent | BaseException]) -> None:
        self.name = "scripted"
        self.default_model = "script-1"
        self.script = script

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        for item in self.script:
            await asyncio.sleep(0)
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        return None


def manager_with(script: Sequence[ProviderEvent | BaseException]) -> SessionManager:
    sim = SimProvider("sim", ProviderConfig(type="sim"))
    registry = ProviderRegistry({"scripted": ScriptedProvider(script), "sim": sim}, "scripted")
    return SessionManager(registry)


def start(session: str = "s", provider: str | None = None) -> Start:
    return Start(session=session, messages=(Message("user", "Hi"),), provider=provider)


async def run(script: Sequence[ProviderEvent | BaseException]) -> list[dict[str, Any]]:
    manager = manager_with(script)
    sink = CollectingSink()
    scope = manager.open_scope()
    session = scope.start(start(), sink)
    await scope.wait(session)
    return sink.events


async def test_usage_and_finish_become_metadata_before_complete() -> None:
    events = await run(
        [TextDelta("a"), TextDelta(""), TextDelta("b"), Usage(3, 2), Finish("stop", "m-x")]
    )
    end = check_session(events)
    assert end["reason"] == "complete" and end["chunks"] == 2
    meta = events[-3]["data"]
    assert meta["usage"] == {"input_tokens": 3, "output_tokens": 2}
    assert meta["finish_reason"] == "stop" and meta["model"] == "m-x"
    assert isinstance(meta["ttft_ms"], int)


async def test_a_stream_without_its_final_frame_is_a_provider_error() -> None:
    events = await run([TextDelta("a")])
    assert check_session(events)["reason"] == "error"
    assert events[-2]["data"]["code"] == "provider_error"


async def test_provider_errors_keep_their_code() -> None:
    events = await run([ProviderRateLimited("slow down", retry_after_s=1)])
    assert events[-2]["data"] == {
        "code": "provider_rate_limited",
        "message": "slow down",
        "retryable": True,
    }


async def test_unexpected_exceptions_are_internal_without_detail() -> None:
    events = await run([TextDelta("a"), KeyError("secret detail")])
    assert check_session(events)["reason"] == "error"
    assert events[-2]["data"]["code"] == "internal"
    assert "secret" not in str(events[-2]["data"])


async def test_cancel_before_the_task_ever_ran_still_pairs_start_and_end() -> None:
    """start then cancel in the same loop step: stream_start, then stream_end{cancelled}."""
    manager = manager_with([Finish("stop")])
    sink = CollectingSink()
    scope = manager.open_scope()
    session = scope.start(start(), sink)
    assert scope.cancel("s") is True
    await scope.wait(session)
    assert [e["type"] for e in sink.events] == ["stream_start", "stream_end"]
    assert sink.events[-1]["data"]["reason"] == "cancelled"


async def test_shutdown_ends_every_session_with_reason_shutdown() -> None:
    manager = manager_with([])
    sinks = [CollectingSink() for _ in range(3)]
    scope = manager.open_scope()
    for i, sink in enumerate(sinks):
        scope.start(
            Start(
                session=f"s{i}",
                messages=(Message("user", "x"),),
                provider="sim",
                params={"hang_at": 1},
            ),
            sink,
        )
    await asyncio.sleep(0.01)
    await manager.shutdown()
    for sink in sinks:
        assert check_session(sink.events)["reason"] == "shutdown"
    assert manager.live_sessions == 0
