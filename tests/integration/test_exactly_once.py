"""Every consumed offset in exactly one place when a rebalance falls inside a batch.

A batch of the batch engine is filled by several fetches. Here worker A holds an unfinished
batch when worker B joins the group: the rebalance revokes A's partitions and assigns some
back, and Kafka hands their records to A again. The lake must still hold each record once,
checked by an accounting that reads Kafka and Delta directly.

A's batch stays open by construction, not by timing: its size limit is twice the first input
and its time limit is far away, so it is still unfinished when B joins, however long B takes
to start. Input sent once B holds partitions (six times the first) fills A's batches after the
rebalance to their size limit, so A writes one without a time wait; A then stops (its next,
unfinished batch is left uncommitted) and B, with a short batch wait, drains the rest.
"""

from __future__ import annotations

import dataclasses
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
    events = simulate((TENANT,), seed=11, duration_s=300, bad_rate=0.0)
    # 6x the first input: after the rebalance A holds either half of the partitions, 40 % of
    # these machines' records or more, which alone exceeds its batch's limit.
    more = simulate((TENANT,), seed=12, duration_s=1800, bad_rate=0.0)
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        (TENANT,),
        batch_max_events=2 * len(events),
        batch_wait_s=600.0,
        partitions=4,
        engine="batch",
    )
    env.create_topics()
    produced = produce(env, events)
    first = WorkerProcess(env, "a")
    second = WorkerProcess(dataclasses.replace(env, batch_wait_s=0.3), "b")
    try:
        first.start().wait_assigned(timeout_s=120)
        time.sleep(2)  # A has fetched the first input: its batch waits for as much again
        second.start().wait_assigned(timeout_s=120)
        produced += produce(env, more)
        first.wait_until_ingested(timeout_s=120)
        assert first.terminate() == 0, first.log_tail()
        wait_for_lag_zero(env, [second], produced=produced, timeout_s=240)
    finally:
        for worker in (first, second):
            worker.terminate()
    records = kafka_records(kafka_bootstrap, env.topics())
    ledger = reconcile(env.lake_root, records, topics=env.topics())
    assert ledger.ok, ledger.summary()
    assert ledger.records == produced
    log = first.log_text()
    assert "revoked" in log or "fetched again" in log, "no rebalance fell inside A's batch"
