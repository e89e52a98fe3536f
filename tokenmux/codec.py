"""The two encodings of PROTOCOL.md section 3, chosen by WebSocket subprotocol."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Codec", "Encoding", "codec_for"]

Encoding = Literal["json", "msgpack"]


@dataclass(frozen=True, slots=True)
class Codec:
    """Encodes client messages and decodes server events for one connection."""

    name: Encoding
    binary: bool

    @property
    def subprotocol(self) -> str:
        return f"tokenmux.v1.{self.name}"

    def encode(self, message: dict[str, Any]) -> str | bytes:
        if self.binary:
            import msgpack  # only MessagePack connections need it

            packed: bytes = msgpack.packb(message, use_bin_type=True)
            return packed
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"))

    def decode(self, payload: str | bytes) -> Any:
        """Raises ValueError for a frame of the wrong kind or one that does not decode."""
        if self.binary:
            if not isinstance(payload, bytes):
                raise ValueError("a text frame on a MessagePack connection")
            import msgpack

            try:
                return msgpack.unpackb(payload, raw=False)
            except (msgpack.UnpackException, ValueError) as exc:
                raise ValueError(f"undecodable MessagePack frame: {exc}") from exc
        if not isinstance(payload, str):
            raise ValueError("a binary frame on a JSON connection")
        return json.loads(payload)  # JSONDecodeError is a ValueError


def codec_for(encoding: str) -> Codec:
    if encoding not in ("json", "msgpack"):
        raise ValueError(f"encoding must be 'json' or 'msgpack', not {encoding!r}")
    return Codec(encoding, binary=encoding == "msgpack")  # type: ignore[arg-type]
