"""The examples/ apps against a real tokenmux, whose provider is a local upstream.

Each example test starts tokenmux in-process (an ``openai`` provider served by
tests/providers/upstream.py, so every provider request and the moment its client went away
are recorded), then the example app as a child process pointed at it, and runs
``check_example``: text relayed, a browser that leaves cancels the upstream request, and a
provider error reaches the browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.app import RunningServer
from tests._process import OutputLog
from tests.conftest import ConfigFactory, Starter
from tests.providers.conftest import entry
from tests.providers.upstream import Reply, Upstream, start_upstream

ROOT = Path(__file__).resolve().parents[2]
MODEL = "example-model"
# Several chunks, spaced out, so that a browser leaving after the first is mid-stream.
LONG = Reply(text="one two three four five six seven eight " * 5, chunks=40, chunk_delay_s=0.05)


@dataclass
class Backend:
    upstream: Upstream
    server: RunningServer


@pytest.fixture
async def backend(start: Starter, make_config: ConfigFactory) -> AsyncIterator[Backend]:
    """A tokenmux server whose default provider is an OpenAI-wire local upstream."""
    upstream, runner = await start_upstream()
    config = make_config(providers={"default": "llm", "llm": entry("openai", upstream, MODEL)})
    yield Backend(upstream, await start(config))
    await runner.cleanup()


@asynccontextmanager
async def run_app(
    argv: Sequence[str], *, cwd: Path = ROOT, env: Mapping[str, str]
) -> AsyncIterator[str]:
    """An example app as a child process; yields its base URL once it listens."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONASYNCIODEBUG": "", **env},
    )
    assert process.stdout is not None
    output = OutputLog(process.stdout)
    try:
        found = await output.wait_for(r"(?:listening on|running on) (http://[\d.:]+)", within=20)
        yield found.group(1)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        await output.aclose()


def uvicorn(target: str, backend: Backend, *extra: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment to serve the ASGI app ``target`` on a free port."""
    argv = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "0", *extra]
    return argv, {"TOKENMUX_URL": backend.server.url}


async def read_events(
    response: aiohttp.ClientResponse, *, stop_after_text: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """The ``event:``/``data:`` blocks of an SSE response (``stop_after_text``: the first
    text event only)."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            name = "message"
            if stop_after_text and events[-1][0] == "text":
                break
    return events


async def check_example(app_url: str, upstream: Upstream) -> None:
    """Text relayed; a browser that leaves mid-stream cancels the upstream request; a
    provider's mid-stream error reaches the browser after the text before it."""
    upstream.plan(MODEL, Reply(text="Hello from the upstream.", chunks=3), LONG,
                  Reply(text="Partial answer", chunks=2, error_after=1))  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{app_url}/chat", params={"prompt": "hi"}) as response:
            assert response.status == 200, await response.text()
            assert response.headers["Content-Type"].startswith("text/event-stream")
            events = await read_events(response)
        assert "".join(data["text"] for name, data in events if name == "text") == (
            "Hello from the upstream."
        )
        assert events[-1] == ("end", {"reason": "complete"})
        first = await upstream.wait_for_request(MODEL, 1)
        assert first.body["messages"][-1]["content"] == "hi"

        async with http.get(f"{app_url}/chat", params={"prompt": "a long one"}) as response:
            await read_events(response, stop_after_text=True)
            response.close()  # the browser goes away mid-stream
        second = await upstream.wait_for_request(MODEL, 2)
        async with asyncio.timeout(5):
            await second.disconnected.wait()  # the provider request was aborted

        async with http.get(f"{app_url}/chat", params={"prompt": "fail"}) as response:
            events = await read_events(response)
    assert events[0] == ("text", {"text": "Partial"})
    assert events[1][0] == "error" and events[1][1]["code"] == "provider_error", events
    assert events[2] == ("end", {"reason": "error"})
    assert len(upstream.requests(MODEL)) == 3  # a failure after text is not retried
