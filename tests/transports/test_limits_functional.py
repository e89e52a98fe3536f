"""Limits under attack: rate limits, connection caps, session deadlines, slow consumers.

Each adversarial test keeps a canary session streaming on a well-behaved connection; it
must complete whole and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.app import RunningServer
from server.config import Config
from server.sessions.session import Session
from server.state import CONNECTIONS, MANAGER
from tests._client import WsClient, check_session
from tests._rawws import RawWebSocket, frame, server_frames
from tests._wait import eventually
from tests.conftest import ConfigFactory

CANARY = {"max_tokens": 80, "tokens_per_second": 100}


async def open_canary(server: RunningServer) -> WsClient:
    canary = await WsClient.connect(server.url)
    await canary.receive()
    await canary.start("canary", "canary", params=CANARY)
    return canary


async def finish_canary(canary: WsClient) -> None:
    await canary.until_ended({"canary"})
    end = check_session(canary.events["canary"])
    assert end["reason"] == "complete" and end["chunks"] == 81
    await canary.close()


async def test_messages_past_the_rate_get_rate_limited_with_a_retry_hint(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(rate_limits={"messages_per_s": 1, "message_burst": 5}))
    canary = await open_canary(server)
    client = await WsClient.connect(server.url)
    await client.receive()
    for i in range(8):
        await client.send({"type": "ping", "data": {"i": i}})
    answers = [await client.connection_event() for _ in range(8)]
    assert [a["type"] for a in answers] == ["pong"] * 5 + ["error"] * 3
    for error in answers[5:]:
        assert error["data"]["code"] == "rate_limited" and error["data"]["retryable"] is True
        assert 0 < error["data"]["retry_after_ms"] <= 1000
        assert error["data"]["ref"] == {"type": "ping"}
    await client.close()
    await finish_canary(canary)


async def test_sustained_abuse_closes_the_connection_with_1008(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    limits = {"messages_per_s": 1, "message_burst": 1, "abuse_close_after": 20}
    server = await start(make_config(rate_limits=limits))
    canary = await open_canary(server)
    client = await WsClient.connect(server.url)
    await client.receive()
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(1000):
            await client.send({"type": "ping"})
        while True:
            await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    await finish_canary(canary)


async def test_once_the_abuse_close_is_decided_nothing_more_is_read_or_answered(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    """300 pings in one write: 40 pongs, 20 refusals, the close; not 260 refusals."""
    limits = {"messages_per_s": 0.001, "message_burst": 40, "abuse_close_after": 20}
    server = await start(make_config(rate_limits=limits))
    peer = await RawWebSocket.connect(server.url)
    peer.writer.write(b"".join(frame(b'{"type":"ping"}') for _ in range(300)))
    frames = server_frames(await asyncio.wait_for(peer.read_until_closed(), 10))
    peer.abort()
    events = [json.loads(payload)["type"] for opcode, payload in frames if opcode == 1]
    assert events == ["ready"] + ["pong"] * 40 + ["error"] * 20
    assert frames[-1] == (8, (1008).to_bytes(2, "big"))


async def test_session_starts_are_limited_per_client(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(rate_limits={"starts_per_s": 0.001, "start_burst": 3}))
    client = await WsClient.connect(server.url)
    await client.receive()
    for sid in ("a", "b", "c", "d"):
        await client.start(sid, params={"max_tokens": 1})
    error = await client.connection_event()
    assert error["data"]["code"] == "rate_limited" and error["data"]["ref"]["session"] == "d"
    await client.until_ended({"a", "b", "c"})
    await client.close()


async def test_connections_per_client_are_capped(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(limits={"max_connections_per_client": 2}))
    first, second = await WsClient.connect(server.url), await WsClient.connect(server.url)
    with pytest.raises(InvalidStatus) as refused:
        await WsClient.connect(server.url)
    assert refused.value.response.status_code == 429
    assert json.loads(refused.value.response.body or b"{}")["error"]["code"] == "rate_limited"
    await first.close()
    await first.ws.wait_closed()
    await eventually(lambda: len(server.app[CONNECTIONS]) == 1)
    third = await WsClient.connect(server.url)
    await second.close()
    await third.close()


@pytest.mark.parametrize("trusted", [True, False], ids=["behind-a-trusted-proxy", "spoofed"])
async def test_per_client_limits_follow_x_forwarded_for_only_from_trusted_proxies(
    start: Callable[[Config], Any], make_config: ConfigFactory, trusted: bool
) -> None:
    server = await start(
        make_config(
            server={"trusted_proxies": ["127.0.0.1"] if trusted else []},
            limits={"max_connections_per_client": 1},
        )
    )
    first = await WsClient.connect(
        server.url, additional_headers={"X-Forwarded-For": "203.0.113.1"}
    )
    other = {"X-Forwarded-For": "203.0.113.9, 198.51.100.2"}  # the proxy appended the last
    if trusted:
        second = await WsClient.connect(server.url, additional_headers=other)
        await second.close()
    else:
        with pytest.raises(InvalidStatus):  # the header is not believed: same peer, cap of 1
            await WsClient.connect(server.url, additional_headers=other)
    await first.close()


async def test_a_session_past_its_max_duration_ends_with_timeout(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(limits={"max_session_s": 0.2}))
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"hang_at": 2})
    await client.until_ended({"s"})
    end = check_session(client.events["s"])
    assert end["reason"] == "timeout" and end["chunks"] == 2
    await client.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def fds_at_most(count: int) -> bool:
    return await asyncio.to_thread(open_fds) <= count


@pytest.mark.parametrize("keeps_sending", [False, True], ids=["silent", "sending-not-reading"])
async def test_a_peer_that_never_reads_is_closed_and_its_memory_freed(
    start: Callable[[Config], Any], make_config: ConfigFactory, keeps_sending: bool
) -> None:
    """A non-reader is cut off at the send deadline or the outbox cap; the canary streams."""
    limits = {"send_timeout_s": 1.0, "outbox_merge_bytes": 16_384, "outbox_max_bytes": 262_144}
    server = await start(make_config(limits=limits))
    manager = server.app[MANAGER]
    ended: list[Session] = []
    manager.on_session_end(ended.append)
    baseline = await asyncio.to_thread(open_fds)
    canary = await open_canary(server)
    stalled = await RawWebSocket.connect(server.url)
    for i in range(10):
        start_message = {
            "type": "start",
            "session": f"flood{i}",
            "data": {"prompt": "x" * 2000, "params": {"max_tokens": 1_000_000}},
        }
        await stalled.send_text(json.dumps(start_message))

    async def stalled_is_gone() -> bool:
        if keeps_sending:
            with contextlib.suppress(ConnectionError):  # the server may have aborted it
                await stalled.send_text('{"type":"ping"}')
        return len(server.app[CONNECTIONS]) == 1

    await eventually(stalled_is_gone, within=15, every=0.05)
    flooded = [s for s in ended if s.id.startswith("flood")]
    assert len(flooded) == 10 and {s.end_reason for s in flooded} == {"cancelled"}
    await finish_canary(canary)
    stalled.abort()
    await eventually(lambda: fds_at_most(baseline))


async def test_a_silent_dead_peer_is_closed_by_the_heartbeat(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    """A peer that answers no ping is dropped; its detached-less sessions are cancelled."""
    server = await start(make_config(websocket={"heartbeat_s": 0.2}))
    ended: list[Session] = []
    server.app[MANAGER].on_session_end(ended.append)
    silent = await RawWebSocket.connect(server.url)
    start_message = {
        "type": "start",
        "session": "s",
        "data": {"prompt": "x", "params": {"hang_at": 1}},
    }
    await silent.send_text(json.dumps(start_message))
    await eventually(lambda: len(server.app[CONNECTIONS]) == 0 and len(ended) == 1, within=5)
    assert ended[0].end_reason == "cancelled"
    silent.abort()
