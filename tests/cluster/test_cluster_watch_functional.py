"""Readers on other nodes (PROTOCOL.md §12): watch on node B a session running on node A."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests._client import WsClient, check_session
from tests._sse import parse_eventsource
from tests.cluster.test_cluster_functional import Cluster, start_detached

SLOW = {"max_tokens": 40, "tokens_per_second": 40}


def watch(sid: str, token: str, after_seq: int = -1) -> dict[str, Any]:
    data = {"resume_token": token, "after_seq": after_seq}
    return {"type": "watch", "session": sid, "data": data}


async def test_readers_on_another_node_see_what_the_owner_sees(cluster: Cluster) -> None:
    a, b = await cluster(), await cluster()
    owner, token = await start_detached(a, "w", params=SLOW)
    reader = await WsClient.connect(b.url)
    await reader.receive()
    await reader.send(watch("w", token))
    url = f"{b.url}/api/sessions/w/events?resume_token={token}&watch=1"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        async with asyncio.timeout(20):
            eventsource = parse_eventsource(await response.read())
            await owner.until_ended({"w"})  # the owner kept its session: no takeover
            await reader.until_ended({"w"})
    assert check_session(owner.events["w"])["reason"] == "complete"
    assert reader.events["w"] == owner.events["w"]
    assert eventsource == owner.events["w"]
    assert "resumed on another node" not in "\n".join(a.output.lines)
    await owner.close()
    await reader.close()


async def test_a_reader_on_another_node_cancels_for_everyone(cluster: Cluster) -> None:
    a, b = await cluster(), await cluster()
    owner, token = await start_detached(
        a, "c", params={"max_tokens": 4000, "tokens_per_second": 40}
    )
    reader = await WsClient.connect(b.url)
    await reader.receive()
    await reader.send(watch("c", token, after_seq=0))
    await reader.receive_until(lambda e: e.get("session") == "c")
    await reader.cancel("c")
    async with asyncio.timeout(10):
        await owner.until_ended({"c"})
        await reader.until_ended({"c"})
    assert owner.events["c"][-1]["data"]["reason"] == "cancelled"
    assert reader.events["c"] == owner.events["c"][1:]
    await owner.close()
    await reader.close()
