"""Headless Chromium driven over the DevTools protocol, for tests that click through a page.

One browser per :func:`browser` block (Debian's ``chromium``, as the status page test uses),
one tab, driven with ``Page.navigate`` and ``Runtime.evaluate`` over aiohttp's WebSocket client:
no extra dependency. Waits poll a JavaScript condition with a deadline that only bounds the
wait (a loaded machine is slow, not wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

__all__ = ["HEADLESS_FLAGS", "Tab", "browser"]

HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Chromium without a display, a sandbox (root in CI containers) or calls home."""
_FLAGS = (*HEADLESS_FLAGS, "--remote-debugging-port=0", "--window-size=1280,2000")


class Tab:
    """One page of the browser."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command; its ``result``."""
        self._next += 1
        ident = self._next
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self._ws.receive_json(timeout=120)
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        """Load ``url`` (returns once the navigation started; wait for what you need)."""
        await self.call("Page.navigate", url=url)

    async def wait_for(self, condition: str, *, timeout_s: float = 120) -> None:
        """Poll the JavaScript ``condition`` until it is true.

        Raises:
            AssertionError: it stayed false for ``timeout_s`` (a bound, not a timing check).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(AssertionError):
                if await self.evaluate(f"Boolean({condition})"):
                    return
            assert time.monotonic() < deadline, f"still false after {timeout_s:.0f} s: {condition}"
            await asyncio.sleep(0.2)

    async def html(self) -> str:
        """The page's DOM as HTML now (as ``chromium --dump-dom`` would print it)."""
        value = await self.evaluate("document.documentElement.outerHTML")
        return str(value)


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Tab]:
    """A headless Chromium with one tab; the browser is stopped (by its pid) when the block ends."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="maxlake-cdp-")
    try:
        proc = await asyncio.create_subprocess_exec(
            chromium,
            *_FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        try:
            port = await _devtools_port(Path(profile), proc)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = json.loads(await response.text())
                page = next(t for t in targets if t["type"] == "page")
                async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    yield Tab(ws)
        finally:
            proc.terminate()
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                async with asyncio.timeout(15):
                    await proc.wait()
    finally:
        await _remove_profile(Path(profile))


async def _remove_profile(profile: Path) -> None:
    """Remove the profile; Chromium's helper processes may still write to it for a moment after
    the browser exited ('Directory not empty' failed a passing test once in four runs)."""
    for _ in range(20):
        try:
            await asyncio.to_thread(shutil.rmtree, profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            await asyncio.sleep(0.25)
    await asyncio.to_thread(shutil.rmtree, profile, True)


async def _devtools_port(profile: Path, proc: asyncio.subprocess.Process) -> int:
    """The port Chromium chose, from ``DevToolsActivePort`` in its profile (waits up to 90 s)."""
    deadline = time.monotonic() + 90
    marker = profile / "DevToolsActivePort"
    while True:
        if await asyncio.to_thread(marker.exists):
            first = (await asyncio.to_thread(marker.read_text)).splitlines()[:1]
            if first and first[0].isdigit():
                return int(first[0])
        assert proc.returncode is None, f"chromium exited with {proc.returncode}"
        assert time.monotonic() < deadline, "chromium opened no DevTools port within 90 s"
        await asyncio.sleep(0.1)
