"""A topic deleted and created again under a running batch worker, unseen by its client.

The broker, the consumer group, the topic admin and the lake (real Delta tables, a real
pipeline with Great Expectations) are real; the first batch's preparation is held until the
test releases it, so the order of events is fixed, not timed. The result is checked by the
independent ledger: Kafka read record by record with kafka-python, the Delta tables read with
deltalake and Polars, offset by offset (never with the code under test).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaAdminClient, KafkaProducer

from lake import BatchWriter, DeltaStore
from quality import ValidationGateway
from schemas import EventKind, load_registry
from streams.batch_engine import BatchEngine
from streams.ingest import IngestPipeline, RawMessage
from streams.kafka_topic_ids import current_topic_ids
from streams.offsets import group_offsets
from streams.simulator import SimEvent
from streams.topics import ensure_topics, topic_ids
from tests.integration.ingest_helpers import simulate
from tests.integration.ledger import gap_coords, kafka_records, reconcile
from tests.integration.test_positioning_races import _recreate, _settings, _until

pytestmark = pytest.mark.integration

TENANT = "voltcell-batteries"


class _HeldPipeline:
    """The real pipeline; the first batch is prepared only once :attr:`go` is set (after
    setting :attr:`preparing`)."""

    def __init__(self, real: IngestPipeline) -> None:
        self.real = real
        self.preparing = threading.Event()
        self.go = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def prepare(self, kind: EventKind, messages: list[RawMessage]) -> Any:
        if not self.preparing.is_set():
            self.preparing.set()
            self.go.wait(300)
        return self.real.prepare(kind, messages)


def _telemetry(seed: int, n: int) -> list[SimEvent]:
    events = [
        e
        for e in simulate((TENANT,), seed=seed, duration_s=1800, bad_rate=0.0)
        if e.kind == "telemetry"
    ]
    assert len(events) >= n
    return events[:n]


def _produce(
    bootstrap: str, topic: str, events: list[SimEvent], *, at_once: bool = False
) -> dict[int, bytes]:
    """Send ``events`` to partition 0 of ``topic``; offset -> value as Kafka acknowledged.
    ``at_once``: in one record batch, so that one fetch response holds them all."""
    config: dict[str, Any] = {"batch_size": 4 << 20, "linger_ms": 60_000} if at_once else {}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **config)
    sent = [producer.send(topic, key=e.key, value=e.payload, partition=0) for e in events]
    producer.flush()
    out = {f.get(30).offset: e.payload for f, e in zip(sent, events, strict=True)}
    producer.close()
    return out


def test_a_topic_created_again_with_more_records_unseen_by_the_client_loses_nothing(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The topic is deleted and created again with 600 records between two metadata refreshes
    of the client, while the worker holds 500 records of the old incarnation (one batch being
    prepared, the rest fetched and buffered): no fetch error (the new incarnation has more
    records than the worker's position) and no rebalance tells it. Reading on at 500, it read
    the new incarnation's offsets 500-599 under the old topic id and never its 0-499, and the
    group's commit reached 600: lost, silently."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    old_events, new_events = _telemetry(1, 500), _telemetry(2, 600)
    old_values = _produce(kafka_bootstrap, topic, old_events)
    old_id = topic_ids(settings, [topic])[topic]
    real = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(Path(settings.lake_root))),
        worker="w",
    )
    pipeline = _HeldPipeline(real)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    async def scenario() -> tuple[str, int]:
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: asyncio.to_thread(pipeline.preparing.wait, 0.5), "a batch", task)
            assignments = engine._assignments
            assert engine.consumer is not None
            # The client's next periodic metadata refresh is 10 s away: it does not see the
            # topic go.
            await engine.consumer._client.force_metadata_update()
            await asyncio.to_thread(_recreate, admin, topic)
            await asyncio.to_thread(_produce, kafka_bootstrap, topic, new_events)
            new_id = topic_ids(settings, [topic])[topic]
            pipeline.go.set()

            async def new_topic_read() -> bool:
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return parts[0].committed == len(new_events)

            await _until(new_topic_read, "the group's commit at the new topic's end", task)
            return new_id, engine._assignments - assignments
        finally:
            pipeline.go.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        new_id, rebalances = asyncio.run(scenario())
    finally:
        admin.close()
    assert new_id != old_id
    in_kafka = kafka_records(kafka_bootstrap, [topic])
    assert len(in_kafka) == len(new_events)
    new_ledger = reconcile(
        Path(settings.lake_root), in_kafka, topics=[topic], topic_ids={topic: new_id}
    )
    assert new_ledger.ok, new_ledger.summary()
    assert new_ledger.silver == len(new_events), new_ledger.summary()
    # The old incarnation's records were all fetched (one fetch of its whole log) before it
    # was deleted: each is in the lake once, under the old topic id, and in no gap (a gap of
    # the old id, if the worker discarded records of the new one, starts beyond them).
    old_records = {(topic, 0, o): v for o, v in old_values.items()}
    gaps, causes = gap_coords(Path(settings.lake_root), topic, old_id)
    old_ledger = reconcile(
        Path(settings.lake_root),
        old_records,
        topics=[topic],
        topic_ids={topic: old_id},
        gaps=gaps,
    )
    assert old_ledger.ok, old_ledger.summary()
    assert not old_ledger.in_gap, old_ledger.summary()
    assert set(causes) <= {"discarded_topic_recreated"}, causes
    assert rebalances == 0, "the client saw the topic go: not the scenario of this test"
    told = [r.getMessage() for r in caplog.records if "deleted and created again" in r.getMessage()]
    assert any(old_id in m and new_id in m for m in told), told


def test_the_engine_s_topic_ids_are_the_admin_s(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """The ids the engine asks over its consumer's connections (Metadata v10) are the ones the
    lineage is keyed by (the admin client's), in the same text form; a topic that does not
    exist is left out."""
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry", "inspection"])
    topics = [settings.topic_for(TENANT, k) for k in ("telemetry", "inspection")]

    async def ask() -> dict[str, str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
        await consumer.start()
        try:
            return await current_topic_ids(consumer._client, [*topics, f"{unique_name}.none"])
        finally:
            await consumer.stop()

    assert asyncio.run(ask()) == topic_ids(settings, topics)


def test_records_fetched_after_the_last_check_are_discarded_not_written_under_a_guess(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As above, but the worker's second batch (offsets 100-199, with 200-299 buffered) came
    from a fetch response received after the last check that saw the old id: which incarnation
    those records belong to is not known from the client, so they are discarded (logged), not
    written; the new incarnation is read whole from its start, and the old one's first batch
    stays in the lake once under the old id, nothing else of it."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    tp = TopicPartition(topic, 0)
    old_events, new_events = _telemetry(3, 300), _telemetry(4, 600)
    old_values = _produce(kafka_bootstrap, topic, old_events[:100])
    old_id = topic_ids(settings, [topic])[topic]
    real = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(Path(settings.lake_root))),
        worker="w",
    )
    pipeline = _HeldPipeline(real)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    async def scenario() -> tuple[str, int]:
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: asyncio.to_thread(pipeline.preparing.wait, 0.5), "a batch", task)
            assignments = engine._assignments
            assert engine.consumer is not None
            # Received in one response after the first batch's check; 100 of them fill the
            # second batch, the rest stay buffered (no fetch in flight).
            old_values.update(
                await asyncio.to_thread(
                    partial(_produce, kafka_bootstrap, topic, old_events[100:], at_once=True)
                )
            )

            async def second_batch() -> bool:
                return engine._next.get(tp) == 200

            await _until(second_batch, "the second batch filled", task)
            await engine.consumer._client.force_metadata_update()
            await asyncio.to_thread(_recreate, admin, topic)
            await asyncio.to_thread(_produce, kafka_bootstrap, topic, new_events)
            new_id = topic_ids(settings, [topic])[topic]
            pipeline.go.set()

            async def new_topic_read() -> bool:
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return parts[0].committed == len(new_events)

            await _until(new_topic_read, "the group's commit at the new topic's end", task)
            return new_id, engine._assignments - assignments
        finally:
            pipeline.go.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        new_id, rebalances = asyncio.run(scenario())
    finally:
        admin.close()
    assert rebalances == 0, "the client saw the topic go: not the scenario of this test"
    in_kafka = kafka_records(kafka_bootstrap, [topic])
    new_ledger = reconcile(
        Path(settings.lake_root), in_kafka, topics=[topic], topic_ids={topic: new_id}
    )
    assert new_ledger.ok, new_ledger.summary()
    assert new_ledger.records == len(new_events)
    # Of the old incarnation's 300 records, 0-99 are in the lake once; 100-199 (discarded)
    # and 200-299 (buffered, dropped by the seek) are in a gap of the old id, none in both.
    old_records = {(topic, 0, o): v for o, v in old_values.items()}
    assert len(old_records) == 300
    gaps, causes = gap_coords(Path(settings.lake_root), topic, old_id)
    old_ledger = reconcile(
        Path(settings.lake_root),
        old_records,
        topics=[topic],
        topic_ids={topic: old_id},
        gaps=gaps,
    )
    assert old_ledger.ok, old_ledger.summary()
    assert old_ledger.silver == 100, old_ledger.summary()
    assert sorted(o for _, _, o in old_ledger.in_gap) == list(range(100, 300))
    assert set(causes) == {"discarded_topic_recreated"}, causes
    told = [r.getMessage() for r in caplog.records if "deleted and created again" in r.getMessage()]
    assert any("discarded" in m and "[0] 100-199" in m and new_id in m for m in told), told
