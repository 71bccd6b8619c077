"""Attacks on the topic-id check before each batch (docs/RELIABILITY.md, "A topic deleted and
created again under a running worker"): other partition counts, two recreations in one
metadata-refresh window, the broker killed around a recreation, two workers in one group, a
topic deleted and not created again, an empty topic created again.

Real broker, real pipeline (Great Expectations, Delta); the result is checked by the
independent ledger (kafka-python and deltalake/Polars, offset by offset). The first batch's
preparation is held until the test releases it, so the order of events is fixed, not timed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from infra.broker import LocalBroker
from lake import BatchWriter, DeltaStore
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import EventKind, load_registry
from streams.batch_engine import BatchEngine
from streams.ingest import IngestPipeline
from streams.offsets import group_offsets
from streams.simulator import SimEvent
from streams.topics import ensure_topics, topic_ids
from tests.integration.ingest_helpers import simulate
from tests.integration.ledger import Ledger, kafka_records, reconcile
from tests.integration.test_positioning_races import _settings, _until
from tests.integration.test_topic_recreation import TENANT, _HeldPipeline, _telemetry

pytestmark = pytest.mark.integration

Step = Callable[[BatchEngine], Awaitable[None]]


def _produce(bootstrap: str, topic: str, events: list[SimEvent], partitions: int) -> None:
    """Send ``events`` round robin to partitions ``0..partitions-1`` of ``topic``."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = [
        producer.send(topic, key=e.key, value=e.payload, partition=i % partitions)
        for i, e in enumerate(events)
    ]
    producer.flush()
    for f in sent:
        f.get(30)
    producer.close()


def _recreate(admin: KafkaAdminClient, topic: str, partitions: int) -> None:
    """Delete ``topic`` and create it again with ``partitions`` partitions."""
    admin.delete_topics([topic])
    _create(admin, topic, partitions)


def _create(admin: KafkaAdminClient, topic: str, partitions: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])
            return
        except TopicAlreadyExistsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _engine(settings: Settings, topic: str, worker: str = "w") -> tuple[BatchEngine, _HeldPipeline]:
    real = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(Path(settings.lake_root))),
        worker=worker,
    )
    pipeline = _HeldPipeline(real)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    return engine, pipeline


def _drained(settings: Settings, topic: str) -> Callable[[], Awaitable[bool]]:
    """Whether the group committed every partition of ``topic`` at its end (lag 0)."""

    async def drained() -> bool:
        parts = await asyncio.to_thread(group_offsets, settings, [topic])
        return bool(parts) and all(p.committed == p.end for p in parts)

    return drained


def _run(
    engine: BatchEngine,
    pipeline: _HeldPipeline,
    between: Step,
    done: Callable[[], Awaitable[bool]],
) -> None:
    """Run ``engine`` until its first batch is held, run ``between``, release it, and run on
    until ``done``."""

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: asyncio.to_thread(pipeline.preparing.wait, 0.5), "a batch", task)
            assert engine.consumer is not None
            # The client's next periodic metadata refresh is 10 s away.
            await engine.consumer._client.force_metadata_update()
            await between(engine)
            pipeline.go.set()
            await _until(done, "the group's commit at the new topic's end", task)
        finally:
            pipeline.go.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())


def _new_ledger(settings: Settings, bootstrap: str, topic: str) -> tuple[Ledger, str]:
    new_id = topic_ids(settings, [topic])[topic]
    in_kafka = kafka_records(bootstrap, [topic])
    ledger = reconcile(
        Path(settings.lake_root), in_kafka, topics=[topic], topic_ids={topic: new_id}
    )
    return ledger, new_id


