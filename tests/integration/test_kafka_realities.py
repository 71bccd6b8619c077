"""Kafka realities the lake must account for, each done for real against the real broker with a
real batch worker: a topic deleted and created again, records deleted before ingest
(DeleteRecords), and a transactional producer that aborts (with the stream engine too, as the
evidence for what INGEST.md says it does and does not do). Results are checked by the
independent ledger (Kafka read record by record, Delta read directly), by ``maxlake lake
verify`` and by ``maxlake status``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from streams.simulator import SimEvent
from streams.topics import topic_ids
from tests.integration.ingest_helpers import (
    IngestEnv,
    WorkerProcess,
    produce,
    run_cli,
    simulate,
    wait_for_lag_zero,
)
from tests.integration.ledger import kafka_records, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "voltcell-batteries"


def _telemetry(seed: int, n: int) -> list[SimEvent]:
    events = simulate((TENANT,), seed=seed, duration_s=600, bad_rate=0.0)
    out = [e for e in events if e.kind == "telemetry"][:n]
    assert len(out) == n
    return out


def _env(bootstrap: str, name: str, tmp_path: Path, engine: str = "batch") -> IngestEnv:
    return IngestEnv(
        bootstrap, name, tmp_path, (TENANT,), partitions=1, engine=engine, batch_wait_s=0.3
    )


def _wait_for(predicate: object, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _status(env: IngestEnv) -> dict:  # type: ignore[type-arg]
    result = run_cli(env, "status", "--json", "--tenant", TENANT)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_recreated_topic_is_a_new_lineage_and_nothing_is_masked(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, unique_name, tmp_path)
    env.create_topics()
    settings = env.settings()
    topic = settings.topic_for(TENANT, "telemetry")
    first = _telemetry(1, 6)
    produce(env, first)
    with WorkerProcess(env, "w") as worker:
        worker.start()
        wait_for_lag_zero(env, [worker], produced=6, timeout_s=240)
        old_id = topic_ids(settings, [topic])[topic]
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.delete_topics([topic])
            _wait_for(lambda: topic not in admin.list_topics(), "the topic to be deleted")
            time.sleep(2)
            admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            admin.close()
        _wait_for(lambda: topic_ids(settings, [topic]).get(topic) not in (None, old_id), "new id")
        second = _telemetry(2, 3)
        produce(env, second)
        new_id = topic_ids(settings, [topic])[topic]
        _wait_for(
            lambda: (
                reconcile(
                    env.lake_root,
                    kafka_records(kafka_bootstrap, [topic]),
                    topics=[topic],
                    topic_ids={topic: new_id},
                ).ok
            ),
            "the new incarnation's 3 records in the lake",
            timeout_s=240,
        )
        wait_for_lag_zero(env, [worker], produced=3, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()

    ledger = reconcile(
        env.lake_root,
        kafka_records(kafka_bootstrap, [topic]),
        topics=[topic],
        topic_ids={topic: new_id},
    )
    assert ledger.ok, ledger.summary()
    assert ledger.records == 3
    verify = run_cli(env, "lake", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    status = _status(env)
    alerts = [a for a in status["alerts"] if a["alert"] == "topic_recreated"]
    assert alerts, status["alerts"]
    assert new_id in alerts[0]["detail"]
    assert old_id in alerts[0]["detail"]


def test_records_deleted_before_ingest_are_a_recorded_gap(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, unique_name, tmp_path)
    env.create_topics()
    topic = env.settings().topic_for(TENANT, "telemetry")
    events = _telemetry(3, 10)
    with WorkerProcess(env, "w") as worker:
        produce(env, events[:4])
        worker.start()
        wait_for_lag_zero(env, [worker], produced=4, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()
        produce(env, events[4:])  # offsets 4..9, then 4..6 deleted before any worker reads them
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.delete_records({TopicPartition(topic, 0): 7})
        finally:
            admin.close()
        worker.start()
        wait_for_lag_zero(env, [worker], produced=10, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()

    records = kafka_records(kafka_bootstrap, [topic])
    assert sorted(o for _, _, o in records) == [7, 8, 9]
    ledger = reconcile(
        env.lake_root, records, topics=[topic], expired=[(topic, 0, o) for o in range(4)]
    )
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 7  # 0..3 before the deletion, 7..9 after
    verify = run_cli(env, "lake", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"{topic}[0] offsets 4..6 (3): expired before ingest" in verify.stdout
    status = _status(env)
    gaps = [a for a in status["alerts"] if a["alert"] == "offsets_expired_before_ingest"]
    assert [a["detail"].split(" were")[0] for a in gaps] == [
        f"{topic}[0] offsets 4..6 (3 offsets)"
    ], status["alerts"]


async def _transactions(
    bootstrap: str, topic: str, committed: list[SimEvent], aborted: list[SimEvent]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"{topic}-tx", enable_idempotence=True
    )
    await producer.start()
    try:
        for events, commit in ((committed[:1], True), (aborted, False), (committed[1:], True)):
            await producer.begin_transaction()
            for event in events:
                await producer.send_and_wait(topic, event.payload, key=event.key)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


@pytest.mark.parametrize("engine", ["batch", "stream"])
def test_aborted_transactions_never_reach_the_lake_and_lag_drains(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, engine: str
) -> None:
    """Both engines read committed records only. The batch engine's lag drains to 0. The stream
    engine's does not: Faust commits only acknowledged offsets plus the gaps it saw *between*
    two records it delivered, and it sees none after the first record it reads (offset 0 here),
    so it stays committed at 1 with a lag of 6 (INGEST.md, "What the stream engine guarantees").
    Nothing is lost or doubled either way."""
    env = _env(kafka_bootstrap, unique_name, tmp_path, engine)
    env.create_topics()
    topic = env.settings().topic_for(TENANT, "telemetry")
    events = _telemetry(4, 4)
    committed, aborted = events[:2], events[2:]
    asyncio.run(_transactions(kafka_bootstrap, topic, committed, aborted))
    records = kafka_records(kafka_bootstrap, [topic])
    assert len(records) == 2
    with WorkerProcess(env, "w") as worker:
        worker.start()
        # committed 0, marker 1, aborted 2-3, abort marker 4, committed 5, marker 6: end 7
        if engine == "batch":
            wait_for_lag_zero(env, [worker], produced=7, timeout_s=240)
        else:
            _wait_for(
                lambda: reconcile(env.lake_root, records, topics=[topic]).silver == 2,
                "both committed events in silver",
                240,
            )
            time.sleep(5)  # Faust commits acknowledged offsets every second: give it several
        assert worker.terminate() == 0, worker.log_tail()

    ledger = reconcile(env.lake_root, records, topics=[topic])
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 2
    verify = run_cli(env, "lake", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    status = _status(env)
    assert status["kafka"]["total_lag"] == (0 if engine == "batch" else 6), status["kafka"]


def test_a_group_commit_behind_the_lake_is_moved_up_and_lag_drains(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """A batch written to the lake whose Kafka commit was lost (the group moved on in a
    rebalance) leaves the group's offset behind the lake. The next owner seeks past the lake
    and commits that position even when no new record arrives, so the lag reaches zero."""
    env = _env(kafka_bootstrap, unique_name, tmp_path)
    env.create_topics()
    topic = env.settings().topic_for(TENANT, "telemetry")
    produced = produce(env, _telemetry(11, 6))
    with WorkerProcess(env, "first") as worker:
        worker.start()
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()

    _commit_offset(kafka_bootstrap, env.group_id, topic, 2)
    assert env.committed()[(topic, 0)] == 2

    with WorkerProcess(env, "second") as worker:
        worker.start()
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()
    assert env.committed()[(topic, 0)] == produced
    ledger = reconcile(env.lake_root, kafka_records(kafka_bootstrap, [topic]), topics=[topic])
    assert ledger.ok, ledger.summary()
    assert ledger.silver == produced


def _commit_offset(bootstrap: str, group_id: str, topic: str, offset: int) -> None:
    """Rewind the (idle) group's committed offset of partition 0, as a lost commit leaves it."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def test_a_lake_unreadable_at_assignment_is_retried_and_nothing_is_lost(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """The lake decides where an assigned partition resumes. When it cannot be read at that
    moment (here: hostile bytes in the newest commit of the validation-runs log), the worker says
    so and reads nothing of the partition; once the log is whole again it resumes after what
    the lake holds: no offset lost or written twice. The client swallows errors of the
    assignment listener, so before the retry the partition stayed unread for good. The retry
    comes every ``MAXLAKE_LAKE_RETRY_MAX_S`` (30 s by default, 2 s here)."""
    env = dataclasses.replace(
        _env(kafka_bootstrap, unique_name, tmp_path),
        kafka_env=(("MAXLAKE_LAKE_RETRY_MAX_S", "2"),),
    )
    env.create_topics()
    topic = env.settings().topic_for(TENANT, "telemetry")
    events = _telemetry(12, 10)
    produced = produce(env, events[:6])
    with WorkerProcess(env, "first") as worker:
        worker.start()
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=240)
        assert worker.terminate() == 0, worker.log_tail()

    newest = max((env.lake_root / "ops" / "validation_runs" / "_delta_log").glob("*.json"))
    whole = newest.read_bytes()
    newest.write_bytes(b"\x00{not a delta action\xff\n")
    produced += produce(env, events[6:])
    with WorkerProcess(env, "second") as worker:
        worker.start()
        worker.wait_for_log("not positioned: the lake could not be read", timeout_s=240)
        newest.write_bytes(whole)
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=240)
        worker.wait_for_log("positioned from the lake after a retry", timeout_s=60)
        assert worker.terminate() == 0, worker.log_tail()
    ledger = reconcile(env.lake_root, kafka_records(kafka_bootstrap, [topic]), topics=[topic])
    assert ledger.ok, ledger.summary()
    assert ledger.silver == produced
