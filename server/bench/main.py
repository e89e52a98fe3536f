"""``tokenmux bench``: size a deployment by loading a running tokenmux with the simulator.

Examples::

    tokenmux bench ws --url http://127.0.0.1:8080 -c 10 -s 100 --chunks 200
    tokenmux bench sse --url http://127.0.0.1:8080 -n 50 --chunks 2000 --json
    tokenmux bench ws -c 10 -s 100 --rate 20 --cancel-after 5     # cancel latency

The server's CPU seconds and RSS come from its ``/metrics`` (scraped before, when every
stream has started, and after). Only loopback or your own hosts: this is a load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from typing import Any, TextIO

import aiohttp
import orjson

from server.bench.load import run_load
from server.bench.record import BenchResult, BenchSpec, Recorder

__all__ = ["add_bench_parser", "run_bench", "scrape_process"]


def add_bench_parser(commands: Any) -> None:
    """Register ``bench`` on the CLI's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--no-progress", action="store_true", help="no live progress line")
    common.add_argument("--timeout", type=float, default=300.0, help="stop the run after (s)")
    common.add_argument("--chunks", type=int, default=200, help="content chunks per stream")
    common.add_argument("--rate", type=float, default=0.0, help="tokens/s per stream (0: max)")
    common.add_argument("--ramp", type=float, default=0.0, help="spread starts over (s)")
    common.add_argument(
        "--cancel-after", type=int, default=0, help="cancel each stream after N chunks"
    )
    common.add_argument("--burst", type=int, help="simulator tokens per loop turn (unpaced)")
    bench = commands.add_parser("bench", help="load a tokenmux server and report figures")
    modes = bench.add_subparsers(dest="mode", required=True)
    ws = modes.add_parser("ws", parents=[common], help="C WebSocket connections x S sessions")
    ws.add_argument("-c", "--connections", type=int, default=10)
    ws.add_argument("-s", "--sessions", type=int, default=100, help="sessions per connection")
    sse = modes.add_parser("sse", parents=[common], help="N SSE streams (POST /api/stream)")
    sse.add_argument("-n", "--streams", type=int, default=50)


def spec_from_args(args: argparse.Namespace) -> BenchSpec:
    ws = args.mode == "ws"
    return BenchSpec(
        url=args.url.rstrip("/"),
        mode=args.mode,
        connections=args.connections if ws else 1,
        sessions=args.sessions if ws else args.streams,
        chunks=args.chunks,
        rate=args.rate,
        ramp_s=args.ramp,
        cancel_after=args.cancel_after,
        burst=args.burst,
        timeout_s=args.timeout,
    )


def run_bench(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    progress = sys.stderr if sys.stderr.isatty() and not args.no_progress else None
    result = asyncio.run(bench(spec, progress=progress))
    if args.json:
        print(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_result(result))
    return 1 if result.errors or result.completed < result.streams else 0


async def bench(spec: BenchSpec, *, progress: TextIO | None = None) -> BenchResult:
    """Run ``spec`` against the server and summarise, with the server's own figures."""
    async with aiohttp.ClientSession() as http:
        before = await scrape_process(http, spec.url)
        rec = Recorder(expected=spec.streams)
        peak: dict[str, float] = {}

        async def on_started() -> None:
            peak.update(await scrape_process(http, spec.url))

        ticker = asyncio.create_task(_progress(rec, spec, progress)) if progress else None
        began = time.perf_counter()
        try:
            await run_load(spec, rec, on_started=on_started)
        finally:
            elapsed = time.perf_counter() - began
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
                progress.write("\n")  # type: ignore[union-attr]
        after = await scrape_process(http, spec.url)
    result = BenchResult.from_recorder(spec, rec, elapsed)
    result.hints = explain_refusals(result, rec.server_limits)
    cpu = "process_cpu_seconds_total"
    if cpu in before and cpu in after:
        result.server_cpu_s = round(after[cpu] - before[cpu], 3)
        if rec.chunks:
            result.server_cpu_per_1m_chunks_s = round(result.server_cpu_s / rec.chunks * 1e6, 2)
    rss = "process_resident_memory_bytes"
    result.server_rss_bytes = max(peak.get(rss, 0.0), after.get(rss, 0.0)) or None
    return result


def explain_refusals(result: BenchResult, limits: dict[str, Any]) -> list[str]:
    """Why starts were refused and what to change: the server's per-client start rate.

    A load generator is one client address, so the shipped ``rate_limits`` (meant for one
    browser) refuse most of a burst of starts.
    """
    refused = result.errors.get("rate_limited", 0) + result.errors.get("http_429", 0)
    if not refused:
        return []
    rate, burst = limits.get("starts_per_s"), limits.get("start_burst")
    allowed = (
        f"{rate:g} starts/s per client address (burst {burst})"
        if rate and burst is not None
        else "a limited rate of session starts per client address"
    )
    ramp = (
        f"--ramp {math.ceil(max(result.streams - burst, 0) / rate * 1.1)}"
        if rate and burst is not None
        else "--ramp SECONDS"
    )
    return [
        f"{refused} of {result.streams} starts were refused (rate_limited): the server allows "
        f"{allowed}.",
        "Raise rate_limits.starts_per_s and rate_limits.start_burst in the server's config "
        f"(bench/bench.yaml lifts them), or spread the starts over time with {ramp}.",
    ]


async def scrape_process(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """``process_*`` samples of the server's /metrics; empty when it has none."""
    try:
        async with http.get(url + "/metrics") as response:
            if response.status != 200:
                return {}
            text = await response.text()
    except aiohttp.ClientError:
        return {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("process_"):
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


async def _progress(rec: Recorder, spec: BenchSpec, out: TextIO) -> None:
    """One line, rewritten in place twice a second."""
    last_events, last_t = 0, time.perf_counter()
    while True:
        await asyncio.sleep(0.5)
        now = time.perf_counter()
        rate = (rec.events - last_events) / (now - last_t)
        last_events, last_t = rec.events, now
        errors = sum(rec.errors.values())
        out.write(
            f"\r{now - rec.began:6.1f}s  started {rec.first_chunks}/{spec.streams}  "
            f"ended {rec.done}/{spec.streams}  events {rec.events}  {rate:,.0f}/s  "
            f"errors {errors}   "
        )
        out.flush()


def format_result(r: BenchResult) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    lines = [
        f"mode            {r.mode}, {r.streams} streams, {r.completed} ended {r.reasons}",
        f"events          {r.events} ({r.chunks} chunks) in {r.elapsed_s:.2f} s: "
        f"{r.events_per_s:,.0f} events/s",
        f"first chunk     p50 {ms(r.ttfc_p50_ms)}  p99 {ms(r.ttfc_p99_ms)}",
        f"stream time     p50 {ms(r.stream_p50_ms)}  p99 {ms(r.stream_p99_ms)}",
        f"cancel->end     p50 {ms(r.cancel_p50_ms)}  p99 {ms(r.cancel_p99_ms)}",
        f"errors          {r.errors or 'none'}",
    ]
    if r.server_cpu_s is not None:
        per = r.server_cpu_per_1m_chunks_s
        lines.append(f"server CPU      {r.server_cpu_s:.2f} s ({per} s per 1M chunks)")
    if r.server_rss_bytes:
        lines.append(f"server RSS      {r.server_rss_bytes / 2**20:.1f} MiB (peak sampled)")
    lines.extend(r.hints)
    return "\n".join(lines)