@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 3)])
def test_a_topic_created_again_with_another_partition_count_loses_nothing(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    before: int,
    after: int,
) -> None:
    """The topic had ``before`` partitions and is created again with ``after``, unseen by the
    client, while the worker holds a batch of the old one: every record of the new
    incarnation is in the lake once, the group's lag drains, the worker does not stop."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100, "topic_partitions": before}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(kafka_bootstrap, topic, _telemetry(11, 400), before)
    old_id = topic_ids(settings, [topic])[topic]
    engine, pipeline = _engine(settings, topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    async def between(engine: BatchEngine) -> None:
        await asyncio.to_thread(_recreate, admin, topic, after)
        await asyncio.to_thread(_produce, kafka_bootstrap, topic, _telemetry(12, 600), after)

    try:
        _run(engine, pipeline, between, _drained(settings, topic))
    finally:
        admin.close()
    ledger, new_id = _new_ledger(settings, kafka_bootstrap, topic)
    assert new_id != old_id
    assert ledger.ok, ledger.summary()
    assert ledger.records == 600, ledger.summary()
    assert ledger.silver == 600, ledger.summary()


def test_a_topic_created_again_twice_in_one_refresh_window_loses_nothing_of_the_last(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A -> B -> C between two metadata refreshes, B with 50 records the worker never
    fetches (gone with B, like any record of a deleted topic), C with 600: every record of C is
    in the lake once under C's id, nothing is written under B's, and the line names A -> C."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(kafka_bootstrap, topic, _telemetry(21, 500), 1)
    old_id = topic_ids(settings, [topic])[topic]
    engine, pipeline = _engine(settings, topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    middle: list[str] = []

    async def between(engine: BatchEngine) -> None:
        await asyncio.to_thread(_recreate, admin, topic, 1)
        await asyncio.to_thread(_produce, kafka_bootstrap, topic, _telemetry(22, 50), 1)
        middle.append(topic_ids(settings, [topic])[topic])
        await asyncio.to_thread(_recreate, admin, topic, 1)
        await asyncio.to_thread(_produce, kafka_bootstrap, topic, _telemetry(23, 600), 1)

    try:
        _run(engine, pipeline, between, _drained(settings, topic))
    finally:
        admin.close()
    ledger, new_id = _new_ledger(settings, kafka_bootstrap, topic)
    assert len({old_id, middle[0], new_id}) == 3
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 600, ledger.summary()
    under_b = reconcile(
        Path(settings.lake_root), {}, topics=[topic], topic_ids={topic: middle[0]}
    ).unknown
    assert not under_b, f"{len(under_b)} offsets written under the middle incarnation's id"
    told = [r.getMessage() for r in caplog.records if "deleted and created again" in r.getMessage()]
    assert any(old_id in m and new_id in m for m in told), told


def _restart(broker: LocalBroker) -> None:
    """Start ``broker`` again once its killed process is gone and its port released."""
    while broker.pid() is not None:
        time.sleep(0.2)
    time.sleep(3)  # as test_s3_slow.py does
    broker.start(timeout_s=240.0)


def test_the_broker_killed_around_a_recreation_loses_nothing(
    restartable_broker: LocalBroker,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The topic is created again, then the broker is killed with kill -9 while the worker
    holds a batch of the old incarnation, and started again on the same data before the batch
    is released: the topic-id check waits for the broker; every record of the new incarnation
    is in the lake once, the lag drains."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    bootstrap = restartable_broker.bootstrap
    settings = _settings(bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(bootstrap, topic, _telemetry(31, 500), 1)
    engine, pipeline = _engine(settings, topic)

    async def between(engine: BatchEngine) -> None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await asyncio.to_thread(_recreate, admin, topic, 1)
        finally:
            admin.close()
        await asyncio.to_thread(_produce, bootstrap, topic, _telemetry(32, 600), 1)
        pid = restartable_broker.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        await asyncio.to_thread(_restart, restartable_broker)

    _run(engine, pipeline, between, _drained(settings, topic))
    ledger, _ = _new_ledger(settings, bootstrap, topic)
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 600, ledger.summary()


def test_two_workers_in_one_group_during_a_recreation_lose_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second worker joins the group (a rebalance) right after the topic (2 partitions) is
    created again under the first worker, which holds a batch of the old incarnation: every
    record of the new incarnation is in the lake once, the lag drains, neither worker stops."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100, "topic_partitions": 2}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(kafka_bootstrap, topic, _telemetry(41, 400), 2)
    engine, pipeline = _engine(settings, topic, "w1")
    second, second_pipeline = _engine(settings, topic, "w2")
    second_pipeline.preparing.set()
    second_pipeline.go.set()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    tasks: list[asyncio.Task[None]] = []

    async def between(engine: BatchEngine) -> None:
        await asyncio.to_thread(_recreate, admin, topic, 2)
        await asyncio.to_thread(_produce, kafka_bootstrap, topic, _telemetry(42, 600), 2)
        tasks.append(asyncio.create_task(second.run()))
        await asyncio.sleep(1.0)  # the second worker starts joining; no assertion on time

    drained = _drained(settings, topic)

    async def done() -> bool:
        for task in tasks:
            assert not task.done(), task.exception()
        return await drained()

    try:
        _run(engine, pipeline, between, done)
    finally:
        admin.close()  # asyncio.run cancelled the second worker
    ledger, _ = _new_ledger(settings, kafka_bootstrap, topic)
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 600, ledger.summary()


def test_a_topic_deleted_and_not_created_again_neither_stops_nor_spins_the_worker(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The topic is deleted (not created again) while the worker holds a batch of it: the
    batch is written under the old id, the worker goes on (no crash loop), asks for topic ids
    only with batches (no spin), and when the topic is created again later, empty, and then
    receives records, every one of them is in the lake once."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(kafka_bootstrap, topic, _telemetry(51, 300), 1)
    old_id = topic_ids(settings, [topic])[topic]
    engine, pipeline = _engine(settings, topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    checks: list[int] = []

    async def between(engine: BatchEngine) -> None:
        await asyncio.to_thread(admin.delete_topics, [topic])

    async def gone_then_back() -> bool:
        if not checks:
            # The deletion seen by the client (metadata refresh: <= 10 s), the worker idle.
            assert engine.consumer is not None
            if topic in engine.consumer._client.cluster.topics():
                return False
            checks.append(engine.lineage_checks)
            await asyncio.sleep(3.0)
            checks.append(engine.lineage_checks)
            await asyncio.to_thread(_create, admin, topic, 1)
            await asyncio.to_thread(_produce, kafka_bootstrap, topic, _telemetry(52, 200), 1)
        return await _drained(settings, topic)()

    try:
        _run(engine, pipeline, between, gone_then_back)
    finally:
        admin.close()
    assert checks[1] - checks[0] <= 1, f"{checks[1] - checks[0]} topic-id checks in 3 s idle"
    ledger, new_id = _new_ledger(settings, kafka_bootstrap, topic)
    assert new_id != old_id
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 200, ledger.summary()
    old = reconcile(Path(settings.lake_root), {}, topics=[topic], topic_ids={topic: old_id})
    assert len(old.unknown) == 300, old.summary()  # the old incarnation's, once each
    assert not old.twice, old.summary()


def test_an_empty_topic_created_again_under_the_worker_loses_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second topic of the worker's subscription has no records; it is deleted and created
    again (unseen by the client) while the worker holds a batch of the first; records then
    sent to it are all in the lake once, under its new id."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT, "northwind-auto"], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    empty = settings.topic_for("northwind-auto", "telemetry")
    _produce(kafka_bootstrap, topic, _telemetry(61, 300), 1)
    real = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(Path(settings.lake_root))),
        worker="w",
    )
    pipeline = _HeldPipeline(real)
    engine = BatchEngine(
        settings,
        {topic: EventKind.TELEMETRY, empty: EventKind.TELEMETRY},
        lambda: pipeline,  # type: ignore[arg-type,return-value]
    )
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    events = [e for e in simulate_empty_plant(62) if e.kind == "telemetry"][:200]

    async def between(engine: BatchEngine) -> None:
        await asyncio.to_thread(_recreate, admin, empty, 1)
        await asyncio.to_thread(_produce, kafka_bootstrap, empty, events, 1)

    drained_first, drained_empty = _drained(settings, topic), _drained(settings, empty)

    async def done() -> bool:
        return await drained_first() and await drained_empty()

    try:
        _run(engine, pipeline, between, done)
    finally:
        admin.close()
    ledger, _ = _new_ledger(settings, kafka_bootstrap, empty)
    assert ledger.ok, ledger.summary()
    assert ledger.records == 200, ledger.summary()
    assert ledger.silver == 200, ledger.summary()
    first, _ = _new_ledger(settings, kafka_bootstrap, topic)
    assert first.ok, first.summary()


def simulate_empty_plant(seed: int) -> list[Any]:
    return list(simulate(("northwind-auto",), seed=seed, duration_s=1800, bad_rate=0.0))


def test_a_broker_that_does_not_answer_the_topic_id_check_holds_the_batch_then_loses_nothing(
    restartable_broker: LocalBroker,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The topic is created again, then the broker is frozen (SIGSTOP) while the worker holds
    a batch of the old incarnation: the check of the next batch gets no answer; the worker
    says so once and waits (it writes nothing blindly). The broker resumes (SIGCONT): every
    record of the new incarnation is in the lake once, the lag drains."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    bootstrap = restartable_broker.bootstrap
    settings = _settings(bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(bootstrap, topic, _telemetry(71, 500), 1)
    engine, pipeline = _engine(settings, topic)
    pid = restartable_broker.pid()
    assert pid is not None

    def not_checked() -> bool:
        return any("not checked" in r.getMessage() for r in caplog.records)

    async def between(engine: BatchEngine) -> None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await asyncio.to_thread(_recreate, admin, topic, 1)
        finally:
            admin.close()
        await asyncio.to_thread(_produce, bootstrap, topic, _telemetry(72, 600), 1)
        os.killpg(pid, signal.SIGSTOP)

    drained = _drained(settings, topic)
    resumed: list[bool] = []

    async def done() -> bool:
        if not resumed:
            if not not_checked():
                return False
            os.killpg(pid, signal.SIGCONT)
            resumed.append(True)
        return await drained()

    try:
        _run(engine, pipeline, between, done)
    finally:
        os.killpg(pid, signal.SIGCONT)
    assert resumed
    ledger, _ = _new_ledger(settings, bootstrap, topic)
    assert ledger.ok, ledger.summary()
    assert ledger.silver == 600, ledger.summary()
