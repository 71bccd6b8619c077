"""stop_process: SIGTERM, a bounded wait, SIGKILL; real child processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from maxlake.processes import stop_process

_IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _child(code: str, **kwargs: object) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc  # type: ignore[no-any-return]


def test_a_child_that_stops_on_sigterm_gives_its_exit_code() -> None:
    proc = _child("import time; print('ready', flush=True); time.sleep(60)")
    assert stop_process(proc, timeout_s=10) == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    proc = _child(_IGNORES_SIGTERM)
    started = time.monotonic()
    assert stop_process(proc, timeout_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 30


def test_an_exited_child_is_not_signalled_again() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(timeout=30)
    assert stop_process(proc) == 3


def test_group_stops_the_children_of_the_child_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        f"g = subprocess.Popen([sys.executable, '-c', {_IGNORES_SIGTERM!r}])\n"
        f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
        "print('ready', flush=True)\n"
        "g.wait()\n"
    )
    proc = _child(code, start_new_session=True)
    grandchild = int(pid_file.read_text())
    assert stop_process(proc, timeout_s=1.0, group=True) is not None
    deadline = time.monotonic() + 10
    while not _gone(grandchild):
        assert time.monotonic() < deadline, "the grandchild survived"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Exited: no longer listed, or a zombie (its parent is gone; init reaps it later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(") ", 1)[1].startswith("Z")
