"""The Python client against the real server: many sessions on one socket, typed events,
acknowledged cancel, resume after a dropped TCP connection, MessagePack, auth, errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from server.app import RunningServer
from server.config import Config
from server.state import CONNECTIONS, MANAGER
from tests._proxy import TcpRelay
from tests.conftest import ConfigFactory
from tests.transports.test_resume_functional import expected_text  # the simulator's text
from tokenmux import (
    AuthError,
    Client,
    ConnectionLost,
    ContentChunk,
    ContentComplete,
    ErrorEvent,
    Event,
    Metadata,
    ProviderTimeout,
    RateLimited,
    RequestError,
    ServerError,
    Session,
    SessionNotFound,
    StreamEnd,
    StreamStart,
)

Start = Callable[[Config], Any]
PARAMS = {"max_tokens": 60, "tokens_per_second": 400}


def check_life(events: list[Event]) -> StreamEnd:
    """One whole session life, each seq once and in order, its text consistent."""
    assert [e.seq for e in events] == list(range(len(events))), [e.type for e in events]
    assert isinstance(events[0], StreamStart)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    chunks = [e for e in events if isinstance(e, ContentChunk)]
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert end.chunks == len(chunks)
    if end.reason == "complete":
        complete = events[-2]
        assert isinstance(complete, ContentComplete)
        assert complete.total_content == "".join(c.content for c in chunks)
    return end


async def collect(session: Session) -> list[Event]:
    return [event async for event in session]


async def test_one_socket_carries_many_sessions(server: RunningServer) -> None:
    prompts = [f"prompt {i}" for i in range(20)]
    async with Client(server.url) as client:
        sessions = await asyncio.gather(
            *(client.start(prompt=p, params={"max_tokens": 30}) for p in prompts)
        )
        assert len(server.app[CONNECTIONS]) == 1 and client.connections == 1
        lives = await asyncio.gather(*(collect(s) for s in sessions))
        for prompt, session, events in zip(prompts, sessions, lives, strict=True):
            assert check_life(events).reason == "complete"
            assert session.content == await expected_text(server, prompt, {"max_tokens": 30})
            assert await session.text() == session.content
        assert client.sessions == {}  # ended sessions are forgotten


async def test_events_are_typed(server: RunningServer) -> None:
    async with Client(server.url) as client:
        session = await client.start(prompt="Hi", provider="sim", params={"max_tokens": 5})
        assert (session.provider, session.model) == ("sim", "sim-1")
        events = await collect(session)
    start, *_, metadata, complete, end = events
    assert isinstance(start, StreamStart) and start.session_id == session.id
    assert isinstance(start.resume_token, str)  # reconnect on: started detachable
    assert isinstance(metadata, Metadata) and metadata.finish_reason is not None
    assert isinstance(end, StreamEnd) and end.usage is not None
    assert metadata.usage is not None and metadata.usage.output_tokens == end.usage.output_tokens
    assert isinstance(metadata.ttft_ms, int)
    assert isinstance(complete, ContentComplete) and complete.total_content == session.content
    assert check_life(events).reason == "complete"
    assert end.usage.estimated is False
    assert end.timestamp >= start.timestamp > 0


async def test_cancel_returns_once_acknowledged_and_the_provider_stopped(
    server: RunningServer,
) -> None:
    sim = server.app[MANAGER].providers.get("sim")
    async with Client(server.url) as client:
        session = await client.start(prompt="Hi", params={"hang_at": 3})
        async for event in session:
            if isinstance(event, ContentChunk):
                break
        end = await session.cancel()
        assert end is not None and end.reason == "cancelled"
        assert sim.stats.cancelled == 1 and sim.stats.active == 0  # type: ignore[attr-defined]
        assert await session.cancel() is end  # idempotent
        assert await session.text() == session.content  # a cancel is not a failure
        other = await client.start(prompt="again", params={"max_tokens": 2})
        assert (await other.result()).reason == "complete"  # the socket lives on


async def test_close_cancels_what_is_still_running(server: RunningServer) -> None:
    sim = server.app[MANAGER].providers.get("sim")
    client = Client(server.url)
    sessions = [await client.start(prompt="Hi", params={"hang_at": 1}) for _ in range(3)]
    await client.close()
    assert sim.stats.cancelled == 3 and sim.stats.active == 0  # type: ignore[attr-defined]
    assert all(s.end is not None and s.end.reason == "cancelled" for s in sessions)


async def drop_and_resume(server: RunningServer, cut: int, encoding: Any = "json") -> None:
    """One session through a relay that drops the TCP connection after seq ``cut``."""
    relay = await TcpRelay(server.url).start()
    prompt = f"prompt {cut}"
    try:
        async with Client(relay.url, encoding=encoding) as client:
            session = await client.start(prompt=prompt, params=PARAMS)
            events = []
            async for event in session:
                events.append(event)
                if event.seq == cut:
                    relay.cut()
            assert client.connections == 2
    finally:
        await relay.aclose()
    assert check_life(events).reason == "complete", cut
    assert session.content == await expected_text(server, prompt, PARAMS)


async def test_a_dropped_connection_resumes_with_no_gap_and_no_duplicate(
    server: RunningServer,
) -> None:
    cuts = random.Random(7).sample(range(0, 60), 8)
    await asyncio.gather(*(drop_and_resume(server, cut) for cut in cuts))


async def test_resume_over_msgpack(server: RunningServer) -> None:
    await drop_and_resume(server, 10, encoding="msgpack")


async def test_every_session_on_the_socket_resumes_across_two_drops(
    server: RunningServer,
) -> None:
    relay = await TcpRelay(server.url).start()
    params = {"max_tokens": 80, "tokens_per_second": 300}
    prompts = [f"many {i}" for i in range(6)]
    try:
        async with Client(relay.url) as client:
            sessions = [await client.start(prompt=p, params=params) for p in prompts]

            async def read(session: Session, cuts: tuple[int, ...]) -> list[Event]:
                events = []
                async for event in session:
                    events.append(event)
                    if event.seq in cuts:
                        relay.cut()
                return events

            lives = await asyncio.gather(
                read(sessions[0], (5, 40)), *(read(s, ()) for s in sessions[1:])
            )
            assert client.connections == 3
    finally:
        await relay.aclose()
    for prompt, session, events in zip(prompts, sessions, lives, strict=True):
        assert check_life(events).reason == "complete"
        assert session.content == await expected_text(server, prompt, params)


async def test_reconnect_waits_out_an_outage(server: RunningServer) -> None:
    relay = await TcpRelay(server.url).start()
    try:
        async with Client(relay.url, initial_delay_s=0.05) as client:
            session = await client.start(prompt="outage", params=PARAMS)
            events = []
            async for event in session:
                events.append(event)
                if event.seq == 3:
                    relay.refusing = True
                    relay.cut()
                    await asyncio.sleep(0.5)  # the server is unreachable meanwhile
                    refused = relay.accepted
                    relay.refusing = False
            assert refused > 1  # it kept trying, with backoff
    finally:
        await relay.aclose()
    assert check_life(events).reason == "complete"
    assert session.content == await expected_text(server, "outage", PARAMS)


async def test_a_session_that_cannot_resume_fails_with_connection_lost(
    server: RunningServer,
) -> None:
    relay = await TcpRelay(server.url).start()
    sim = server.app[MANAGER].providers.get("sim")
    try:
        async with Client(relay.url) as client:
            session = await client.start(prompt="x", params={"hang_at": 2}, on_disconnect="cancel")
            assert session.resume_token is None
            with pytest.raises(ConnectionLost) as lost:
                async for event in session:
                    if event.seq == 1:
                        relay.cut()
            assert lost.value.retryable and lost.value.code == "connection_lost"
            with pytest.raises(ConnectionLost):
                await session.text()
            again = await client.start(prompt="y", params={"max_tokens": 2})
            assert (await again.result()).reason == "complete"  # a new socket
    finally:
        await relay.aclose()
    assert sim.stats.cancelled == 1  # type: ignore[attr-defined]


async def test_resume_takes_over_a_session_of_another_client(server: RunningServer) -> None:
    params = {"max_tokens": 40, "tokens_per_second": 200}
    first = Client(server.url)
    session = await first.start(prompt="handover", params=params)
    async for event in session:
        if event.seq == 4:
            break
    token = session.resume_token
    assert token is not None
    async with Client(server.url) as second:
        with pytest.raises(AuthError) as refused:
            await second.resume(session.id, token=token[:-2] + "xx", after_seq=4)
        assert refused.value.code == "unauthorized" and not refused.value.retryable
        resumed = await second.resume(session.id, token=token, after_seq=4)
        assert await session.cancel() is None  # the first client has lost it ...
        assert isinstance(session.error, SessionNotFound)
        rest = await collect(resumed)  # ... and the cancel did not reach it
        await first.close()
    assert rest[0].seq == 5 and isinstance(rest[-1], StreamEnd)
    assert [e.seq for e in rest] == list(range(5, 5 + len(rest)))
    assert resumed.content == (await expected_text(server, "handover", params))


async def test_msgpack_connection(server: RunningServer) -> None:
    async with Client(server.url, encoding="msgpack") as client:
        assert client.ready is not None and client.ready.encoding == "msgpack"
        session = await client.start(prompt="ünïcode ✓", params={"max_tokens": 10})
        events = await collect(session)
    assert check_life(events).reason == "complete"
    assert session.content == await expected_text(server, "ünïcode ✓", {"max_tokens": 10})


async def test_bearer_token(start: Start, make_config: ConfigFactory) -> None:
    server = await start(make_config(auth={"tokens": ["s3cret-token"]}))
    for token in (None, "wrong"):
        client = Client(server.url, token=token)
        with pytest.raises(AuthError) as refused:
            await client.start(prompt="x")
        assert refused.value.code == "unauthorized" and not refused.value.retryable
        await client.close()
    async with Client(server.url, token="s3cret-token") as client:
        session = await client.start(prompt="x", params={"max_tokens": 1})
        assert (await session.result()).reason == "complete"


async def test_errors_are_typed_exceptions(start: Start, make_config: ConfigFactory) -> None:
    server = await start(make_config(limits={"max_sessions_per_connection": 1}))
    async with Client(server.url) as client:
        with pytest.raises(RequestError) as unknown:
            await client.start(prompt="x", provider="nope")
        assert unknown.value.code == "unknown_provider"
        assert unknown.value.ref == {"type": "start", "session": unknown.value.session}
        with pytest.raises(RequestError) as invalid:
            await client.start(prompt="x", params={"temperature": 9})
        assert invalid.value.code == "invalid_field" and "temperature" in invalid.value.message

        failing = await client.start(
            prompt="x", params={"fail_at": 2, "fail_code": "provider_timeout"}
        )
        events = await collect(failing)
        error, end = events[-2:]
        assert isinstance(error, ErrorEvent) and error.code == "provider_timeout"
        assert isinstance(end, StreamEnd) and end.reason == "error"
        with pytest.raises(ProviderTimeout) as timeout:
            await failing.text()
        assert timeout.value.retryable and timeout.value.session == failing.id

        hanging = await client.start(prompt="x", params={"hang_at": 1}, session_id="one")
        with pytest.raises(RateLimited) as full:
            await client.start(prompt="x")
        assert full.value.code == "too_many_sessions" and full.value.retryable
        with pytest.raises(RequestError) as duplicate:
            await client.start(prompt="x", session_id="one")
        assert duplicate.value.code == "duplicate_session"
        assert (await hanging.cancel()).reason == "cancelled"  # type: ignore[union-attr]


async def test_server_shutdown_ends_sessions_with_a_typed_error(
    start: Start, make_config: ConfigFactory
) -> None:
    server = await start(make_config())
    client = Client(server.url, reconnect=False)
    session = await client.start(prompt="x", params={"hang_at": 1})
    await server.aclose()
    with pytest.raises(ServerError) as ended:
        await session.text()
    assert ended.value.code == "shutting_down"
    assert session.end is not None and session.end.reason == "shutdown"
    assert client.goaway is not None
    await client.close()


async def test_ping(server: RunningServer) -> None:
    async with Client(server.url) as client:
        assert (await client.ping(hello="there"))["hello"] == "there"


async def test_resuming_gives_up_after_the_window(server: RunningServer) -> None:
    relay = await TcpRelay(server.url).start()
    try:
        async with Client(relay.url, resume_timeout_s=0.3, initial_delay_s=0.05) as client:
            session = await client.start(prompt="x", params={"hang_at": 2})
            with pytest.raises(ConnectionLost):
                async for event in session:
                    if event.seq == 1:
                        relay.refusing = True
                        relay.cut()
            assert relay.accepted > 1 and not client.connected
            relay.refusing = False
            again = await client.start(prompt="y", params={"max_tokens": 1})  # connects anew
            assert (await again.result()).reason == "complete"
    finally:
        await relay.aclose()
