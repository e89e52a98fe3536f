"""Encodings of the envelope, negotiated as WebSocket subprotocols.

``tokenmux.v1.json`` sends compact JSON in text frames (the default); ``tokenmux.v1.msgpack``
sends the same envelope as MessagePack in binary frames. A codec decodes what the client
sends and names the encoder of what the server sends (ws_json.py, ws_msgpack.py).
Decoding never raises anything but ProtocolError(bad_request): a frame in the wrong
encoding is bad_request too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgpack
import orjson

from server.errors import ErrorCode, ProtocolError
from server.protocol.encoding import Encoder, Tally
from server.protocol.ws_json import WsJsonEncoder
from server.protocol.ws_msgpack import WsMsgpackEncoder

__all__ = [
    "CODECS",
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "Codec",
    "JsonCodec",
    "MsgpackCodec",
]

JSON_SUBPROTOCOL = "tokenmux.v1.json"
MSGPACK_SUBPROTOCOL = "tokenmux.v1.msgpack"


class Codec(Protocol):
    """Turns frame payloads into plain objects, and names the encoder of the way back."""

    name: str
    subprotocol: str
    binary: bool

    @property
    def encoder(self) -> Callable[[Tally], Encoder]:
        """Makes a connection's encoder, counting into the given tally."""
        ...

    def decode(self, payload: str | bytes) -> Any: ...


class JsonCodec:
    name = "json"
    subprotocol = JSON_SUBPROTOCOL
    binary = False
    encoder = WsJsonEncoder

    def decode(self, payload: str | bytes) -> Any:
        if not isinstance(payload, str):
            raise ProtocolError("binary frame on a JSON connection", code=ErrorCode.BAD_REQUEST)
        try:
            # orjson rejects NaN/Infinity, integers past 64 bits and nesting past 1024
            # levels: all of them are bad_request here.
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"not valid JSON: {exc.msg}") from None


class MsgpackCodec:
    name = "msgpack"
    subprotocol = MSGPACK_SUBPROTOCOL
    binary = True
    encoder = WsMsgpackEncoder

    def decode(self, payload: str | bytes) -> Any:
        if not isinstance(payload, bytes):
            raise ProtocolError("text frame on a MessagePack connection")
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises a zoo of types for bad input
            raise ProtocolError(f"not valid MessagePack: {type(exc).__name__}") from None


CODECS: dict[str, Codec] = {JSON_SUBPROTOCOL: JsonCodec(), MSGPACK_SUBPROTOCOL: MsgpackCodec()}
