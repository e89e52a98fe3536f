"""One transport write for many frames, with aiohttp's own flow control.

The WebSocket writer task drains the connection's Outbox, has the connection's encoder
frame the whole batch (protocol/ws_json.py, ws_msgpack.py) and writes the buffer at once.
This module is the only place that reaches under aiohttp's WebSocketResponse, and it does
what ``WebSocketWriter.send_frame`` does itself: refuse to write once a close began, write
to the transport, and wait on the protocol's drain helper while the transport is paused
(above its high-water mark).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

__all__ = ["BatchWriter"]


class BatchWriter:
    """Writes pre-framed bytes to a prepared WebSocketResponse's transport."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        writer: Any = ws._writer  # set by prepare(); aiohttp's own frame writer
        if writer is None:
            raise RuntimeError("BatchWriter needs a prepared WebSocketResponse")
        self._ws = ws
        self._writer = writer
        self._protocol: Any = writer.protocol
        self._transport: asyncio.Transport = writer.transport

    @property
    def paused(self) -> bool:
        """True while the kernel buffer is full and the transport asked us to stop."""
        return bool(self._protocol.writing_paused)

    def write(self, data: bytes | bytearray) -> None:
        """Hand ``data`` (whole frames) to the transport; never blocks.

        Raises ClientConnectionResetError (a ConnectionError) once the socket is closing,
        exactly as aiohttp's writer does, so a close frame is never followed by data.
        """
        if self._ws.closed or self._writer._closing or self._transport.is_closing():
            raise ClientConnectionResetError("Cannot write to closing transport")
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport accepts more (at once when it is not paused)."""
        if self._protocol.writing_paused and self._protocol.transport is not None:
            await self._protocol._drain_helper()
