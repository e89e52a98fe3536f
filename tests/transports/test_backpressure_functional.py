"""A reader that falls behind gets merged chunks: every character, seq and index gap-free.

A real server, and a raw socket with a tiny receive window that stops reading for a
while: the server's writer is pushed back, the session merges its text (PROTOCOL.md §7),
and once the client reads again the session's life is whole and valid.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import orjson

from server.config import Config
from server.state import CONNECTIONS
from tests._client import check_session
from tests._rawws import RawWebSocket
from tests._wait import eventually
from tests.conftest import ConfigFactory


async def read_frame(peer: RawWebSocket) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    first, second = await peer.reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await peer.reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await peer.reader.readexactly(8))
    return first & 0x0F, await peer.reader.readexactly(length)


async def test_a_lagging_reader_gets_merged_chunks_and_a_whole_valid_life(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    limits = {
        "send_timeout_s": 30.0,
        "outbox_merge_bytes": 4096,
        "outbox_max_bytes": 8 * 1024 * 1024,
        "socket_send_buffer_bytes": 4096,
    }
    server = await start(make_config(limits=limits))
    peer = await RawWebSocket.connect(server.url)
    start_message = {
        "type": "start",
        "session": "s",
        "data": {"prompt": "hi", "params": {"max_tokens": 20_000}},
    }
    await peer.send_text(json.dumps(start_message))
    (connection,) = server.app[CONNECTIONS]
    await eventually(lambda: connection.outbox.merged > 0, within=20, every=0.01)

    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != "stream_end":
        opcode, payload = await read_frame(peer)
        assert opcode == 1
        event = orjson.loads(payload)
        if event.get("session") == "s":
            events.append(event)
    end = check_session(events)  # seq and index gap-free, lengths exact, chunks counted
    assert end["reason"] == "complete"
    chunks = [e for e in events if e["type"] == "content_chunk"]
    assert len(chunks) < 20_000  # fewer events than tokens: text was merged
    assert max(len(e["data"]["content"]) for e in chunks) > 100
    peer.abort()
