"""The browser pages and the client library they import, served by the real server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from server.app import RunningServer
from server.config import Config
from server.transports.pages import CLIENT_DIR_ENV, find_client_dir


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/", "text/html", "dashboard.js"),
        ("/chat", "text/html", 'id="conversation"'),
        ("/static/app.css", "text/css", ".cursor"),
        ("/client/index.js", "javascript", "TokenmuxClient"),
        ("/client/msgpack.js", "javascript", "export function decode"),
    ],
)
async def test_pages_and_library_are_served(
    server: RunningServer, path: str, content_type: str, marker: str
) -> None:
    """Each page and module answers 200 with its content type."""
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as response:
        assert response.status == 200
        assert content_type in response.headers["Content-Type"]
        assert marker in await response.text()


async def test_nothing_outside_the_library_is_served(server: RunningServer) -> None:
    """/client/ does not reach outside client_js/src."""
    async with aiohttp.ClientSession() as http:
        for path in ("/client/../package.json", "/client/%2e%2e/package.json", "/static/.x"):
            async with http.get(server.url + path) as response:
                assert response.status == 404, path
        async with http.get(server.url + "/client/nope.js") as response:
            assert response.status == 404


async def test_a_missing_library_says_what_to_set(
    start: Callable[[Config], Awaitable[RunningServer]],
    make_config: Callable[..., Config],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed without client_js/src, /client/ explains itself; the pages still load."""
    monkeypatch.setenv(CLIENT_DIR_ENV, str(tmp_path / "absent"))
    server = await start(make_config())
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/client/index.js") as response:
            assert response.status == 404
            assert CLIENT_DIR_ENV in await response.text()
        async with http.get(server.url + "/chat") as response:
            assert response.status == 200


def test_client_dir_is_found_in_a_checkout_or_from_the_environment(tmp_path: Path) -> None:
    """The checkout's client_js/src by default; $TOKENMUX_CLIENT_DIR when set; None if absent."""
    found = find_client_dir({})
    assert found is not None and (found / "index.js").is_file()
    assert find_client_dir({CLIENT_DIR_ENV: str(tmp_path)}) is None
    (tmp_path / "index.js").write_text("export {};\n")
    assert find_client_dir({CLIENT_DIR_ENV: str(tmp_path)}) == tmp_path
