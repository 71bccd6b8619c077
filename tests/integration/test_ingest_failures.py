"""The invariant survives the broker going away mid-ingest and a consumer-group rebalance in
which one of two workers is killed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.broker import LocalBroker
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

    with workers(env, "survivor") as (worker,):
        wait_for_new_commits(env, worker, beyond=0)
        restartable_broker.stop()
        time.sleep(3)
        assert worker.alive, worker.log_tail()
        restartable_broker.start(timeout_s=90)
        produce(env, events[half:])
        wait_for_lag_zero(env, [worker], produced=len(events), timeout_s=150)

    assert_invariant(env)
    assert_expected(env, events)


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
    stream = Stream(env, events, chunks=24, pause_s=1.5, held_chunks=8)
    first, second = WorkerProcess(env, "first"), WorkerProcess(env, "second")
    try:
        stream.start()
        first.start()
        wait_for_new_commits(env, first, beyond=0)
        second.start().wait_ready()
        second.wait_until_ingested()
        assert first.alive, first.log_tail()
        assert stream.is_alive(), stream.error
        stream.release()
        first.kill9()
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
