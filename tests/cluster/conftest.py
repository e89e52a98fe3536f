"""A real cluster for the shared-store tests: Debian's redis-server on a free loopback
port and several tokenmux processes started with ``python -m server serve``.

Nothing here is skipped: without redis-server the tests fail and say how to install it.
Every process started here is stopped at teardown (SIGTERM, then SIGKILL past a bound),
and the tasks that read their output are cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests._process import OutputLog, spawn_server
from tests.conftest import merge

ROOT = Path(__file__).resolve().parent.parent.parent
REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or ""
HEARTBEAT_S = 0.2  # node liveness: a killed node is lost after 3 missed beats

NODE_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "drain_s": 0, "shutdown_timeout_s": 3},
    "resume": {"grace_s": 30},
    "providers": {
        "default": "sim",
        "sim": {"type": "sim", "model": "sim-1", "params": {"tokens_per_second": 0}},
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on a fixed loopback port; it can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: asyncio.subprocess.Process | None = None
        self.output: OutputLog | None = None

    async def start(self) -> None:
        process = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        self.process = process
        self.output = OutputLog(process.stdout)
        await self.output.wait_for("Ready to accept connections")

    def freeze(self, frozen: bool) -> None:
        """SIGSTOP (frozen) or SIGCONT: Redis stops answering, then carries on."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self.output is not None:
            await self.output.aclose()
        self.process = self.output = None


class Node:
    """One tokenmux process of the cluster."""

    def __init__(self, process: asyncio.subprocess.Process, output: OutputLog, url: str) -> None:
        self.process = process
        self.output = output
        self.url = url

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/healthz") as response:
                body: dict[str, Any] = await response.json()
                return body

    async def wait_health(self, predicate: Callable[[dict[str, Any]], bool], within: float) -> None:
        """Poll /healthz until ``predicate`` holds (a condition in another process)."""
        async with asyncio.timeout(within):
            while not predicate(await self.health()):  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
        await self.process.wait()
        await self.output.aclose()
        self.output.assert_no_orphaned_tasks()


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    """A fresh redis-server for one test."""
    if not REDIS_SERVER:
        pytest.fail(
            "redis-server not found: the cluster tests need Debian's redis-server "
            "(`make test` installs it; or apt-get install redis-server)"
        )
    server = RedisServer()
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def cluster(redis: RedisServer, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``node = await cluster(**sections)``: a tokenmux process sharing ``redis``."""
    nodes: list[Node] = []

    async def launch(**sections: Any) -> Node:
        store = {"type": "redis", "url": redis.url, "heartbeat_s": HEARTBEAT_S, "op_timeout_s": 1}
        config = merge(NODE_CONFIG, {"store": store, **sections})
        path = tmp_path / f"node{len(nodes)}.yaml"
        await asyncio.to_thread(path.write_text, json.dumps(config))
        process, output, url = await spawn_server(path)
        node = Node(process, output, url)
        nodes.append(node)
        return node

    try:
        yield launch
    finally:
        stopped = await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
        for outcome in stopped:
            if isinstance(outcome, BaseException):
                raise outcome
