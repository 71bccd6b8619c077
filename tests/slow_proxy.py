"""A TCP proxy on loopback that delays every chunk a client sends by a fixed latency.

Put in front of the S3 server (moto, :mod:`infra.s3`) it makes a slow object store: each HTTP
request reaches the server ``delay_ms`` later (a far region, a throttled bucket), responses are
not delayed, and requests on one connection keep their order. Bytes are never changed.

``python -m tests.slow_proxy LISTEN_PORT TARGET_PORT DELAY_MS`` runs it in the foreground;
:class:`SlowProxy` runs it in a child process (so a busy test process does not add latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from types import TracebackType

from infra.broker import free_port
from maxlake.processes import stop_process

__all__ = ["SlowProxy"]


class SlowProxy:
    """``127.0.0.1:<port>`` forwarding to ``127.0.0.1:<target_port>``; requests come
    ``delay_ms`` late."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.target_port = target_port
        self.delay_ms = delay_ms
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> SlowProxy:
        """Start the proxy and wait until it accepts connections (at most 30 s)."""
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.slow_proxy",
                str(self.port),
                str(self.target_port),
                str(self.delay_ms),
            ]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"slow proxy on port {self.port} did not start in 30 s")

    def stop(self) -> None:
        """Stop the proxy; open connections are cut."""
        if self._process is None:
            return
        stop_process(self._process)
        self._process = None

    def __enter__(self) -> SlowProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay_s`` after it arrived, in order."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(forward())
    try:
        while data := await reader.read(1 << 16):
            chunks.put_nowait((loop.time() + delay_s, data))
        chunks.put_nowait((0.0, b""))
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _serve(port: int, target_port: int, delay_s: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pipe(client_r, server_w, delay_s),
            _pipe(server_r, client_w, 0.0),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve until terminated (see the module docstring for the arguments)."""
    port, target_port, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    asyncio.run(_serve(port, target_port, delay_ms / 1000))


if __name__ == "__main__":
    main()
