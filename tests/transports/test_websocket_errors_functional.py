"""Every bad input over /ws gets exactly one error with a stable code, and loses nothing.

A canary session streams through every case; it must complete whole and in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed

from server.app import RunningServer
from server.config import Config
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory

CANARY = {"max_tokens": 60, "tokens_per_second": 300}

BAD_FRAMES: list[tuple[str, Any, str, dict[str, Any]]] = [
    ("not-json", "{oops", "bad_request", {}),
    ("not-an-object", "[1,2,3]", "bad_request", {}),
    (
        "unknown-type",
        {"type": "launch", "session": "x"},
        "unknown_type",
        {"type": "launch", "session": "x"},
    ),
    (
        "missing-session",
        {"type": "start", "data": {"prompt": "x"}},
        "invalid_field",
        {"type": "start"},
    ),
    (
        "bad-session-id",
        {"type": "start", "session": "a b", "data": {"prompt": "x"}},
        "invalid_field",
        {"type": "start", "session": "a b"},
    ),
    (
        "missing-prompt",
        {"type": "start", "session": "p", "data": {}},
        "invalid_field",
        {"type": "start", "session": "p"},
    ),
    (
        "empty-prompt",
        {"type": "start", "session": "p", "data": {"prompt": ""}},
        "invalid_field",
        {"type": "start", "session": "p"},
    ),
    (
        "unknown-provider",
        {"type": "start", "session": "p", "data": {"prompt": "x", "provider": "nope"}},
        "unknown_provider",
        {"type": "start", "session": "p"},
    ),
    (
        "cancel-never-started",
        {"type": "cancel", "session": "ghost"},
        "session_not_found",
        {"type": "cancel", "session": "ghost"},
    ),
    ("cancel-without-session", {"type": "cancel"}, "invalid_field", {"type": "cancel"}),
    (
        "resume-unknown",
        {"type": "resume", "session": "r", "data": {"resume_token": "t", "after_seq": 0}},
        "unauthorized",
        {"type": "resume", "session": "r"},
    ),
]


async def send_raw(client: WsClient, frame: Any) -> None:
    await client.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))


@pytest.mark.parametrize(
    ("name", "frame", "code", "ref"), BAD_FRAMES, ids=[r[0] for r in BAD_FRAMES]
)
async def test_bad_frame_gets_one_error_and_the_canary_lives(
    server: RunningServer, name: str, frame: Any, code: str, ref: dict[str, Any]
) -> None:
    client = await WsClient.connect(server.url)
    await client.receive()  # ready
    await client.start("canary", "canary", params=CANARY)
    await client.receive_until(lambda e: e["type"] == "content_chunk")
    await send_raw(client, frame)
    error = await client.connection_event()
    assert error["type"] == "error", error
    assert error["data"]["code"] == code
    assert error["data"].get("ref", {}) == ref
    assert set(error["data"]) >= {"code", "message", "retryable"}
    assert "session" not in error and "seq" not in error
    # Exactly one: the next connection-level event answers our ping.
    await client.send({"type": "ping", "data": {"after": name}})
    assert (await client.connection_event())["type"] == "pong"
    await client.until_ended({"canary"})
    assert check_session(client.events["canary"])["reason"] == "complete"
    await client.close()


async def test_many_bad_frames_in_a_row_each_get_their_error(server: RunningServer) -> None:
    """All rows back to back on one socket: one error each, in order, canary intact."""
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("canary", "canary", params=CANARY)
    for _, frame, _, _ in BAD_FRAMES * 5:
        await send_raw(client, frame)
    codes = [(await client.connection_event())["data"]["code"] for _ in BAD_FRAMES * 5]
    assert codes == [row[2] for row in BAD_FRAMES] * 5
    await client.until_ended({"canary"})
    assert check_session(client.events["canary"])["reason"] == "complete"
    await client.close()


async def test_binary_frame_on_json_connection_is_bad_request(server: RunningServer) -> None:
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.ws.send(b'{"type":"ping"}')
    error = await client.connection_event()
    assert error["data"]["code"] == "bad_request"
    await client.close()


async def test_duplicate_live_session_is_refused_and_the_first_goes_on(
    server: RunningServer,
) -> None:
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("same", "first", params={"max_tokens": 50, "tokens_per_second": 200})
    await client.start("same", "second")
    error = await client.connection_event()
    assert error["data"]["code"] == "duplicate_session"
    assert error["data"]["ref"] == {"type": "start", "session": "same"}
    await client.until_ended({"same"})
    end = check_session(client.events["same"])
    assert end["reason"] == "complete" and end["text"].startswith("first")
    await client.close()


async def test_an_ended_session_id_can_be_reused_and_cancelled_silently(
    server: RunningServer,
) -> None:
    """Cancel after the end is accepted without an error; the id then starts afresh."""
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("s", params={"max_tokens": 2})
    await client.until_ended({"s"})
    await client.cancel("s")
    await client.send({"type": "ping", "data": {"n": 1}})
    pong = await client.connection_event()
    assert pong == {"type": "pong", "timestamp": pong["timestamp"], "data": {"n": 1}}
    first = client.events.pop("s")
    await client.start("s", params={"max_tokens": 2})
    await client.until_ended({"s"})
    assert client.events["s"][0]["seq"] == 0
    check_session(first)
    check_session(client.events["s"])
    await client.close()


async def test_too_many_sessions(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(limits={"max_sessions_per_connection": 2}))
    client = await WsClient.connect(server.url)
    await client.receive()
    for sid in ("a", "b", "c"):
        await client.start(sid, params={"hang_at": 1})
    error = await client.connection_event()
    assert error["data"]["code"] == "too_many_sessions" and error["data"]["retryable"] is True
    assert error["data"]["ref"] == {"type": "start", "session": "c"}
    await client.cancel("a")
    await client.until_ended({"a"})
    await client.start("c", params={"max_tokens": 1})
    await client.until_ended({"c"})
    assert check_session(client.events["c"])["reason"] == "complete"
    await client.close()


async def test_message_too_large_keeps_the_connection(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    server = await start(make_config(limits={"max_message_bytes": 1000}))
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("big", "x" * 2000)
    error = await client.connection_event()
    assert error["data"]["code"] == "message_too_large"
    await client.start("ok", "fine", params={"max_tokens": 1})
    await client.until_ended({"ok"})
    assert check_session(client.events["ok"])["reason"] == "complete"
    await client.close()


async def test_a_frame_of_four_times_the_limit_is_answered_one_byte_more_closes_1009(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    """docs/limits.md: a frame *over* four times max_message_bytes closes the socket."""
    server = await start(make_config(limits={"max_message_bytes": 1000}))
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.ws.send("x" * 4000)
    error = await client.connection_event()
    assert error["data"]["code"] == "message_too_large"
    await client.ws.send("x" * 4001)
    with pytest.raises(ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_msgpack_subprotocol_streams_in_binary_frames(server: RunningServer) -> None:
    """tokenmux.v1.msgpack: the same envelope as MessagePack, one binary frame per event."""
    client = await WsClient.connect(server.url, encoding="msgpack")
    assert client.ws.subprotocol == "tokenmux.v1.msgpack"
    ready = await client.receive()
    assert ready["data"]["encoding"] == "msgpack"
    await client.start("m1", "Grüße", params={"max_tokens": 10})
    await client.start("m2", "second", params={"max_tokens": 10})
    await client.until_ended({"m1", "m2"})
    assert check_session(client.events["m1"])["text"].startswith("Grüße")
    check_session(client.events["m2"])
    await client.ws.send('{"type":"ping"}')  # text on a msgpack connection
    assert (await client.connection_event())["data"]["code"] == "bad_request"
    await client.ws.send(msgpack.packb({"type": "ping", "data": {"b": 1}}))
    assert (await client.connection_event())["data"] == {"b": 1}
    await client.close()


async def test_no_subprotocol_means_json(server: RunningServer) -> None:
    from websockets.asyncio.client import connect

    async with connect(server.url.replace("http", "ws") + "/ws") as ws:
        assert ws.subprotocol is None
        ready = json.loads(await ws.recv())
        assert ready["data"]["encoding"] == "json"
