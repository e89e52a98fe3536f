"""`tokenmux bench` against a real server: short smoke runs, not timed tests."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from server.app import RunningServer
from server.bench.main import bench, format_result
from server.bench.record import BenchSpec, percentile
from server.config import Config, load_config
from tests.conftest import ConfigFactory

ROOT = Path(__file__).resolve().parent.parent


async def run_cli(*args: str) -> tuple[int, dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "bench", *args, "--json", "--no-progress",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, orjson.loads(out)


async def test_ws_run_with_cancels_reports_everything(server: RunningServer) -> None:
    """2 sockets x 5 sessions, half the chunks then cancel: every figure is filled in."""
    code, result = await run_cli(
        "ws",
        "--url",
        server.url,
        "-c",
        "2",
        "-s",
        "5",
        "--chunks",
        "20",
        "--rate",
        "100",
        "--cancel-after",
        "3",
    )
    assert code == 0, result
    assert result["streams"] == 10 and result["completed"] == 10
    assert result["reasons"] == {"cancelled": 10} and result["errors"] == {}
    for key in ("ttfc_p50_ms", "ttfc_p99_ms", "stream_p99_ms", "cancel_p99_ms"):
        assert isinstance(result[key], float), key
    assert isinstance(result["server_cpu_s"], float)  # from the server's /metrics
    assert isinstance(result["server_rss_bytes"], float) and result["server_rss_bytes"] > 0


async def test_sse_run_completes_every_stream(server: RunningServer) -> None:
    code, result = await run_cli("sse", "--url", server.url, "-n", "4", "--chunks", "10")
    assert code == 0, result
    assert result["completed"] == 4 and result["reasons"] == {"complete": 4}
    assert result["chunks"] == 40


async def test_in_process_run_and_summary(server: RunningServer) -> None:
    """The library entry point the bench/ script uses, and the human-readable summary."""
    result = await bench(BenchSpec(url=server.url, mode="ws", connections=1, sessions=3, chunks=5))
    assert result.completed == 3 and result.chunks == 15
    text = format_result(result)
    assert "first chunk" in text and "server CPU" in text


async def test_a_refused_start_ends_the_run_instead_of_hanging(server: RunningServer) -> None:
    """More sessions than the server allows per socket: errors are counted, nothing hangs."""
    code, result = await run_cli(
        "ws", "--url", server.url, "-c", "1", "-s", "101", "--chunks", "3", "--rate", "20"
    )
    assert code == 1
    assert result["errors"] == {"too_many_sessions": 1} and result["completed"] == 100


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


async def test_refused_starts_are_explained_with_what_to_change(
    start: Callable[[Config], Any], make_config: ConfigFactory
) -> None:
    """The shipped start rate limit refuses most of a burst: the bench says why and what to
    change, instead of a bare exit 1."""
    server = await start(make_config(rate_limits={"starts_per_s": 2, "start_burst": 5}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "bench", "ws", "--url", server.url,
        "-c", "1", "-s", "25", "--chunks", "2", "--no-progress",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 1, text
    assert "20 of 25 starts were refused (rate_limited)" in text
    assert "2 starts/s per client address (burst 5)" in text
    assert "rate_limits.starts_per_s" in text and "--ramp 11" in text


def test_every_config_file_the_bench_docs_name_exists_and_loads() -> None:
    named = re.findall(r"--config (\S+)", (ROOT / "bench" / "RESULTS.md").read_text())
    assert named
    for path in named:
        load_config(ROOT / path, environ={})
