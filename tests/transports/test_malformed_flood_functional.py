"""10,000 malformed messages on one socket: one error each, no server exception, canary whole."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

from server.config import Config
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory

LIMIT = 4096


def malformed(rng: random.Random) -> tuple[str | bytes, str]:
    """One bad frame and the code it must get."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 64)), "bad_request"  # binary on a JSON socket
    if kind == 1:
        good = json.dumps({"type": "start", "session": "x", "data": {"prompt": "hi"}})
        return good[: rng.randrange(1, len(good) - 1)], "bad_request"  # truncated
    if kind == 2:
        depth = rng.randrange(1100, 1500)
        return "[" * depth + "]" * depth, "bad_request"  # nesting past the decoder's limit
    if kind == 3:
        huge = "9" * rng.randrange(30, 300)
        params = f'{{"max_tokens":{huge}}}'
        frame = f'{{"type":"start","session":"h","data":{{"prompt":"x","params":{params}}}}}'
        return frame, "invalid_field"  # a number far past 64 bits
    if kind == 4:
        return '{"type":"ping","data":{"v":NaN}}', "bad_request"
    if kind == 5:
        value: Any = rng.choice([1, 2.5, True, None, [], {}, "s" * 70])
        return json.dumps(
            {"type": "start", "session": value, "data": {"prompt": "x"}}
        ), "invalid_field"
    if kind == 6:
        return json.dumps({"type": rng.choice(["stop", "START", "", "x" * 100])}), "unknown_type"
    if kind == 7:
        return "x" * rng.randrange(LIMIT + 1, LIMIT * 3), "message_too_large"
    return json.dumps([rng.randrange(10)]), "bad_request"  # not an object


async def test_ten_thousand_malformed_messages(
    start: Callable[[Config], Any], make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = await start(
        make_config(
            limits={"max_message_bytes": LIMIT},
            rate_limits={"messages_per_s": 1_000_000, "message_burst": 1_000_000},
        )
    )
    client = await WsClient.connect(server.url)
    await client.receive()
    await client.start("canary", "canary", params={"max_tokens": 300, "tokens_per_second": 200})
    rng = random.Random(2024)
    for _ in range(100):  # in rounds, so the client library never stops reading
        frames = [malformed(rng) for _ in range(100)]
        for frame, _ in frames:
            await client.ws.send(frame)
        for _, code in frames:
            error = await client.connection_event()
            assert error["type"] == "error" and error["data"]["code"] == code, (error, code)
    await client.until_ended({"canary"})
    assert check_session(client.events["canary"])["reason"] == "complete"
    assert len(client.connection_events) == 1 + 10_000  # ready, then exactly one error each
    await client.close()
    server_problems = [
        r for r in caplog.records if r.name.startswith("server") and r.levelno >= logging.ERROR
    ]
    assert not server_problems
