"""Everything tokenmux takes from aiohttp beyond its public API, in one place.

Both writers skip aiohttp's per-message write path to hand the transport one buffer per
batch (one ``send()`` for many events). Doing so needs a few of aiohttp's private names;
each is used here only, with why it is needed and what public call it stands in for.
Every wrapper looks its names up when it is built and raises ``AiohttpChanged`` naming the
one that moved; tests/transports/test_aiohttp_private.py builds them on a real server, so
an aiohttp upgrade that renames one fails the suite loudly, not the writers quietly.
pyproject.toml caps aiohttp at the newest minor version the suite has passed on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

__all__ = [
    "AiohttpChanged",
    "ChunkedBody",
    "WsTransport",
    "is_chunked",
]


class AiohttpChanged(RuntimeError):
    """An aiohttp private name tokenmux relies on is gone (a newer aiohttp)."""


def _private(owner: object, name: str, what: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise AiohttpChanged(
            f"aiohttp {type(owner).__name__}.{name} is gone ({what}); see "
            "server/transports/aiohttp_private.py"
        ) from None


class _FlowControl:
    """aiohttp's write-side flow control of one connection (its BaseProtocol)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        # Public name on aiohttp's BaseProtocol: True between pause_writing() and
        # resume_writing(), i.e. while the transport's buffer is above its high-water mark.
        _private(protocol, "writing_paused", "the transport's pause state")
        # BaseProtocol._drain_helper(): the wait aiohttp's own writers do while paused. It
        # stands in for ``await ws.send_*()`` / ``await response.write()`` draining, which
        # we cannot call because we write to the transport ourselves. Looked up here to
        # fail early, and again when needed (no bound method held by every open stream).
        _private(protocol, "_drain_helper", "waiting while paused")

    @property
    def paused(self) -> bool:
        """True while the kernel buffer is full and the transport asked us to stop."""
        return bool(self._protocol.writing_paused)

    async def drain(self) -> None:
        """Wait until the transport accepts more (at once when it is not paused)."""
        if self._protocol.writing_paused and self._protocol.transport is not None:
            await self._protocol._drain_helper()


class WsTransport(_FlowControl):
    """A prepared WebSocketResponse's transport, for writing pre-framed bytes.

    It does what ``WebSocketWriter.send_frame`` does itself, for a whole batch of frames:
    refuse to write once a close began, write to the transport, and (``drain``) wait on the
    protocol's drain helper while the transport is paused.
    """

    __slots__ = ("_transport", "_writer", "_ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        # WebSocketResponse._writer: aiohttp's frame writer, set by prepare(). We need its
        # protocol and transport; the public send_str()/send_bytes() write one frame per
        # call and await per call, which is what batching replaces.
        writer = _private(ws, "_writer", "the frame writer")
        if writer is None:
            raise RuntimeError("WsTransport needs a prepared WebSocketResponse")
        # WebSocketWriter._closing: set once aiohttp wrote (or began) the close frame;
        # send_frame() refuses to write after it, and so must we (RFC 6455 §5.5.1).
        _private(writer, "_closing", "whether the close frame went out")
        super().__init__(_private(writer, "protocol", "the connection's protocol"))
        self._ws = ws
        self._writer = writer
        self._transport: asyncio.Transport = _private(writer, "transport", "the transport")

    def write(self, data: bytes | bytearray) -> None:
        """Hand ``data`` (whole frames) to the transport; never blocks.

        Raises ClientConnectionResetError (a ConnectionError) once the socket is closing,
        exactly as aiohttp's writer does, so a close frame is never followed by data.
        """
        if self._ws.closed or self._writer._closing or self._transport.is_closing():
            raise ClientConnectionResetError("Cannot write to closing transport")
        self._transport.write(data)


def is_chunked(response: web.StreamResponse) -> bool:
    """Whether aiohttp frames this prepared response's body as HTTP/1.1 chunks.

    aiohttp picks chunked framing itself in prepare() (for HTTP/1.1 clients with no
    Content-Length) and says so only in the header it sent; ``response.chunked`` reflects
    an explicit ``enable_chunked_encoding()`` only.
    """
    return response.headers.get("Transfer-Encoding", "").lower() == "chunked"


class ChunkedBody(_FlowControl):
    """A prepared StreamResponse's body, written to the transport without awaiting.

    It stands in for ``await response.write(data)`` (aiohttp's StreamWriter), which a
    ``call_soon`` callback cannot await: the same bytes, chunked framing included (RFC 9112
    §7.1: hex size, CRLF, data, CRLF), so aiohttp's own later writes (``response.write``,
    ``write_eof``'s last chunk) interleave correctly. Relies on prepare() having sent the
    headers already (StreamResponse sends them at once unless told to buffer them) and on
    StreamWriter holding no body bytes of its own between writes (it holds none: every
    write goes to the transport, compression aside, which SSE responses do not use).
    """

    __slots__ = ("chunked", "transport")

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the client went away")
        super().__init__(request.protocol)  # public; its flow control is BaseProtocol's
        # Typed loosely on purpose: uvloop's transports are not asyncio.Transport subclasses.
        self.transport: Any = transport
        self.chunked = is_chunked(response)

    def write(self, data: bytes) -> None:
        """Write ``data`` (not empty: an empty chunk would end the body) now."""
        if self.chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self.transport.write(data)

    @property
    def closing(self) -> bool:
        return bool(self.transport.is_closing())
