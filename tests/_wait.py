"""Waiting for a condition that no event announces (fd counts, registry sizes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["eventually"]


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float = 5.0, every: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail with TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(every)
