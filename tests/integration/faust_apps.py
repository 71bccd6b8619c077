"""Running a throwaway Faust app inside a test."""

from __future__ import annotations

import asyncio

import faust


def run_until(app: faust.App, done: asyncio.Event, *, timeout_s: float = 60.0) -> None:
    """Start ``app``, wait until ``done`` is set (at most ``timeout_s``), then stop it."""

    async def run() -> None:
        worker = asyncio.ensure_future(app.start())
        try:
            async with asyncio.timeout(timeout_s):
                await done.wait()
        finally:
            await app.stop()
            worker.cancel()

    asyncio.run(run())
