"""``Client.watch`` against the real server: one more reader, nothing taken over."""

from __future__ import annotations

import asyncio

import pytest

from server.app import RunningServer
from tests.client.test_client_functional import check_life, collect
from tests.transports.test_resume_functional import expected_text
from tokenmux import AuthError, Client, Event, StreamEnd
from tokenmux.sync import Client as SyncClient

PARAMS = {"max_tokens": 40, "tokens_per_second": 200}


async def test_two_readers_and_the_owner_see_the_same_events(server: RunningServer) -> None:
    async with Client(server.url) as owner, Client(server.url) as reader:
        session = await owner.start(prompt="shared", params=PARAMS)
        token = session.resume_token
        assert token is not None
        with pytest.raises(AuthError):
            await reader.watch(session.id, token=token[:-2] + "xx")
        watched = await reader.watch(session.id, token=token)
        from_start = reader_from(server, session.id, token)
        mine, theirs, all_of_it = await asyncio.gather(
            collect(session), collect(watched), from_start
        )
    assert check_life(mine).reason == "complete"  # the owner kept its session
    assert check_life(all_of_it) and all_of_it == mine
    assert theirs == mine[-len(theirs) :]
    assert watched.content == session.content == await expected_text(server, "shared", PARAMS)


async def reader_from(server: RunningServer, session_id: str, token: str) -> list[Event]:
    async with Client(server.url) as other:
        return await collect(await other.watch(session_id, token=token, after_seq=-1))


async def test_closing_a_reader_leaves_the_session_and_a_reader_may_cancel(
    server: RunningServer,
) -> None:
    slow = {"max_tokens": 2000, "tokens_per_second": 50}
    async with Client(server.url) as owner:
        session = await owner.start(prompt="long", params=slow)
        assert session.resume_token is not None
        leaving = Client(server.url)
        await leaving.watch(session.id, token=session.resume_token)
        await leaving.close()  # does not cancel someone else's session
        await asyncio.sleep(0.2)
        assert not session.ended
        async with Client(server.url) as reader:
            watched = await reader.watch(session.id, token=session.resume_token)
            end = await watched.cancel()
        assert isinstance(end, StreamEnd) and end.reason == "cancelled"
        assert (await session.result()).reason == "cancelled"


async def test_the_sync_client_watches(server: RunningServer) -> None:
    def script() -> None:
        with SyncClient(server.url) as owner, SyncClient(server.url) as reader:
            session = owner.start("sync", params=PARAMS)
            assert session.resume_token is not None
            watched = reader.watch(session.id, token=session.resume_token)
            assert watched.text() == session.text()

    await asyncio.to_thread(script)
