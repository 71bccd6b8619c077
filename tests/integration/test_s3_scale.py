"""Several workers and kill -9 on a lake on a real S3 server (moto on loopback, conditional
writes on). The final checks read the Kafka offsets with kafka-python and the Delta tables with
deltalake directly (:func:`assert_each_offset_once`): every produced offset in exactly one
table, once. The session timeout is 10 s in both tests: a batch on S3 may take longer than that
on a loaded machine, and a rebalance waits for the batches in hand up to the rebalance timeout
(``MAXLAKE_BROKER_REBALANCE_TIMEOUT_S``, 300 s), not the session timeout; so a killed worker's
partitions move after 10 s. Until the rebalance timeout was its own setting, it was the session
timeout (aiokafka's default) and this file failed once on a loaded CI machine: the group
rebalanced in a loop (docs/OPERATIONS.md, "A slow object store"; test_s3_slow.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from lake import LakeLocation
from tests.integration.ingest_helpers import (
    IngestEnv,
    Stream,
    WorkerProcess,
    assert_each_offset_once,
    assert_expected,
    assert_invariant,
    committed_total,
    simulate,
    wait_for_lag_zero,
    wait_for_new_commits,
    workers,
    workers_in_runs,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANTS = ("voltcell-batteries",)


def test_kill_minus_nine_with_an_s3_lake_loses_and_duplicates_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, s3_lake: LakeLocation
) -> None:
    rng = random.Random(20261130)
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        TENANTS,
        batch_max_events=1500,
        engine="batch",
        lake=s3_lake,
        session_timeout_s=10.0,
    )
    env.create_topics()
    events = simulate(TENANTS, seed=7, duration_s=1200, bad_rate=0.05)
    stream = Stream(env, events, chunks=12, pause_s=1.5)
    worker = WorkerProcess(env, "crashy")
    try:
        stream.start()
        for _ in range(3):
            before = committed_total(env)
            worker.start()
            if before < len(events):
                wait_for_new_commits(env, worker, beyond=before, timeout_s=180)
            else:
                worker.wait_ready()
            time.sleep(rng.uniform(0.0, 1.5))
            worker.kill9()
        stream.join(timeout=180)
        assert stream.error is None, stream.error
        worker.start().wait_ready()
        wait_for_lag_zero(env, [worker], produced=len(events), timeout_s=180)
        assert worker.terminate(timeout_s=180) == 0, worker.log_tail()
    finally:
        if worker.alive:
            worker.kill9()
    assert_invariant(env)
    assert_expected(env, events)
    assert_each_offset_once(env)


def test_three_workers_on_twelve_partitions_share_one_s3_lake_while_one_is_killed(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, s3_lake: LakeLocation
) -> None:
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        TENANTS,
        partitions=12,
        batch_max_events=1000,
        engine="batch",
        lake=s3_lake,
        session_timeout_s=10.0,
    )
    env.create_topics()
    events = simulate(TENANTS, seed=21, duration_s=1500, bad_rate=0.05)
    stream = Stream(env, events, chunks=15, pause_s=1.0)
    with workers(env, "w1", "w2", "w3") as procs:
        for proc in procs:  # the group forms before input flows, so every worker gets some
            proc.wait_assigned(timeout_s=240)
        stream.start()
        for proc in procs:
            proc.wait_until_ingested(timeout_s=180)
        procs[1].kill9()
        stream.join(timeout=480)
        assert stream.error is None, stream.error
        survivors = [procs[0], procs[2]]
        wait_for_lag_zero(env, survivors, produced=len(events), timeout_s=480)
        for proc in survivors:
            assert proc.terminate(timeout_s=180) == 0, proc.log_tail()
    writers = workers_in_runs(env)
    assert len(writers) == 3, f"every worker should have committed batches: {writers}"
    assert_each_offset_once(env)
    assert_invariant(env)
    assert_expected(env, events)
