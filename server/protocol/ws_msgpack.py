"""WebSocket frames of MessagePack (``tokenmux.v1.msgpack``): binary frames."""

from __future__ import annotations

import msgpack

from server.protocol.encoding import Tally
from server.protocol.frames import OP_BINARY, FrameEncoder

__all__ = ["WsMsgpackEncoder"]

# One Packer for every connection: packb() builds a new one per call (a cost paid per
# event), and one per connection would hold a buffer per connection. pack() is synchronous
# and resets after each call, so sharing it across connections is safe.
_pack = msgpack.Packer(use_bin_type=True).pack


class WsMsgpackEncoder(FrameEncoder):
    """One binary frame per envelope."""

    __slots__ = ()

    def __init__(self, tally: Tally) -> None:
        super().__init__(_pack, OP_BINARY, tally)
