"""Broker bookkeeping that needs no JVM: stale pid files and missing jars."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.broker import LocalBroker
from infra.errors import BrokerJarsMissing, BrokerNotRunning


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_pid_file_is_removed_and_ignored(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=1, controller_port=2)
    pid_file = tmp_path / "broker.pid"
    pid_file.write_text(f"{_dead_pid()}\n")
    assert broker.pid() is None
    assert not pid_file.exists()
    with pytest.raises(BrokerNotRunning, match="no broker is running"):
        broker.stop()


def test_start_without_jars_says_how_to_fetch_them(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "home", libs_dir=tmp_path / "empty")
    with pytest.raises(BrokerJarsMissing, match="make broker-jars"):
        broker.start()
