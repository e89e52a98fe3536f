"""examples/fastapi_app: a FastAPI route relaying a tokenmux session as its own SSE."""

from __future__ import annotations

from tests.examples.conftest import Backend, check_example, run_app, uvicorn


async def test_fastapi_example_relays_text_cancel_and_errors(backend: Backend) -> None:
    argv, env = uvicorn("examples.fastapi_app.app:app", backend)
    async with run_app(argv, env=env) as url:
        await check_example(url, backend.upstream)
