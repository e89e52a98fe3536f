"""Measure cancel -> upstream disconnect latency per provider and cancel path.

    .venv/bin/python -m tests.providers.measure_cancel [rounds]

Runs a real tokenmux server and the local upstream in one event loop (so both read the
same clock), streams one chunk, cancels, and takes the time from just before the cancel is
sent to the moment the upstream's handler saw the client go. Prints median, p95 and max
in milliseconds; docs/providers.md quotes a run of this.
"""

from __future__ import annotations

import asyncio
import statistics
import sys

from server.app import start_server
from server.config import config_from_mapping
from tests.conftest import TEST_CONFIG, merge
from tests.providers.conftest import KINDS, entry
from tests.providers.test_cancel_functional import cancel_over_sse, cancel_over_websocket
from tests.providers.upstream import Reply, start_upstream

HOW = ("ws-cancel", "ws-close", "sse-disconnect")


async def measure(rounds: int) -> None:
    upstream, runner = await start_upstream()
    providers = {kind: entry(kind, upstream, kind) for kind in KINDS}
    print(f"{'provider':10} {'path':15} {'median':>7} {'p95':>7} {'max':>7}  (ms, n={rounds})")
    for kind in KINDS:
        config = config_from_mapping(
            merge(TEST_CONFIG, {"providers": {"p": providers[kind]}}), environ={}
        )
        server = await start_server(config)
        for how in HOW:
            samples = []
            for _ in range(rounds):
                upstream.plan(kind, Reply(hang_after=1))
                if how == "sse-disconnect":
                    cancelled_at = await cancel_over_sse(server)
                else:
                    cancelled_at = await cancel_over_websocket(server, how == "ws-close")
                record = upstream.requests(kind)[-1]
                async with asyncio.timeout(5):
                    await record.disconnected.wait()
                assert record.disconnected_at is not None
                samples.append((record.disconnected_at - cancelled_at) * 1000)
            samples.sort()
            p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
            median = statistics.median(samples)
            print(f"{kind:10} {how:15} {median:7.2f} {p95:7.2f} {samples[-1]:7.2f}")
        await server.aclose()
        upstream.records.clear()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
