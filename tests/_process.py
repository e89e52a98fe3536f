"""tokenmux as a child process: start it with a config, read its output while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from pathlib import Path

__all__ = ["ORPHANED_TASK", "OutputLog", "spawn_server"]

ROOT = Path(__file__).resolve().parent.parent
# What asyncio logs when it garbage-collects a task that was still pending: nobody owned it.
ORPHANED_TASK = "Task was destroyed but it is pending"


class OutputLog:
    """The lines a child process prints, readable while it runs, with waits on them."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._read(stream), name="child output")

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip())
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    async def wait_for(self, pattern: str, *, within: float = 10) -> re.Match[str]:
        """The first line (from the start) matching ``pattern``, waiting for it."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for line in self.lines if (m := regex.search(line))][:1]
            return bool(found) or "<eof>" in self.lines

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(seen)
        assert found, f"no line matched {pattern!r}:\n" + "\n".join(self.lines[-30:])
        return found[0]

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def assert_no_orphaned_tasks(self) -> None:
        """Fail if the process logged a pending task destroyed (a task nobody owned)."""
        orphans = [line for line in self.lines if ORPHANED_TASK in line]
        assert not orphans, "\n".join(orphans)


async def spawn_server(config: Path) -> tuple[asyncio.subprocess.Process, OutputLog, str]:
    """``python -m server serve`` on a free port; returns once it logs its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--config", str(config), "--port", "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONASYNCIODEBUG": ""},
    )  # fmt: skip
    assert process.stdout is not None
    output = OutputLog(process.stdout)
    try:
        url = (await output.wait_for(r"listening on (http://\S+)", within=20)).group(1)
    except BaseException:
        process.kill()
        await process.wait()
        output.task.cancel()
        raise
    return process, output, url
