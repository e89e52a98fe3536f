"""Both encodings, checked on exact bytes."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from server.errors import ErrorCode, ProtocolError
from server.metrics import TransportTally
from server.protocol.codec import CODECS, JsonCodec, MsgpackCodec

EVENT: dict[str, Any] = {
    "type": "content_chunk",
    "session": "s1",
    "seq": 1,
    "timestamp": 1700000000000,
    "data": {"content": "Hé 👋", "index": 0, "accumulated_length": 4},
}


def payload_of(frame: bytes) -> bytes:
    """The payload of one server frame under 64 KiB (a 2 or 4 byte header)."""
    if frame[1] < 126:
        assert frame[1] == len(frame) - 2
        return frame[2:]
    assert frame[1] == 126 and int.from_bytes(frame[2:4]) == len(frame) - 4
    return frame[4:]


def test_json_encoding_is_compact_utf8_in_key_order() -> None:
    """JSON frames carry no spaces and raw UTF-8, keys in envelope order."""
    assert (
        payload_of(JsonCodec().encoder(TransportTally()).encode([EVENT]))
        == (
            '{"type":"content_chunk","session":"s1","seq":1,"timestamp":1700000000000,'
            '"data":{"content":"Hé 👋","index":0,"accumulated_length":4}}'
        ).encode()
    )


def test_msgpack_encoding_is_the_same_envelope_as_a_map() -> None:
    """MessagePack frames are the envelope map with str keys and str values."""
    encoded = payload_of(MsgpackCodec().encoder(TransportTally()).encode([EVENT]))
    assert encoded[:1] == b"\x85"  # fixmap of 5 entries
    assert encoded[1:6] == b"\xa4type"
    assert encoded == msgpack.packb(EVENT, use_bin_type=True)
    assert msgpack.unpackb(encoded, raw=False) == EVENT


def test_codecs_are_registered_by_subprotocol() -> None:
    assert set(CODECS) == {"tokenmux.v1.json", "tokenmux.v1.msgpack"}
    assert not CODECS["tokenmux.v1.json"].binary and CODECS["tokenmux.v1.msgpack"].binary


@pytest.mark.parametrize(
    "payload",
    ["", "{", "nope", '{"a":NaN}', '{"a":Infinity}', "[" * 2000 + "]" * 2000],
    ids=["empty", "truncated", "garbage", "nan", "infinity", "deep"],
)
def test_json_decode_rejects_bad_text_as_bad_request(payload: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        JsonCodec().decode(payload)
    assert caught.value.code is ErrorCode.BAD_REQUEST


def test_json_huge_integers_decode_as_floats_for_validation_to_judge() -> None:
    """orjson turns integers past 64 bits into floats; validate.py rejects them where ints go."""
    assert JsonCodec().decode('{"n":1' + "0" * 30 + "}") == {"n": 1e30}


def test_json_decode_rejects_binary_frames() -> None:
    with pytest.raises(ProtocolError, match="binary frame"):
        JsonCodec().decode(b'{"type":"ping"}')


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\x85\xa4ty", b"\xa2\xff\xfe", b"\x01\x02"])
def test_msgpack_decode_rejects_bad_bytes_as_bad_request(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        MsgpackCodec().decode(payload)
    assert caught.value.code is ErrorCode.BAD_REQUEST


def test_msgpack_decode_rejects_text_frames() -> None:
    with pytest.raises(ProtocolError, match="text frame"):
        MsgpackCodec().decode('{"type":"ping"}')
