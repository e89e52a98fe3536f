"""Shared fixtures: a real tokenmux server on 127.0.0.1 and a config factory.

Every test runs with asyncio debug mode on, warnings as errors (pyproject), a per-test
timeout (pyproject) and blockbuster, which makes any blocking call inside the event loop
fail the test.
"""

from __future__ import annotations

import gc
import logging
import os

os.environ.setdefault("PYTHONASYNCIODEBUG", "1")

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

from server.app import RunningServer, start_server
from server.config import Config, config_from_mapping
from tests._process import ORPHANED_TASK

ConfigFactory = Callable[..., Config]
Starter = Callable[[Config], Awaitable[RunningServer]]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into a copy of ``base``."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


TEST_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 0, "shutdown_timeout_s": 5, "drain_s": 0},
    # One test client starts sessions far faster than a person; the limit tests set their own.
    "rate_limits": {"starts_per_s": 10_000, "start_burst": 10_000},
    "providers": {
        "default": "sim",
        "sim": {"type": "sim", "model": "sim-1", "params": {"tokens_per_second": 0}},
    },
}


@pytest.fixture
def make_config() -> ConfigFactory:
    """``make_config(limits={...})`` gives the test config with those sections merged in."""

    def factory(**sections: Any) -> Config:
        return config_from_mapping(merge(TEST_CONFIG, sections), environ={})

    return factory


@pytest.fixture
async def start() -> AsyncIterator[Callable[[Config], Any]]:
    """``server = await start(config)``: a real server on a free port, stopped afterwards."""
    servers: list[RunningServer] = []

    async def launch(config: Config) -> RunningServer:
        running = await start_server(config)
        servers.append(running)
        return running

    yield launch
    for running in servers:
        await running.aclose()


@pytest.fixture
async def server(start: Callable[[Config], Any], make_config: ConfigFactory) -> RunningServer:
    """A server with the default test config (simulator, unthrottled)."""
    running: RunningServer = await start(make_config())
    return running


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    with blockbuster_ctx() as detector:
        yield detector


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def no_orphaned_tasks() -> Iterator[None]:
    """Fail a test whose event loop garbage-collected a pending task: a task nobody owned
    (nobody cancelled and awaited it). Child processes are checked by tests._process."""
    records = _Records()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(records)
    try:
        yield
        gc.collect()  # a task caught in a reference cycle is destroyed (and logged) here
    finally:
        asyncio_logger.removeHandler(records)
    orphans = [m for m in records.messages if ORPHANED_TASK in m]
    assert not orphans, "\n".join(orphans)
