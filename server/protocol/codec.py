"""Encodings of the envelope, negotiated as WebSocket subprotocols.

``tokenmux.v1.json`` sends compact JSON in text frames (the default); ``tokenmux.v1.msgpack``
sends the same envelope as MessagePack in binary frames. Decoding never raises anything but
ProtocolError(bad_request): a frame in the wrong encoding is bad_request too.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgpack
import orjson

from server.errors import ErrorCode, ProtocolError
from server.protocol.envelope import Envelope

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
    """Turns envelopes into frame payloads and frame payloads into plain objects."""

    name: str
    subprotocol: str
    binary: bool

    def encode(self, envelope: Envelope) -> str | bytes: ...

    def encode_bytes(self, envelope: Envelope) -> bytes:
        """The frame payload as bytes (UTF-8 for JSON): what the batch writer frames."""
        ...

    def decode(self, payload: str | bytes) -> Any: ...


class JsonCodec:
    name = "json"
    subprotocol = JSON_SUBPROTOCOL
    binary = False

    def encode(self, envelope: Envelope) -> str:
        return orjson.dumps(envelope).decode()

    # orjson already produces UTF-8: the writer frames these bytes as text without a decode.
    encode_bytes = staticmethod(orjson.dumps)

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

    def __init__(self) -> None:
        # One reusable Packer: packb() builds a new one per call, a cost paid per event.
        self._pack = msgpack.Packer(use_bin_type=True).pack

    def encode(self, envelope: Envelope) -> bytes:
        return self._pack(envelope)

    def encode_bytes(self, envelope: Envelope) -> bytes:
        return self._pack(envelope)

    def decode(self, payload: str | bytes) -> Any:
        if not isinstance(payload, bytes):
            raise ProtocolError("text frame on a MessagePack connection")
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises a zoo of types for bad input
            raise ProtocolError(f"not valid MessagePack: {type(exc).__name__}") from None


CODECS: dict[str, Codec] = {JSON_SUBPROTOCOL: JsonCodec(), MSGPACK_SUBPROTOCOL: MsgpackCodec()}
