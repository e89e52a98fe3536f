"""Soak: many WebSocket peers that never read, against a real server process.

    .venv/bin/python scripts/soak_slow_consumers.py --peers 50 --rounds 3

Each round opens ``--peers`` raw connections with a tiny receive window, starts sessions that
stream as fast as they can, and never reads. It samples the server's RSS and open file
descriptors while the server cuts them off (send deadline / outbox cap) and prints, per
round: peak RSS growth per stalled peer, how long until every peer was closed, and whether
descriptors returned to the baseline. A canary session on a reading connection must finish
whole every round. Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._client import WsClient, check_session
from tests._rawws import RawWebSocket

CONFIG = """
server: {drain_s: 0}
limits: {send_timeout_s: %(deadline)s, max_connections_per_client: 10000}
rate_limits: {starts_per_s: 100000, start_burst: 100000}
resume: {enabled: %(resume)s, buffer_events: %(buffer)s}
providers:
  sim: {type: sim, params: {tokens_per_second: 0}}
"""


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def start_server(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        "--port",
        "0",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    while True:
        line = (await process.stdout.readline()).decode()
        if not line:
            raise SystemExit("server exited")
        if found := re.search(r"listening on (http://\S+)", line):
            asyncio.get_running_loop().create_task(process.stdout.read())  # drain logs
            return process, found.group(1)


async def one_round(pid: int, url: str, args: argparse.Namespace) -> dict[str, float]:
    peers = args.peers
    baseline_rss, baseline_fds = rss_kib(pid), fds(pid)
    canary = await WsClient.connect(url)
    await canary.receive()
    await canary.start("canary", params={"max_tokens": 200, "tokens_per_second": 100})
    stalled = [await RawWebSocket.connect(url) for _ in range(peers)]
    for peer in stalled:
        for i in range(args.sessions):
            params = {"max_tokens": 1_000_000, "tokens_per_second": args.rate}
            start = {"type": "start", "session": f"s{i}", "data": {"prompt": "x", "params": params}}
            await peer.send_text(json.dumps(start))
    began, peak = time.monotonic(), baseline_rss
    while fds(pid) > baseline_fds + 1 and time.monotonic() - began < 120:  # +1: the canary
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.05)
    closed_after = time.monotonic() - began
    await canary.until_ended({"canary"})
    assert check_session(canary.events["canary"])["reason"] == "complete"
    await canary.close()
    for peer in stalled:
        peer.abort()
    await asyncio.sleep(0.5)
    return {
        "peak_rss_growth_kib_per_peer": (peak - baseline_rss) / peers,
        "all_closed_after_s": closed_after,
        "fds_back_to_baseline": float(fds(pid) <= baseline_fds),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=2.0, help="limits.send_timeout_s")
    parser.add_argument("--sessions", type=int, default=4, help="sessions per stalled peer")
    parser.add_argument("--rate", type=float, default=0, help="tokens/s per session; 0: flat out")
    parser.add_argument("--no-resume", action="store_true", help="resume.enabled: false")
    parser.add_argument("--buffer-events", type=int, default=256, help="resume.buffer_events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            CONFIG
            % {
                "deadline": args.deadline,
                "resume": str(not args.no_resume).lower(),
                "buffer": args.buffer_events,
            }
        )
        process, url = await start_server(config)
        try:
            results = [await one_round(process.pid, url, args) for _ in range(args.rounds)]
        finally:
            process.terminate()
            await process.wait()
    for i, result in enumerate(results, 1):
        print(f"round {i}: " + ", ".join(f"{k}={v:.1f}" for k, v in result.items()))
    for key in results[0]:
        print(f"median {key}: {statistics.median(r[key] for r in results):.1f}")


if __name__ == "__main__":
    asyncio.run(main())
