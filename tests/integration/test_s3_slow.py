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
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.soak_accounting import audit, read_kafka, read_lake
from infra.broker import LocalBroker
from infra.s3 import LocalS3
from lake import LakeLocation
from tests.integration.conftest import BROKER_START_TIMEOUT_S
from tests.integration.ingest_helpers import (
    IngestEnv,
    Stream,
    WorkerProcess,
    assert_each_offset_once,
    assert_expected,
    assert_invariant,
    produce,
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


_POSITIONING = "positioning them from the lake"
_POSITIONED = re.compile(r"partition\(s\) positioned from the lake")


def _while_positioning(procs: list[WorkerProcess], timeout_s: float = 240.0) -> WorkerProcess:
    """Wait until one of ``procs`` logs, in its current start, an assignment whose lake read
    has not ended yet; returns it (checked every 20 ms: the read takes seconds here)."""
    deadline = time.monotonic() + timeout_s
    seen = {p.name: p.log_text().count(_POSITIONING) for p in procs}
    while time.monotonic() < deadline:
        for proc in procs:
            text = proc.log_text()
            if text.count(_POSITIONING) > seen[proc.name]:
                after = text[text.rindex(_POSITIONING) :]
                if not _POSITIONED.search(after):
                    return proc
                seen[proc.name] = text.count(_POSITIONING)
        time.sleep(0.02)
    raise AssertionError("no worker was caught positioning from the lake")


def _still_positioning(proc: WorkerProcess) -> bool:
    text = proc.log_text()
    return not _POSITIONED.search(text[text.rindex(_POSITIONING) :])


def _own_tracebacks(log: str) -> list[str]:
    """The log lines before each traceback in a worker's log, except the Kafka client's own
    reports of a connection the killed broker reset (kafka-python logs those with their
    stack)."""
    lines = log.splitlines()
    return [
        lines[i - 1]
        for i, line in enumerate(lines)
        if line.startswith("Traceback") and "KafkaTCPTransport" not in lines[i - 1]
    ]


def _audit(env: IngestEnv, direct: LakeLocation, produced: int) -> None:
    """Every Kafka record exactly once in the lake, read directly (bench.soak_accounting)."""
    lake = read_lake(direct.uri(""), dict(direct.storage_options), kinds=("telemetry",))
    result = audit(read_kafka(env.bootstrap, env.topics()), lake)
    assert result.ok, result.summary()
    assert result.records == produced


def test_a_worker_killed_while_it_positions_from_a_slow_store_loses_nothing(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    slow_lake: tuple[LakeLocation, LakeLocation],
) -> None:
    """kill -9 of a worker whose lake read (where its new partitions resume) is under way on a
    store that delays every request: the read dies with it, nothing of its partitions was read
    or committed; the survivor takes them over after the session timeout and positions them
    from the lake itself, and the restarted worker does the same when it joins again."""
    slow, direct = slow_lake
    env = IngestEnv(
        kafka_bootstrap, unique_name, tmp_path, TENANTS, batch_max_events=1000,
        engine="batch", lake=slow, session_timeout_s=6.0,
    )  # fmt: skip
    env.create_topics()
    events = [e for e in simulate(TENANTS, seed=43, duration_s=120) if e.kind == "telemetry"]
    half = len(events) // 2
    produce(env, events[:half])
    first, second = WorkerProcess(env, "first"), WorkerProcess(env, "second")
    with first, second:
        first.start()
        first.wait_until_ingested(timeout_s=240)
        second.start()
        victim = _while_positioning([second])
        victim.kill9()
        assert _still_positioning(victim), "the kill came after the read: not this test's case"
        produce(env, events[half:])
        second.start()
        wait_for_lag_zero(env, [first, second], produced=len(events), timeout_s=240)
        for proc in (first, second):
            assert proc.terminate(timeout_s=120) == 0, proc.log_tail()
    for proc in (first, second):
        assert "Traceback" not in proc.log_text(), proc.log_tail(60)
    _audit(env, direct, len(events))


def test_the_broker_killed_while_workers_position_from_a_slow_store_loses_nothing(
    restartable_broker: LocalBroker,
    unique_name: str,
    tmp_path: Path,
    slow_lake: tuple[LakeLocation, LakeLocation],
) -> None:
    """kill -9 of the broker while a worker reads the slow lake for the partitions it was just
    given (a second worker joined): the read ends with the broker gone (the topic ids and log
    starts it asks Kafka for are not there), so the partitions are retried, and read from once
    the broker is back; nothing lost, nothing twice, and the log says it was the broker."""
    slow, direct = slow_lake
    broker = restartable_broker
    env = IngestEnv(
        broker.bootstrap, unique_name, tmp_path, TENANTS, batch_max_events=1000,
        engine="batch", lake=slow, session_timeout_s=6.0,
        kafka_env=(("MAXLAKE_LAKE_RETRY_MAX_S", "5"),),
    )  # fmt: skip
    env.create_topics()
    events = [e for e in simulate(TENANTS, seed=44, duration_s=120) if e.kind == "telemetry"]
    half = len(events) // 2
    produce(env, events[:half])
    first, second = WorkerProcess(env, "first"), WorkerProcess(env, "second")
    with first, second:
        first.start()
        first.wait_until_ingested(timeout_s=240)
        second.start()
        caught = _while_positioning([first, second])
        pid = broker.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        killed_while_positioning = _still_positioning(caught)
        while broker.pid() is not None:
            time.sleep(0.2)
        time.sleep(3)
        broker.start(timeout_s=BROKER_START_TIMEOUT_S)
        assert killed_while_positioning, "the kill came after the read: not this test's case"
        produce(env, events[half:])
        wait_for_lag_zero(env, [first, second], produced=len(events), timeout_s=300)
        for proc in (first, second):
            assert proc.terminate(timeout_s=120) == 0, proc.log_tail()
    _audit(env, direct, len(events))
    for proc in (first, second):
        assert not _own_tracebacks(proc.log_text()), proc.log_tail(60)
