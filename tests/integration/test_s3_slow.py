"""Workers on a slow object store: the real S3 server (moto) behind a proxy that delays every
request (:mod:`tests.slow_proxy`), a real broker, real worker processes.

A batch then takes longer to write than the session timeout, and reading where newly assigned
partitions resume takes longer still. Before the fix the group's rebalance timeout was the
session timeout (aiokafka's default), so a worker still writing its batches when another joined
was dropped from the group, its commits refused, and its rejoining restarted the rebalance in a
loop (docs/OPERATIONS.md, "A slow object store"). The checks read Kafka's offsets with
kafka-python and the Delta tables with deltalake (:func:`assert_each_offset_once`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.s3 import LocalS3
from lake import LakeLocation
from tests.integration.ingest_helpers import (
    IngestEnv,
    Stream,
    assert_each_offset_once,
    assert_expected,
    assert_invariant,
    simulate,
    wait_for_lag_zero,
    workers,
)
from tests.slow_proxy import SlowProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANTS = ("voltcell-batteries",)

DELAY_MS = 150
"""Added to every S3 request: a batch (about 40-70 requests: four table commits, their log
reads and the dedupe reads) then takes 6-12 s to write, around the 10 s session timeout, and a
worker holds up to two."""

DROPPED = ("the group moved on", "member_id was not recognized")
"""Worker log lines of a worker the group dropped (its commit refused, its heartbeat unknown)."""


@pytest.fixture
def slow_lake(s3_server: LocalS3) -> Iterator[tuple[LakeLocation, LakeLocation]]:
    """A fresh bucket on the session's S3 server: reached through a delaying proxy (for the
    workers), and directly (for the checks)."""
    bucket = s3_server.create_bucket(f"lake-{uuid.uuid4().hex[:12]}")
    direct = LakeLocation(f"{bucket}/lake", s3_server.storage_options())
    with SlowProxy(s3_server.port, DELAY_MS) as proxy:
        options = {**s3_server.storage_options(), "AWS_ENDPOINT_URL": proxy.endpoint}
        yield LakeLocation(f"{bucket}/lake", options), direct


def test_a_worker_joining_while_batches_are_written_to_a_slow_store_does_not_loop_rebalances(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    slow_lake: tuple[LakeLocation, LakeLocation],
) -> None:
    slow, direct = slow_lake
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        TENANTS,
        batch_max_events=1000,
        engine="batch",
        lake=slow,
        session_timeout_s=10.0,
    )
    env.create_topics()
    # One kind: each batch is one write (four kinds would be four, each as slow).
    events = [e for e in simulate(TENANTS, seed=41, duration_s=225) if e.kind == "telemetry"]
    # Input flows for ~50 s, so the second worker joins while the first has batches in hand.
    stream = Stream(env, events, chunks=12, pause_s=4.0)
    with workers(env, "first") as (first,):
        first.wait_assigned(timeout_s=240)
        stream.start()
        first.wait_until_ingested(timeout_s=180)
        # The second worker joins while the first writes: the first must finish and commit
        # what it holds within the rebalance, however long the store takes.
        with workers(env, "second") as (second,):
            wait_for_lag_zero(env, [first, second], produced=len(events), timeout_s=300)
            stream.join(timeout=60)
            assert stream.error is None, stream.error
            assert stream.sent == len(events)
            for proc in (first, second):
                assert proc.terminate(timeout_s=120) == 0, proc.log_tail()
    for proc in (first, second):
        log = proc.log_text()
        dropped = [line for line in log.splitlines() if any(d in line for d in DROPPED)]
        assert not dropped, f"worker {proc.name} was dropped from the group:\n" + "\n".join(
            dropped[:5]
        )
    checked = dataclasses.replace(env, lake=direct)
    assert_each_offset_once(checked)
    assert_invariant(checked)
    assert_expected(checked, events, kinds=("telemetry",))
