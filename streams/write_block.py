"""What a worker does when the lake refuses writes: pause, retry the same batch, resume.

A full disk, a read-only mount or lost permissions are not bugs of the batch: the same batch will
go through once the operator fixes the volume. So on a write failure that
:func:`lake.unwritable.unwritable_cause` recognises, :meth:`WriteBlock.retry` pauses consumption
(the caller's ``pause``), logs **one** line naming the cause and the next step (again only when
the cause changes), waits with capped exponential backoff and writes the same batch again; the
first success resumes consumption and logs how long the lake was blocked. Nothing is committed
to Kafka meanwhile, so a worker stopped while blocked (SIGTERM, or a rebalance that takes its
partitions) loses nothing: the waits are cancellable and :meth:`WriteBlock.abandon` makes the
pending retries give up with :class:`WriteAbandoned`.

The same state file carries the partitions paused for a corrupt fetch
(:mod:`streams.batch_corrupt`). The state is visible without writing to the lake: in ``/metrics``
(``maxlake_lake_write_blocked{cause}``, ``maxlake_lake_write_retries_total{cause}``,
``maxlake_lake_write_blocked_since_timestamp_seconds``) and in a small JSON file per worker
under ``<MAXLAKE_FAUST_DATADIR>/workers/``, which ``maxlake status`` on the same host reads
(:func:`read_worker_states`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from lake.unwritable import LakeUnwritable, unwritable_cause, where_unwritable
from maxlake.errors import TerminalError
from streams.errors import StreamsError
from streams.metrics import WorkerMetrics

__all__ = ["WriteAbandoned", "WriteBlock", "read_worker_states", "worker_state_dir"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WriteAbandoned(StreamsError, TerminalError):
    """A blocked batch was given up (shutdown or revoked partitions); it was not committed."""


def worker_state_dir(faust_datadir: Path) -> Path:
    """Where workers using ``faust_datadir`` keep their state files."""
    return faust_datadir / "workers"


class WriteBlock:
    """One worker's lake-write state: backoff, the log line, metrics and the state file.

    Args:
        worker: the worker's name (``host-pid``), the state file's stem.
        state_dir: folder of the state file (see :func:`worker_state_dir`).
        metrics: the worker's metrics, when served.
        initial_s: first wait after a failure, seconds; doubled per failure.
        max_s: longest wait, seconds.
        lake_root: the lake's root (a path or URI), named in the log line with, on a full
            local disk, the free bytes of its volume.
    """

    def __init__(
        self,
        worker: str,
        state_dir: Path,
        *,
        metrics: WorkerMetrics | None = None,
        initial_s: float = 1.0,
        max_s: float = 30.0,
        lake_root: str | None = None,
    ) -> None:
        self.worker = worker
        self.lake_root = lake_root
        self.state_path = state_dir / f"{worker}.json"
        self.metrics = metrics
        self.initial_s = initial_s
        self.max_s = max_s
        self.current: LakeUnwritable | None = None
        self.since: float | None = None
        self.retries = 0
        self.waiting = 0
        self.corrupt: list[dict[str, Any]] = []
        self._next_retry_at: float | None = None
        self._abandon: asyncio.Event | None = None

    @property
    def blocked(self) -> bool:
        """Whether the last write attempt failed for an environmental cause."""
        return self.current is not None

    @property
    def holding(self) -> bool:
        """Whether a refused batch waits for its next attempt. While blocked but holding none
        (a rebalance or shutdown abandoned it), only a new batch can find out whether the lake
        takes writes again: consumption goes on, and that batch is retried and pauses it."""
        return self.waiting > 0

    def abandon(self) -> None:
        """Make every pending and later retry wait give up with :class:`WriteAbandoned`."""
        self._event().set()

    def rearm(self) -> None:
        """Retry again after :meth:`abandon` (new partitions were assigned)."""
        self._event().clear()

    async def retry(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        pause: Callable[[], int],
        resume: Callable[[], None],
    ) -> T:
        """Run ``attempt`` until it succeeds; waits out failures :func:`unwritable_cause` knows.

        Args:
            attempt: writes the batch (idempotent: the lake skips offsets it already holds).
            pause: stops fetching; returns how many partitions it paused.
            resume: fetches again.

        Raises:
            WriteAbandoned: :meth:`abandon` was called while the lake was blocked.
            Exception: whatever ``attempt`` raised when it is not an unwritable lake.
        """
        failures = 0
        self.waiting += 1
        try:
            while True:
                try:
                    result = await attempt()
                except Exception as exc:
                    cause = unwritable_cause(exc)
                    if cause is None:
                        raise
                    if self._event().is_set():
                        raise WriteAbandoned(f"batch not written: {cause.detail}") from None
                    delay = min(self.initial_s * 2**failures, self.max_s)
                    failures += 1
                    self._failed(cause, pause(), delay)
                    await self._wait(delay)
                    continue
                if self.current is not None:
                    self._recovered()
                    resume()
                return result
        finally:
            self.waiting -= 1

    def close(self) -> None:
        """Remove the state file (clean shutdown)."""
        with contextlib.suppress(OSError):
            self.state_path.unlink()

    def _event(self) -> asyncio.Event:
        if self._abandon is None:
            self._abandon = asyncio.Event()
        return self._abandon

    async def _wait(self, delay: float) -> None:
        abandon = self._event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await abandon.wait()
        if abandon.is_set():
            raise WriteAbandoned("batch not written: the worker is stopping or lost its partitions")

    def _failed(self, cause: LakeUnwritable, paused: int, delay: float) -> None:
        changed = self.current is None or self.current.cause != cause.cause
        if self.current is None:
            self.since = time.time()
        self.current = cause
        self.retries += 1
        if changed:
            logger.error(
                "lake not writable: %s%s (%s); consumption of %d partition(s) paused, nothing "
                "committed to Kafka; retrying the same batch in %.0f s, then with backoff up to "
                "every %.0f s; next step: %s, and the worker resumes by itself",
                cause.cause.replace("_", " "),
                f" {where_unwritable(self.lake_root, cause)}" if self.lake_root else "",
                cause.detail,
                paused,
                delay,
                self.max_s,
                cause.next_step,
            )
        else:
            logger.debug("lake still not writable (%s), retry %d", cause.detail, self.retries)
        if self.metrics is not None:
            self.metrics.set_write_blocked(cause.cause, self.since or time.time())
        self._save(delay)

    def _recovered(self) -> None:
        assert self.current is not None
        blocked_s = time.time() - (self.since or time.time())
        logger.warning(
            "lake writable again after %.0f s blocked (%s, %d failed attempts); batch written, "
            "consumption resumed",
            blocked_s,
            self.current.cause,
            self.retries,
        )
        self.current, self.since, self.retries = None, None, 0
        if self.metrics is not None:
            self.metrics.set_write_blocked(None, 0.0)
        self._save(None)

    def set_corrupt(self, partitions: list[dict[str, Any]]) -> None:
        """Show the partitions paused for a corrupt fetch (:mod:`streams.batch_corrupt`) in
        the state file and metrics."""
        self.corrupt = partitions
        if self.metrics is not None:
            self.metrics.set_fetch_corrupt(partitions)
        self._save(None, keep_retry=True)

    def _save(self, delay: float | None, *, keep_retry: bool = False) -> None:
        if not keep_retry:
            self._next_retry_at = time.time() + delay if delay is not None else None
        cause = self.current
        state: dict[str, Any] = {
            "worker": self.worker,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "updated_at": time.time(),
            "blocked": cause is not None,
            "cause": cause.cause if cause else None,
            "detail": cause.detail if cause else None,
            "next_step": cause.next_step if cause else None,
            "since": self.since,
            "retries": self.retries,
            "next_retry_at": self._next_retry_at,
            "corrupt_partitions": self.corrupt,
        }
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            tmp.replace(self.state_path)
        except OSError as exc:  # the state folder may sit on the same unwritable volume
            logger.debug("worker state file %s not written: %s", self.state_path, exc)


def read_worker_states(state_dir: Path) -> list[dict[str, Any]]:
    """The state of every worker on this host that keeps its state in ``state_dir``.

    Files of processes that are gone (kill -9) are skipped. Returns the files' dicts, sorted
    by worker name; an unreadable file is skipped.
    """
    host = socket.gethostname()
    states: list[dict[str, Any]] = []
    for path in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict) or state.get("host") != host:
            continue
        if not _alive(int(state.get("pid", 0))):
            continue
        states.append(state)
    return states


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
