"""A worker whose lake cannot be written pauses, retries, shows why, resumes by itself, stops on
SIGTERM within seconds, and loses nothing — done for real, on a filesystem of its own.

The lake lives on a small tmpfs mounted for the test (tests run as root, which ignores mode bits,
so ``chmod`` proves nothing): ``mount -o remount,ro`` makes it read-only, a filler file fills it.
Both engines. What the lake holds afterwards is checked by ``bench.soak_accounting``, which reads
every Kafka record and the Delta tables directly, not through maxlake's own accounting.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.soak_accounting import audit, read_kafka, read_lake
from infra.broker import free_port
from tests.integration.ingest_helpers import (
    IngestEnv,
    WorkerProcess,
    committed_total,
    keyed_like_original,
    produce,
    simulate,
    wait_for_lag_zero,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANTS = ("circuitry-electronics",)
_BLOCKED = re.compile(r"lake not writable: (.*)")


@dataclass(frozen=True)
class MeteredEnv(IngestEnv):
    """Workers serve /metrics and retry a refused batch at least every 2 s."""

    metrics_port: int = 0

    def environ(self, worker: str) -> dict[str, str]:
        env = super().environ(worker)
        env["MAXLAKE_METRICS_PORT"] = str(self.metrics_port)
        env["MAXLAKE_LAKE_RETRY_MAX_S"] = "2"
        return env


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs at ``tmp_path/lake``, unmounted afterwards."""
    mount = tmp_path / "lake"
    mount.mkdir()
    try:
        _run("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); run as root to test an unwritable lake")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=60)


