"""Positioning from the lake while the cluster changes under it (streams/batch_position.py).

The read of where a partition resumes runs in the background and may outlive rebalances (a slow
object store: a minute). Here the read is held until the test releases it, so the order of
events is fixed, not timed: the broker, the consumer group and the topic admin are real; the
lake is a stand-in that answers what it holds per lineage (topic id) and partition. What the
engine hands to the pipeline is checked against what Kafka holds, record by record.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from lake import WriteResult
from maxlake.settings import Settings
from schemas import EventKind
from streams.batch_engine import BatchEngine
from streams.ingest import RawMessage
from streams.offsets import group_offsets
from streams.topics import ensure_topics, topic_ids
from tests.integration.ledger import kafka_records

pytestmark = pytest.mark.integration

TENANT = "northwind-auto"


class _HeldLake:
    """The lake's resume points per (topic id, partition); the first read waits for
    :attr:`release` (a slow object store), after setting :attr:`entered`."""

    def __init__(self, holds: dict[tuple[str, int], int]) -> None:
        self.holds = holds
        self.entered = threading.Event()
        self.release = threading.Event()
        self.reads: list[dict[str, str]] = []

    def handle(self) -> _HeldLake:
        return self

    def stored_offsets(
        self,
        table: str,
        partitions: list[tuple[str, int]],
        topic_ids: dict[str, str],
        worker: str,
    ) -> dict[tuple[str, int], int]:
        del table, worker
        self.reads.append(dict(topic_ids))
        if len(self.reads) == 1:
            self.entered.set()
            self.release.wait(300)
        return {(t, p): self.holds.get((topic_ids[t], p), -1) for t, p in partitions}


class _Pipeline:
    """Records (topic id, partition, offset) of every message it is given."""

    def __init__(self, lake: _HeldLake) -> None:
        self.writer = lake
        self.worker = "w"
        self.seen: list[tuple[str | None, int, int]] = []

    def forget(self, topic: str, partition: int) -> None:
        del topic, partition

    def prepare(self, kind: EventKind, messages: list[RawMessage]) -> list[list[RawMessage]]:
        del kind
        self.seen.extend((m.topic_id, m.partition, m.offset) for m in messages)
        return [messages]

    def write(self, outputs: list[list[RawMessage]]) -> WriteResult:
        consumed = sum(len(messages) for messages in outputs)
        return WriteResult(consumed, 0, 0, 0, 0, 0, 0.0)


def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(n):
        producer.send(topic, key=f"m{i}".encode(), value=b"{}", partition=0)
    producer.flush()
    producer.close()


async def _until(
    predicate: Callable[[], Awaitable[bool]], what: str, task: asyncio.Task[None]
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert not task.done(), task.exception()
        if await predicate():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_read_begun_before_the_topic_was_created_again_does_not_position_the_new_one(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """A read of the lake that began under the topic's old id (the lake holds offsets 0-4 of
    that lineage) ends after the topic was deleted, created again and given 8 records. Its
    answer belongs to the old lineage: used as a lower bound for the new one, it skipped the
    new topic's offsets 0-4 for good and wrote 5-7 under the old id."""
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique_name,
        group_id=f"{unique_name}-ingest",
        lake_root=str(tmp_path / "lake"),
        topic_partitions=1,
        broker_session_timeout_s=6.0,
        batch_max_events=1000,
        batch_wait_s=0.3,
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    tp = TopicPartition(topic, 0)
    _produce(kafka_bootstrap, topic, 5)
    old_id = topic_ids(settings, [topic])[topic]
    lake = _HeldLake({(old_id, 0): 4})
    pipeline = _Pipeline(lake)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    def assigned() -> set[TopicPartition]:
        return engine.consumer.assignment() if engine.consumer is not None else set()

    async def scenario() -> str:
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: asyncio.to_thread(lake.entered.wait, 0.5), "the read", task)
            await asyncio.to_thread(admin.delete_topics, [topic])

            async def revoked() -> bool:
                gone = topic not in await asyncio.to_thread(admin.list_topics)
                return gone and tp not in assigned()

            await _until(revoked, "the topic deleted and its partition revoked", task)
            await asyncio.to_thread(admin.create_topics, [NewTopic(topic, 1, 1)])
            await asyncio.to_thread(_produce, kafka_bootstrap, topic, 8)

            async def back() -> bool:
                return tp in assigned()

            await _until(back, "the new topic's partition assigned", task)
            new_id = topic_ids(settings, [topic])[topic]
            assert new_id != old_id
            lake.release.set()

            async def caught_up() -> bool:
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return parts[0].committed == 8 and len(pipeline.seen) > 0

            await _until(caught_up, "the group's commit at the new topic's end", task)
            return new_id
        finally:
            lake.release.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        new_id = asyncio.run(scenario())
    finally:
        admin.close()
    in_kafka = [(new_id, p, o) for _, p, o in kafka_records(kafka_bootstrap, [topic])]
    assert len(in_kafka) == 8
    assert sorted(pipeline.seen) == sorted(in_kafka), pipeline.seen
