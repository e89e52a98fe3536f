"""A peer cut off for not reading learns it at once: a reset, not a FIN queued behind data."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

from server.app import RunningServer
from server.config import Config
from tests._rawws import RawWebSocket
from tests._wait import eventually
from tests.conftest import ConfigFactory

DEADLINE_S = 1.0
TCP_CLOSE = 7  # tcp_info.tcpi_state once a reset arrived (FIN_WAIT/CLOSE_WAIT are others)


def tcp_state(peer: RawWebSocket) -> int:
    sock: socket.socket = peer.writer.get_extra_info("socket")
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


async def read_slowly_to_the_end(peer: RawWebSocket) -> None:
    """Read as a congested link would (~160 KB/s) until EOF or a reset."""
    try:
        while True:
            if not await peer.reader.read(4096):
                return
            await asyncio.sleep(0.025)
    except ConnectionResetError:
        pass


async def test_a_peer_cut_off_at_the_send_deadline_is_reset_at_once(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    limits = {
        "send_timeout_s": DEADLINE_S,
        "outbox_merge_bytes": 1 << 24,
        "outbox_max_bytes": 1 << 26,  # the deadline, not the outbox cap, cuts this peer off
    }
    server: RunningServer = await start(make_config(limits=limits))
    peer = await RawWebSocket.connect(server.url)
    params = {"max_tokens": 1_000_000}
    await peer.send_text(
        json.dumps(
            {"type": "start", "session": "f", "data": {"prompt": "x" * 2000, "params": params}}
        )
    )
    # Not reading: the server's writes block once the kernel buffers fill, which takes a
    # moment longer on a loaded machine, so the deadline is given slack here.
    try:
        # Told without reading a byte: the reset is not queued behind the unsent data
        # (without SO_LINGER {1, 0} the FIN waits behind it and this socket stays open).
        await eventually(lambda: tcp_state(peer) == TCP_CLOSE, within=DEADLINE_S + 4)
        async with asyncio.timeout(1.0):  # then the end is there at once, even read slowly
            await read_slowly_to_the_end(peer)
    finally:
        peer.abort()
