"""examples/django_app: an async Django view streaming a tokenmux session as its own SSE."""

from __future__ import annotations

from tests.examples.conftest import Backend, check_example, run_app, uvicorn


async def test_django_example_relays_text_cancel_and_errors(backend: Backend) -> None:
    argv, env = uvicorn("examples.django_app.app:application", backend, "--lifespan", "off")
    async with run_app(argv, env=env) as url:
        await check_example(url, backend.upstream)
