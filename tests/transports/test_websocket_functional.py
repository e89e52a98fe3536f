"""GET /ws end to end: a real server on 127.0.0.1 and the `websockets` client."""

from __future__ import annotations

import asyncio
import random

from server.app import RunningServer
from server.sessions.session import Session
from server.state import MANAGER
from tests._client import WsClient, check_session


async def test_ready_describes_the_server(server: RunningServer) -> None:
    """The first event on a new socket is `ready`, with protocol, encoding and limits."""
    client = await WsClient.connect(server.url)
    ready = await client.receive()
    assert ready["type"] == "ready"
    assert "session" not in ready and "seq" not in ready
    data = ready["data"]
    assert data["protocol"] == 1 and data["encoding"] == "json"
    assert data["providers"] == ["sim"] and data["default_provider"] == "sim"
    assert data["provider_types"] == {"sim": "sim"}
    assert data["limits"]["max_sessions"] == 100
    assert data["limits"]["max_message_bytes"] == 1_048_576
    assert data["limits"]["messages_per_s"] == 100 and data["limits"]["start_burst"] == 10_000
    assert data["resume"] == {"enabled": True, "grace_s": 30, "buffer_events": 256}
    await client.close()


async def test_one_session_streams_the_echo_then_filler(server: RunningServer) -> None:
    """A started session streams the prompt back verbatim, then completes."""
    client = await WsClient.connect(server.url)
    await client.start("s1", "Hello, wörld 👋", params={"max_tokens": 5})
    await client.until_ended({"s1"})
    end = check_session(client.events["s1"])
    assert end["reason"] == "complete"
    assert end["text"].startswith("Hello, wörld 👋 ")
    assert end["usage"]["estimated"] is False
    await client.close()


async def test_fifty_sessions_on_one_socket_half_cancelled(server: RunningServer) -> None:
    """50 concurrent sessions share one socket; 25 are cancelled mid-stream."""
    client = await WsClient.connect(server.url)
    ids = [f"s{i}" for i in range(50)]
    for sid in ids:
        await client.start(
            sid, f"prompt {sid}", params={"max_tokens": 200, "tokens_per_second": 400}
        )
    doomed = set(random.Random(7).sample(ids, 25))
    # Cancel each doomed session after its third chunk: mid-stream, not before it began.
    while doomed - {
        s for s, evs in client.events.items() if any(e["type"] == "stream_end" for e in evs)
    }:
        event = await client.receive()
        if (
            event["type"] == "content_chunk"
            and event["data"]["index"] == 2
            and event["session"] in doomed
        ):
            await client.cancel(event["session"])
    await client.until_ended(set(ids))
    for sid in ids:
        end = check_session(client.events[sid])
        if sid in doomed:
            assert end["reason"] == "cancelled" and end["usage"]["estimated"] is True
            assert 3 <= end["chunks"] < 200
        else:
            assert end["reason"] == "complete"
    await client.close()


async def test_closing_the_socket_cancels_its_sessions(server: RunningServer) -> None:
    """Disconnect cancels every session of the socket (observed at the simulator)."""
    manager = server.app[MANAGER]
    ended: list[str] = []
    all_ended = asyncio.Event()

    def record(session: Session) -> None:
        ended.append(session.end_reason or "")
        if len(ended) == 3:
            all_ended.set()

    manager.on_session_end(record)
    client = await WsClient.connect(server.url)
    for i in range(3):
        await client.start(f"s{i}", params={"hang_at": 2})
    await client.receive_until(lambda e: e["type"] == "content_chunk" and e["data"]["index"] == 1)
    await client.close()
    async with asyncio.timeout(5):
        await all_ended.wait()
    assert ended == ["cancelled"] * 3
