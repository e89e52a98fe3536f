"""examples/express_app: the JS client in Node relaying a tokenmux session as Express SSE."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.examples.conftest import ROOT, Backend, check_example, run_app

APP = ROOT / "examples" / "express_app"
NODE = shutil.which("node")
if NODE is None or not (APP / "node_modules" / "express").is_dir():
    if os.environ.get("CI"):
        raise RuntimeError("examples/express_app needs node and `npm ci` (make test does it)")
    pytest.skip("node or examples/express_app/node_modules missing", allow_module_level=True)


async def test_express_example_relays_text_cancel_and_errors(backend: Backend) -> None:
    assert NODE is not None
    env = {"TOKENMUX_URL": backend.server.url, "PORT": "0"}
    async with run_app([NODE, "server.js"], cwd=APP, env=env) as url:
        await check_example(url, backend.upstream)
