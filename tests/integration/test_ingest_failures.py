"""The invariant survives the broker going away mid-ingest and a consumer-group rebalance in
which one of two workers is killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.broker import LocalBroker, free_port
from tests.integration.ingest_helpers import (
    IngestEnv,
    Stream,
    WorkerProcess,
    assert_expected,
    assert_invariant,
    keyed_like_original,
    produce,
    simulate,
    wait_for_lag_zero,
    wait_for_new_commits,
    workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANTS = ("circuitry-electronics",)


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_a_broker_restart_mid_ingest_loses_and_duplicates_nothing(
    restartable_broker: LocalBroker, unique_name: str, tmp_path: Path, engine: str
) -> None:
    env = IngestEnv(restartable_broker.bootstrap, unique_name, tmp_path, TENANTS, engine=engine)
    env.create_topics()
    events = simulate(TENANTS, seed=5, duration_s=1500, bad_rate=0.05)
    half = len(events) // 2
    produce(env, events[:half])

    with workers(env, "survivor") as (worker,), WorkerProcess(env, "late") as late:
        wait_for_new_commits(env, worker, beyond=0)
        restartable_broker.stop()
        # A worker started while the broker is down waits for it, one line per attempt.
        late.start()
        waiting = f"broker not reachable at {env.bootstrap} (MAXLAKE_BOOTSTRAP_SERVERS)"
        late.wait_for_log(waiting, timeout_s=120)
        assert worker.alive, worker.log_tail()
        restartable_broker.start(timeout_s=90)
        produce(env, events[half:])
        wait_for_lag_zero(env, [worker, late], produced=len(events), timeout_s=150)
        late.wait_ready()

    assert "Traceback" not in late.log_text(), late.log_tail()
    assert_invariant(env)
    assert_expected(env, events)


def test_a_worker_told_to_stop_with_the_broker_gone_exits_by_its_stop_timeout(
    restartable_broker: LocalBroker, unique_name: str, tmp_path: Path
) -> None:
    """SIGTERM while the broker does not answer: the Kafka clients would retry the offset
    commit and the group leave for over a minute; the worker exits after
    MAXLAKE_WORKER_STOP_TIMEOUT_S with one WARNING line and code 0, and a restarted worker then
    completes the lake with nothing lost or duplicated."""
    stop_timeout = (("MAXLAKE_WORKER_STOP_TIMEOUT_S", "4"),)
    env = IngestEnv(
        restartable_broker.bootstrap,
        unique_name,
        tmp_path,
        TENANTS,
        engine="batch",
        kafka_env=stop_timeout,
    )
    env.create_topics()
    events = simulate(TENANTS, seed=7, duration_s=600, bad_rate=0.05)
    produce(env, events)

    with WorkerProcess(env, "stopped") as worker:
        worker.start()
        wait_for_new_commits(env, worker, beyond=0)
        restartable_broker.stop()
        assert worker.terminate(timeout_s=60) == 0, worker.log_tail()
        log = worker.log_text()
        assert "did not stop within 4 s of SIGTERM" in log, worker.log_tail()
        assert "Traceback" not in log, worker.log_tail()
        restartable_broker.start(timeout_s=90)
        worker.start()
        wait_for_lag_zero(env, [worker], produced=len(events), timeout_s=150)

    assert_invariant(env)
    assert_expected(env, events)


def test_a_worker_gives_up_on_an_absent_broker_with_one_error_line(tmp_path: Path) -> None:
    """With MAXLAKE_BROKER_WAIT_S the wait is bounded: then one ``maxlake: error:`` line, exit 1,
    no traceback (nothing listens on the port)."""
    env = IngestEnv(f"127.0.0.1:{free_port()}", "nobroker", tmp_path, TENANTS, engine="batch")
    done = subprocess.run(
        [sys.executable, "-m", "maxlake.cli", "worker", "--tenant", TENANTS[0]],
        env={**env.environ("w"), "MAXLAKE_BROKER_WAIT_S": "6"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("maxlake: error:")]
    assert len(errors) == 1, done.stderr
    assert env.bootstrap in errors[0], errors
    assert "MAXLAKE_BOOTSTRAP_SERVERS" in errors[0], errors
    assert "MAXLAKE_BROKER_WAIT_S" in errors[0], errors
    attempts = [line for line in done.stderr.splitlines() if "broker not reachable at" in line]
    assert attempts, done.stderr
    assert all("MAXLAKE_BOOTSTRAP_SERVERS" in line for line in attempts), done.stderr


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_a_rebalance_and_a_killed_worker_lose_and_duplicate_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, engine: str
) -> None:
    """Resends carry their machine's key here (see ``keyed_like_original``): with two workers,
    dedupe is exact within a partition; across partitions it is best effort (RELIABILITY.md)."""
    env = IngestEnv(
        kafka_bootstrap, unique_name, tmp_path, TENANTS, batch_max_events=1000, engine=engine
    )
    env.create_topics()
    events = keyed_like_original(simulate(TENANTS, seed=9, duration_s=2400, bad_rate=0.05))
    stream = Stream(env, events, chunks=24, pause_s=1.5, held_at=(8, 16))
    first, second = WorkerProcess(env, "first"), WorkerProcess(env, "second")
    try:
        stream.start()
        first.start()
        wait_for_new_commits(env, first, beyond=0)
        second.start().wait_assigned()
        stream.release()  # input flows while the group rebalances onto two workers
        second.wait_until_ingested(timeout_s=180)
        assert first.alive, first.log_tail()
        assert stream.is_alive(), stream.error
        first.kill9()
        stream.release()  # and again while the survivor takes the killed worker's partitions
        stream.join(timeout=120)
        assert stream.error is None, stream.error
        wait_for_lag_zero(env, [second], produced=len(events), timeout_s=150)
        assert second.terminate() == 0, second.log_tail()
    finally:
        for proc in (first, second):
            if proc.alive:
                proc.kill9()

    assert_invariant(env)
    assert_expected(env, events)
