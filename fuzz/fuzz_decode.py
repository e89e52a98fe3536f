"""Coverage-guided fuzzing of the client-message decode path with atheris.

    pip install atheris
    python fuzz/fuzz_decode.py -runs=200000          # or -max_total_time=600

Every input goes through both codecs and validation, exactly as a WebSocket frame would.
The only acceptable outcomes are a typed message or ProtocolError; anything else is a crash
that atheris reports with the input that caused it.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from server.errors import ProtocolError
    from server.protocol.codec import JsonCodec, MsgpackCodec
    from server.protocol.validate import InputLimits, parse_client_message, parse_http_request

LIMITS = InputLimits()
JSON, MSGPACK = JsonCodec(), MsgpackCodec()


def check(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    as_text = provider.ConsumeUnicodeNoSurrogates(len(data))
    for codec, payload in ((JSON, as_text), (MSGPACK, data)):
        try:
            obj = codec.decode(payload)
        except ProtocolError:
            continue
        with contextlib.suppress(ProtocolError):
            parse_client_message(obj, LIMITS)
        with contextlib.suppress(ProtocolError):
            parse_http_request(obj, LIMITS, default_session="fuzz")


if __name__ == "__main__":
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
