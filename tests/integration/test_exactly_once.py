"""Every consumed offset in exactly one place when a rebalance falls inside a batch.

A batch of the batch engine is filled by several fetches. Here worker A holds an unfinished
batch (a long ``batch_wait_s``) when worker B joins the group: the rebalance revokes A's
partitions and assigns some back, and Kafka hands their records to A again. The lake must
still hold each record once, checked by an accounting that reads Kafka and Delta directly.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.ingest_helpers import (
    IngestEnv,
    WorkerProcess,
    produce,
    simulate,
    wait_for_lag_zero,
)
from tests.integration.ledger import kafka_records, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "northwind-auto"


def test_a_rebalance_inside_a_batch_writes_no_offset_twice(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        (TENANT,),
        batch_max_events=100_000,
        batch_wait_s=75.0,
        partitions=4,
        engine="batch",
    )
    env.create_topics()
    events = simulate((TENANT,), seed=11, duration_s=300, bad_rate=0.0)
    produced = produce(env, events)
    first, second = WorkerProcess(env, "a"), WorkerProcess(env, "b")
    try:
        first.start().wait_assigned(timeout_s=120)
        time.sleep(2)  # A has fetched: its batch stays open for batch_wait_s
        second.start().wait_ready(timeout_s=120)
        wait_for_lag_zero(env, [first, second], produced=produced, timeout_s=400)
    finally:
        for worker in (first, second):
            worker.terminate()
    records = kafka_records(kafka_bootstrap, env.topics())
    ledger = reconcile(env.lake_root, records, topics=env.topics())
    assert ledger.ok, ledger.summary()
    assert ledger.records == produced
    log = first.log_text()
    assert "revoked" in log or "fetched again" in log, "no rebalance fell inside A's batch"
