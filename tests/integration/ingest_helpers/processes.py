"""Real worker processes and waits on their progress.

:class:`WorkerProcess` runs ``python -m maxlake.cli worker`` in its own process group (so kill -9
takes Faust's children too) with its log in a file; :func:`wait_for_lag_zero` and
:func:`wait_for_new_commits` wait on the group's committed offsets, as Kafka reports them.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType

from maxlake.processes import stop_process
from streams.offsets import PartitionOffsets
from tests.integration.ingest_helpers.env import IngestEnv

__all__ = [
    "WorkerProcess",
    "committed_total",
    "lag_summary",
    "run_cli",
    "wait_for_lag_zero",
    "wait_for_new_commits",
    "workers",
]

_INGESTED = re.compile(r"batch: [1-9][\d,]* events consumed")


_READY = re.compile(r"\[\^\w*Worker\]: Ready")


_ASSIGNED = re.compile(r"engine: [1-9]\d* partition\(s\) assigned")


class WorkerProcess:
    """``python -m maxlake.cli worker`` in its own process group; logs to a file."""

    def __init__(self, env: IngestEnv, name: str) -> None:
        self.env = env
        self.name = name
        self.log_path = env.work / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> WorkerProcess:
        """Launch the worker (again, after a kill); returns immediately."""
        assert self.proc is None or self.proc.poll() is not None, "worker already running"
        cmd = [sys.executable, "-m", "maxlake.cli", "worker", "--loglevel", "info"]
        for tenant in self.env.tenants if self.env.pin_tenants else ():
            cmd += ["--tenant", tenant]
        cmd += self.env.worker_args
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} at {time.time():.3f} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                env=self.env.environ(self.name),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until the current start reports Faust's ``Worker: Ready`` (signals handled)."""
        self._wait_for(_READY, timeout_s, "not ready")

    def wait_assigned(self, timeout_s: float = 120.0) -> None:
        """Wait until the current start holds partitions (its engine logged an assignment).

        Faust's ``Ready`` comes before the worker joins the group (it builds its pipeline
        first, 10-25 s on a loaded machine): input sent between the two goes to the others.
        """
        self._wait_for(_ASSIGNED, timeout_s, "holds no partition")

    def _wait_for(self, pattern: re.Pattern[str], timeout_s: float, failure: str) -> None:
        marker = f"===== start {self.starts} "
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log_text()
            if pattern.search(text[text.rfind(marker) :]):
                return
            if not self.alive:
                raise AssertionError(f"worker {self.name} died:\n{self.log_tail()}")
            time.sleep(0.2)
        raise AssertionError(
            f"worker {self.name} {failure} after {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def wait_until_ingested(self, timeout_s: float = 60.0) -> None:
        """Wait until the current start has written a batch with new offsets."""
        self._wait_for(_INGESTED, timeout_s, "wrote nothing new")

    def wait_for_log(self, text: str, timeout_s: float = 60.0) -> None:
        """Wait until the current start's log contains ``text``."""
        self._wait_for(re.compile(re.escape(text)), timeout_s, f"logged no {text!r}")

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the worker's whole process group, no goodbye; waits until it is gone."""
        if self.proc is not None:
            stop_process(self.proc, group=True, sig=signal.SIGKILL)

    def terminate(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code (None: no start)."""
        if self.proc is None:
            return None
        return stop_process(self.proc, timeout_s=timeout_s, group=True)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the worker's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        """The whole log of every start."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.alive:
            self.kill9()


@contextlib.contextmanager
def workers(env: IngestEnv, *names: str) -> Iterator[list[WorkerProcess]]:
    """Started workers that are killed (process group) however the test ends."""
    procs = [WorkerProcess(env, n) for n in names]
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            if proc.alive:
                proc.kill9()


def run_cli(
    env: IngestEnv, *args: str, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``python -m maxlake.cli <args>`` with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "maxlake.cli", *args],
        env=env.environ("cli"),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def lag_summary(parts: Iterable[PartitionOffsets]) -> str:
    """One line per partition that still lags."""
    lines = [
        f"  {p.topic}[{p.partition}] end {p.end} committed {p.committed} lag {p.lag}"
        for p in parts
        if p.lag
    ]
    return "\n".join(lines) or "  (no lag)"


def wait_for_lag_zero(
    env: IngestEnv,
    procs: Sequence[WorkerProcess],
    *,
    produced: int,
    timeout_s: float = 120.0,
    require_alive: bool = True,
) -> list[PartitionOffsets]:
    """Wait until the group has committed every offset of its topics (``produced`` in all).

    Fails with the lagging partitions and the workers' log tails when ``timeout_s`` passes, or
    at once when a worker that should be running has died.
    """
    deadline = time.monotonic() + timeout_s
    parts: list[PartitionOffsets] = []
    while time.monotonic() < deadline:
        dead = [p for p in procs if not p.alive]
        if require_alive and dead:
            raise AssertionError(
                f"worker {dead[0].name} died (exit {dead[0].proc and dead[0].proc.returncode})"
                f" while draining:\n{dead[0].log_tail()}"
            )
        parts = env.offsets()
        end = sum(p.end for p in parts)
        if end >= produced and all(p.lag == 0 for p in parts):
            return parts
        time.sleep(0.5)
    logs = "\n".join(f"--- worker {p.name} ---\n{p.log_tail()}" for p in procs)
    raise AssertionError(
        f"group {env.group_id} still lags after {timeout_s:.0f} s "
        f"({sum(p.lag for p in parts)} of {produced} messages uncommitted):\n"
        f"{lag_summary(parts)}\n{logs}"
    )


def committed_total(env: IngestEnv) -> int:
    """Offsets the group has committed, over every partition of the test's topics."""
    return sum((p.committed or p.start) - p.start for p in env.offsets())


def wait_for_new_commits(
    env: IngestEnv, proc: WorkerProcess, *, beyond: int, timeout_s: float = 90.0
) -> int:
    """Wait until the group committed more than ``beyond`` offsets; returns the new total."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = committed_total(env)
        if done > beyond:
            return done
        if not proc.alive:
            raise AssertionError(f"worker {proc.name} died:\n{proc.log_tail()}")
        time.sleep(0.1)
    raise AssertionError(f"no commit beyond {beyond} after {timeout_s:.0f} s:\n{proc.log_tail()}")