def _fill(volume: Path) -> Path:
    """Fill the volume to the last byte; returns the filler file."""
    filler = volume / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as out:
        for size in (len(chunk), 4096, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError:
                continue
    return filler


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _sample(text: str, name: str, cause: str) -> float:
    match = re.search(rf'^{name}{{cause="{cause}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else -1.0


def _alerts(env: IngestEnv, worker: str) -> list[dict[str, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "maxlake.cli", "status", "--json"],
        env=env.environ(worker),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    alerts: list[dict[str, str]] = json.loads(done.stdout)["alerts"]
    return alerts


def _wait_blocked(worker: WorkerProcess, timeout_s: float = 600.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _BLOCKED.findall(worker.log_text())
        if found:
            return str(found[0])
        assert worker.alive, worker.log_tail()
        time.sleep(0.5)
    raise AssertionError(f"the worker never reported an unwritable lake:\n{worker.log_tail()}")


def _wait_for_retries(worker: WorkerProcess, port: int, cause: str, at_least: float) -> None:
    """Wait until the worker counted ``at_least`` retries of its refused batch."""
    deadline = time.monotonic() + 120
    while _sample(_metrics(port), "maxlake_lake_write_retries_total", cause) < at_least:
        assert worker.alive, worker.log_tail()
        assert time.monotonic() < deadline, f"fewer than {at_least:.0f} retries in 120 s"
        time.sleep(0.5)


@pytest.mark.parametrize("engine", ["batch", "stream"])
@pytest.mark.parametrize("cause", ["read_only", "disk_full"])
def test_an_unwritable_lake_pauses_the_worker_and_loses_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, volume: Path, engine: str, cause: str
) -> None:
    port = free_port()
    env = MeteredEnv(
        kafka_bootstrap, unique_name, tmp_path, TENANTS, partitions=2, engine=engine,
        metrics_port=port,
    )  # fmt: skip
    env.create_topics()
    events = keyed_like_original(simulate(TENANTS, seed=21, duration_s=900, bad_rate=0.05))
    half = len(events) // 2
    produce(env, events[:half])
    worker = WorkerProcess(env, "w")
    with worker:
        worker.start()
        wait_for_lag_zero(env, [worker], produced=half, timeout_s=600)

        filler = None
        if cause == "read_only":
            _run("mount", "-o", "remount,ro", str(volume))
        else:
            filler = _fill(volume)
        before = committed_total(env)
        produce(env, events[half:])
        line = _wait_blocked(worker)
        assert ("read only" if cause == "read_only" else "disk full") in line, line
        assert "next step:" in line, line
        assert "partition(s) paused" in line, line

        text = _metrics(port)
        assert _sample(text, "maxlake_lake_write_blocked", cause) == 1.0, text
        retries = _sample(text, "maxlake_lake_write_retries_total", cause)
        assert retries >= 1, text
        blocked = [a for a in _alerts(env, "w") if a["alert"] == "lake_write_blocked"]
        assert blocked, "maxlake status shows no lake_write_blocked alert"
        assert cause in blocked[0]["detail"], blocked
        assert "next step" in blocked[0]["detail"], blocked

        _wait_for_retries(worker, port, cause, retries + 2)
        # several retries later: still paused, nothing committed, still alive
        assert worker.alive, worker.log_tail()
        assert committed_total(env) == before
        log = worker.log_text()
        assert len(_BLOCKED.findall(log)) == 1, log[-3000:]
        assert "Traceback" not in log, log[-3000:]

        if cause == "disk_full":
            started = time.monotonic()
            assert worker.terminate(timeout_s=60) == 0, worker.log_tail()
            took = time.monotonic() - started
            print(f"SIGTERM while blocked: the {engine} worker exited in {took:.1f} s")
            assert committed_total(env) == before
            assert filler is not None
            filler.unlink()
            worker.start()
        else:
            _run("mount", "-o", "remount,rw", str(volume))
        wait_for_lag_zero(env, [worker], produced=len(events), timeout_s=600)
        if cause == "read_only":
            assert "lake writable again" in worker.log_text(), worker.log_tail()
            assert _sample(_metrics(port), "maxlake_lake_write_blocked", cause) == 0.0
        assert worker.terminate() == 0, worker.log_tail()

    result = audit(read_kafka(kafka_bootstrap, env.topics()), read_lake(env.lake_root))
    assert result.ok, result.summary()
    assert result.records == len(events)
    # What the operator reads: the volume, and on a full disk how much space is left on it.
    assert f"on {env.lake_root}" in line, line
    if cause == "disk_full":
        assert re.search(r"[\d,]+ bytes free of [\d,]+", line), line


def test_a_full_disk_during_a_rebalance_loses_nothing_and_recovers_in_place(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, volume: Path
) -> None:
    """The lake's disk fills while worker A writes; worker B joins while A holds the refused
    batch, so the rebalance takes A's batch in hand away (abandoned, not committed) and gives
    both workers partitions of which nothing is in hand. Then space returns. Both workers must
    resume by themselves, without a restart: before, A's new partitions stayed paused for good
    (the lake still counted as blocked, and no batch was left to try it again), so their lag
    never drained."""
    env = IngestEnv(
        kafka_bootstrap, unique_name, tmp_path, TENANTS, partitions=4, engine="batch",
        kafka_env=(("MAXLAKE_LAKE_RETRY_MAX_S", "2"),),
    )  # fmt: skip
    env.create_topics()
    events = keyed_like_original(simulate(TENANTS, seed=22, duration_s=900, bad_rate=0.05))
    half = len(events) // 2
    produce(env, events[:half])
    first, second = WorkerProcess(env, "a"), WorkerProcess(env, "b")
    with first, second:
        first.start()
        wait_for_lag_zero(env, [first], produced=half, timeout_s=300)
        filler = _fill(volume)
        produce(env, events[half:])
        line = _wait_blocked(first)
        before = committed_total(env)
        second.start()
        first.wait_for_log("consumed again by their next owner", timeout_s=180)
        second.wait_assigned(timeout_s=180)
        assert committed_total(env) == before
        filler.unlink()
        wait_for_lag_zero(env, [first, second], produced=len(events), timeout_s=180)
        assert "lake writable again" in first.log_text(), first.log_tail()
        for proc in (first, second):
            assert proc.terminate(timeout_s=60) == 0, proc.log_tail()
            assert "Traceback" not in proc.log_text(), proc.log_tail(80)
    result = audit(read_kafka(kafka_bootstrap, env.topics()), read_lake(env.lake_root))
    assert result.ok, result.summary()
    assert result.records == len(events)
    # What the operator reads: the cause, the volume and how much space is left on it.
    assert "disk full" in line, line
    assert f"on {env.lake_root}" in line, line
    assert re.search(r"[\d,]+ bytes free of [\d,]+", line), line
