"""A real S3-compatible HTTP server on loopback for tests and benchmarks, without Docker.

It is moto's S3 server (from the ``dev`` extra) in a child process (:mod:`infra._moto_server`):
plain HTTP on 127.0.0.1, any credentials accepted, buckets created by an unsigned ``PUT``. moto
honours ``If-None-Match: *`` and ``If-Match`` on ``PutObject`` (conditional writes), which is what
delta-rs relies on for concurrent commits to S3; requests are served one at a time so that those
checks are atomic, as on AWS S3. Data is kept in the server's memory and lost when it stops.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import TracebackType

from infra.broker import free_port
from infra.errors import S3ServerFailed
from maxlake.processes import stop_process

__all__ = ["LocalS3"]

_START_TIMEOUT_S = 60.0


class LocalS3:
    """A moto S3 server on ``127.0.0.1:<port>``; use as a context manager or start/stop."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalS3:
        """Start the server and wait until it answers.

        Raises:
            S3ServerFailed: moto is not installed, or the server did not answer within 60 s.
        """
        try:
            import moto.server  # noqa: F401, PLC0415 - moto is a dev-only dependency
        except ImportError as exc:
            raise S3ServerFailed(
                "moto is not installed: pip install -e '.[dev]' (it brings moto[server])"
            ) from exc
        self._process = subprocess.Popen(
            [sys.executable, "-m", "infra._moto_server", "127.0.0.1", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise S3ServerFailed(f"moto server exited with code {self._process.returncode}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                return self
            time.sleep(0.1)
        self.stop()
        raise S3ServerFailed(f"moto server on port {self.port} did not answer in 60 s")

    def stop(self) -> None:
        """Stop the server (its data is gone)."""
        if self._process is None:
            return
        stop_process(self._process)
        self._process = None

    def create_bucket(self, bucket: str) -> str:
        """Create ``bucket``; returns ``s3://<bucket>``."""
        request = urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
        return f"s3://{bucket}"

    def storage_options(self) -> dict[str, str]:
        """delta-rs storage options that reach this server (``MAXLAKE_LAKE_STORAGE_OPTIONS``)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "maxlake-test",
            "AWS_SECRET_ACCESS_KEY": "maxlake-test-secret",
            "AWS_ALLOW_HTTP": "true",
        }

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
