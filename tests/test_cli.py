"""The console entry point, run as a real process: serve, stream, stop on a signal."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp

from tests._rawws import RawWebSocket

ROOT = Path(__file__).resolve().parent.parent


async def launch(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONASYNCIODEBUG": ""},
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, "server exited before listening"
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                return process, found.group(1)


async def test_serve_streams_on_the_simulator_and_stops_on_sigterm() -> None:
    """`python -m server serve` with the shipped config: one URL line, streams, exits 0."""
    process, url = await launch("--port", "0", "--config", str(ROOT / "config.yaml"))
    try:
        async with aiohttp.ClientSession() as http:
            body = {"prompt": "Hello", "llm_params": {"max_tokens": 3, "ttft_ms": 0}}
            async with http.post(url + "/api/stream", json=body) as response:
                raw = await response.read()
        assert raw.startswith(b"data: {") and raw.endswith(b"data: [DONE]\n\n")
        assert b'"total_content":"Hello ' in raw
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await process.wait()
    assert code == 0


async def test_bad_config_is_a_clear_error_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, "server:\n  prot: 1\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        "--config",
        str(config),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"server.prot: unknown key" in stderr


async def test_sigterm_with_a_client_that_never_reads_exits_within_the_bound(
    tmp_path: Path,
) -> None:
    """A stalled peer with floods of text cannot hold the process past its shutdown bound."""
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(
        config.write_text,
        "server:\n  drain_s: 0.5\n  shutdown_timeout_s: 2\n"
        "providers:\n  sim:\n    type: sim\n    params: {tokens_per_second: 0}\n",
    )
    process, url = await launch("--port", "0", "--config", str(config))
    stalled = await RawWebSocket.connect(url)
    for i in range(5):
        message = {
            "type": "start",
            "session": f"f{i}",
            "data": {"prompt": "x" * 1000, "params": {"max_tokens": 1_000_000}},
        }
        await stalled.send_text(json.dumps(message))
    reader = await RawWebSocket.connect(url)
    await reader.send_text(
        json.dumps(
            {"type": "start", "session": "r", "data": {"prompt": "x", "params": {"hang_at": 1}}}
        )
    )
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    received = await asyncio.wait_for(reader.read_until_closed(), 10)
    code = await asyncio.wait_for(process.wait(), 10)
    assert code == 0
    assert time.monotonic() - began < 0.5 + 2 + 3
    assert b'"type":"goaway"' in received and b'"reason":"shutdown"' in received
    assert b"\x88\x02\x03\xe9" in received  # a close frame with code 1001
    stalled.abort()
    reader.abort()
