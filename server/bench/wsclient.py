"""A minimal, fast WebSocket client for the load generator (RFC 6455, client side).

aiohttp's client costs several microseconds and a task switch per received message; at
hundreds of thousands of events per second the load generator, not the server, would set
the pace and its queueing would show up as server latency. This client parses frames
straight from ``data_received`` and calls ``on_message`` synchronously, so a run measures
the server. It supports what the bench needs: the upgrade with one subprotocol, unmasked
unfragmented server frames, masked client text frames, ping/pong and close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["WsClientProtocol", "WsHandshakeError", "connect"]

_LEN16 = struct.Struct("!H").unpack_from
_LEN64 = struct.Struct("!Q").unpack_from


class WsHandshakeError(ConnectionError):
    """The server did not switch protocols."""


class WsClientProtocol(asyncio.Protocol):
    """Frames in, ``on_message(payload: bytes, binary: bool)`` out; ``send_text`` to send."""

    def __init__(self, handshake: bytes, on_message: Callable[[bytes, bool], None]) -> None:
        self._handshake = handshake
        self._on_message = on_message
        self._buffer = bytearray()
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._handshake)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status:
                self._fail(WsHandshakeError(status.decode(errors="replace")))
                return
            self._upgraded = True
            self.opened.set_result(None)
        self._parse(buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or WsHandshakeError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # Sending.

    def send_text(self, payload: bytes) -> None:
        """One masked text frame (clients must mask, RFC 6455 section 5.3)."""
        self._send(0x1, payload)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, struct.pack("!H", 1000))
            self.transport.close()

    # Private helpers.

    def _parse(self, buffer: bytearray) -> None:
        pos, size = 0, len(buffer)
        on_message = self._on_message
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length, start = second & 0x7F, pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                (length,) = _LEN16(buffer, pos + 2)
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = _LEN64(buffer, pos + 2)
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode in (0x1, 0x2):
                on_message(bytes(buffer[start:end]), opcode == 0x2)
            elif opcode == 0x9:
                self._send(0xA, bytes(buffer[start:end]))
            elif opcode == 0x8:
                self.close()
            pos = end
        del buffer[:pos]

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        # XOR with the repeated key, as one big-integer operation (messages are small).
        key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        self.transport.write(head + mask + masked)

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


async def connect(
    url: str, subprotocol: str, on_message: Callable[[bytes, bool], None]
) -> WsClientProtocol:
    """Open ``url`` (ws://host:port/path) and finish the upgrade."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: WsClientProtocol(handshake, on_message), host, port
    )
    await protocol.opened
    return protocol
