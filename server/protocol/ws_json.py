"""WebSocket frames of compact JSON (``tokenmux.v1.json``, the default): text frames."""

from __future__ import annotations

import orjson

from server.protocol.encoding import Tally
from server.protocol.frames import OP_TEXT, FrameEncoder

__all__ = ["WsJsonEncoder"]


class WsJsonEncoder(FrameEncoder):
    """One text frame per envelope. orjson already produces UTF-8: no decode is needed."""

    __slots__ = ()

    def __init__(self, tally: Tally) -> None:
        super().__init__(orjson.dumps, OP_TEXT, tally)
