"""Every test loop runs in asyncio debug mode, however pytest is started."""

from __future__ import annotations

import asyncio


async def test_the_test_event_loop_runs_in_debug_mode() -> None:
    """pytest-asyncio passes its own ``debug`` to the loop, overriding PYTHONASYNCIODEBUG."""
    assert asyncio.get_running_loop().get_debug()
