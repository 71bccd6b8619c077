"""Broker bookkeeping that needs no JVM: stale pid files and missing jars."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import pytest

from infra import broker as broker_module
from infra.broker import LocalBroker
from infra.errors import BrokerJarsMissing, BrokerNotRunning, BrokerStartFailed


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


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads a leading '-' as an option and refuses to format the broker."""
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(bytes=b"\x00" * 16)
    draws = iter([dash_first, dash_first, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(dash_first.bytes).decode().startswith("-")
    cluster_id = broker_module._kafka_uuid()
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA"


def test_a_home_is_formatted_once_its_storage_has_meta_properties(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=1, controller_port=2)
    assert not broker.formatted()
    broker._data_dir.mkdir(parents=True)
    (broker._data_dir / "meta.properties").write_text("version=1\n")
    assert broker.formatted()


def test_a_start_that_times_out_says_how_to_wait_longer(tmp_path: Path) -> None:
    """Under load a JVM broker can take longer than the default wait: the error names the
    option and the setting that give it more time."""
    broker = LocalBroker(tmp_path, port=1, controller_port=2)
    silent = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(BrokerStartFailed) as failed:
            broker._wait_until_answering(silent, 0.3, None)
    finally:
        silent.kill()
        silent.wait()
    message = str(failed.value)
    assert "within 0 s" in message
    assert "--timeout SECONDS" in message
    assert "MAXLAKE_BROKER_START_TIMEOUT_S" in message
