"""Stopping a child process: a polite signal, a bounded wait, then SIGKILL.

One routine for every process maxlake or its tests start and stop (the local S3 server, the
slow S3 proxy of the tests, worker processes of tests, benchmarks and the demo, the dataset
service): each had its own copy of it. The local Kafka broker is stopped by its pid file
(``infra.broker``), not through a :class:`subprocess.Popen`, and keeps its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

__all__ = ["stop_process"]

_KILL_WAIT_S = 30.0
"""How long a process may take to go after SIGKILL (a process stuck in the kernel never does)."""


def stop_process(
    process: subprocess.Popen[Any],
    *,
    timeout_s: float = 10.0,
    group: bool = False,
    sig: signal.Signals = signal.SIGTERM,
) -> int | None:
    """Send ``sig`` to ``process`` unless it has exited, wait up to ``timeout_s`` seconds for
    it, then send SIGKILL and wait again.

    Args:
        process: the child, as :class:`subprocess.Popen` started it.
        timeout_s: seconds granted after ``sig`` before SIGKILL.
        group: signal its whole process group (a child started with
            ``start_new_session=True``, and the processes it started, e.g. Faust's).
        sig: the first signal (SIGKILL for a kill -9 without the wait in between).

    Returns:
        The exit code (negative: the signal that ended it), or None when it was still there
        ``_KILL_WAIT_S`` seconds after SIGKILL.
    """
    if process.poll() is not None:
        return process.returncode
    _send(process, sig, group=group)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _send(process, signal.SIGKILL, group=group)
    try:
        return process.wait(timeout=_KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        return None


def _send(process: subprocess.Popen[Any], sig: signal.Signals, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
