"""Positioning from the lake while the cluster changes under it (streams/batch_position.py).

The read of where a partition resumes runs in the background and may outlive rebalances (a slow
object store: a minute). Here the read is held until the test releases it, so the order of
events is fixed, not timed: the broker, the consumer group and the topic admin are real; the
lake is a stand-in that answers what it holds per lineage (topic id) and partition. What the
engine hands to the pipeline is checked against what Kafka holds, record by record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaPartition

from lake import WriteResult
from lake.lineage import Gap
from maxlake.settings import Settings
from schemas import EventKind
from streams import batch_consumer
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
        self.gaps: list[Gap] = []

    def handle(self) -> _HeldLake:
        return self

    def record_gap(self, gap: Gap, *, worker: str) -> None:
        del worker
        self.gaps.append(gap)

    def stored_offsets(
        self,
        table: str,
        partitions: list[tuple[str, int]],
        topic_ids: dict[str, str],
        worker: str,
    ) -> dict[tuple[str, int], int]:
        del table, worker
        self.reads.append(dict(topic_ids))
        # What the lake held when the read began, answered when the store gets to it.
        answer = {(t, p): self.holds.get((topic_ids[t], p), -1) for t, p in partitions}
        if len(self.reads) == 1:
            self.entered.set()
            self.release.wait(300)
        return answer


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


def _settings(bootstrap: str, name: str, tmp_path: Path) -> Settings:
    """One partition per topic, a 6 s session and small, quick batches."""
    return Settings(
        bootstrap_servers=bootstrap,
        topic_prefix=name,
        group_id=f"{name}-ingest",
        lake_root=str(tmp_path / "lake"),
        topic_partitions=1,
        broker_session_timeout_s=6.0,
        batch_max_events=1000,
        batch_wait_s=0.3,
    )


def test_a_read_begun_before_the_topic_was_created_again_does_not_position_the_new_one(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """A read of the lake that began under the topic's old id (the lake holds offsets 0-4 of
    that lineage) ends after the topic was deleted, created again and given 8 records. Its
    answer belongs to the old lineage: used as a lower bound for the new one, it skipped the
    new topic's offsets 0-4 for good and wrote 5-7 under the old id."""
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
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


class _Lake(_HeldLake):
    """A lake that holds what the pipeline wrote, read without waiting."""

    def __init__(self) -> None:
        super().__init__({})
        self.release.set()


class _WritingPipeline(_Pipeline):
    def write(self, outputs: list[list[RawMessage]]) -> WriteResult:
        for messages in outputs:
            for m in messages:
                key = (m.topic_id or "", m.partition)
                self.writer.holds[key] = max(self.writer.holds.get(key, -1), m.offset)
        return super().write(outputs)


def test_a_topic_created_again_while_consumed_is_read_from_its_first_offset(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """Deleted and created at once with more records than the worker had read of the old one
    (no out-of-range error to tell): the client sees the topic go and the group rebalances,
    so the new incarnation is positioned from the lake under its new id (this held)."""
    new_records = 9
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(kafka_bootstrap, topic, 6)
    lake = _Lake()
    pipeline = _WritingPipeline(lake)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    async def scenario() -> str:
        task = asyncio.create_task(engine.run())
        try:

            async def first() -> bool:
                return len(pipeline.seen) == 6

            await _until(first, "the first incarnation read", task)
            await asyncio.to_thread(admin.delete_topics, [topic])
            deadline = time.monotonic() + 60
            while True:
                try:
                    await asyncio.to_thread(admin.create_topics, [NewTopic(topic, 1, 1)])
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            await asyncio.to_thread(_produce, kafka_bootstrap, topic, new_records)
            new_id = topic_ids(settings, [topic])[topic]

            async def caught_up() -> bool:
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return parts[0].committed == new_records and any(
                    s[0] == new_id for s in pipeline.seen
                )

            await _until(caught_up, "the group's commit at the new topic's end", task)
            await asyncio.sleep(3)
            return new_id
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        new_id = asyncio.run(scenario())
    finally:
        admin.close()
    in_kafka = [(new_id, p, o) for _, p, o in kafka_records(kafka_bootstrap, [topic])]
    assert len(in_kafka) == new_records
    assert sorted(s for s in pipeline.seen if s[0] == new_id) == sorted(in_kafka), pipeline.seen


class _HeldPipeline(_Pipeline):
    """Prepares the first batch only once :attr:`go` is set (after setting :attr:`preparing`)."""

    def __init__(self, lake: _HeldLake) -> None:
        super().__init__(lake)
        self.preparing = threading.Event()
        self.go = threading.Event()

    def prepare(self, kind: EventKind, messages: list[RawMessage]) -> list[list[RawMessage]]:
        if not self.preparing.is_set():
            self.preparing.set()
            self.go.wait(300)
        return super().prepare(kind, messages)


def test_records_deleted_after_a_lower_bound_seek_are_no_gap_when_the_lake_holds_them(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A read begun before a rebalance (the lake held offsets 0-4 then) positions the partition
    at 5, a lower bound: meanwhile another owner wrote up to 299 (here: the lake's answer to
    any later read). While the worker reads through offsets the lake holds, retention
    (DeleteRecords) moves the log start to 200 past its position: the out-of-range position is
    not what the lake holds, so no offset below 300 may be recorded as lost.

    The out-of-range error comes right after records of the same batch: it was taken for a
    stale one and the partition fetched the same offset again, in a loop."""
    # One small record batch per fetch, so the position is behind the deletion when it comes.
    monkeypatch.setattr(batch_consumer, "_PARTITION_FETCH_MAX_BYTES", 2048)
    monkeypatch.setattr(batch_consumer, "_FETCH_MAX_BYTES", 2048)
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT, "other-tenant"], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    other = settings.topic_for("other-tenant", "telemetry")
    tp = TopicPartition(topic, 0)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=0)
    for i in range(300):
        producer.send(topic, key=f"m{i}".encode(), value=b"x" * 1024, partition=0).get(30)
    producer.close()
    tid = topic_ids(settings, [topic])[topic]
    lake = _HeldLake({(tid, 0): 4})
    pipeline = _HeldPipeline(lake)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    intruder = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=settings.group_id, enable_auto_commit=False
    )

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: asyncio.to_thread(lake.entered.wait, 0.5), "the read", task)
            assignments = engine._assignments
            # A member joins (for another topic): the group rebalances during the read, and
            # the partition is revoked and assigned to the same worker again.
            intruder.subscribe([other])

            async def rebalanced() -> bool:
                await asyncio.to_thread(intruder.poll, 200)
                return engine._assignments > assignments and tp in engine.consumer.assignment()  # type: ignore[union-attr]

            await _until(rebalanced, "a rebalance during the read", task)
            lake.holds[(tid, 0)] = 299  # what the partition's owner meanwhile wrote
            lake.release.set()
            await _until(lambda: asyncio.to_thread(pipeline.preparing.wait, 0.5), "a batch", task)
            await asyncio.to_thread(admin.delete_records, {tp: 200})
            pipeline.go.set()

            async def caught_up() -> bool:
                await asyncio.to_thread(intruder.poll, 0)
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return parts[0].committed == 300

            await _until(caught_up, "the group's commit at the end", task)
        finally:
            lake.release.set()
            pipeline.go.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        intruder.close()
        admin.close()
    assert min(o for _, _, o in pipeline.seen) == 5, "positioned at the lower bound"
    assert [(g.from_offset, g.to_offset) for g in lake.gaps if g.from_offset <= 299] == []
    out_of_range = [r for r in caplog.records if "out of range" in r.getMessage()]
    assert len(out_of_range) <= 3, f"{len(out_of_range)} out-of-range errors: handled in a loop"


class _HeldWritingPipeline(_HeldPipeline, _WritingPipeline):
    """Holds the first batch's preparation (:class:`_HeldPipeline`) and writes to the lake."""


def _recreate(admin: KafkaAdminClient, topic: str) -> None:
    """Delete ``topic`` and create it again (one partition) as soon as the broker lets."""
    admin.delete_topics([topic])
    deadline = time.monotonic() + 60
    while True:
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])
            return
        except TopicAlreadyExistsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_topic_created_again_unseen_by_the_client_is_read_from_its_first_offset(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The topic is deleted and created again (5 records) between two metadata refreshes of
    the client, while the worker has 500 records of the old incarnation in hand or buffered
    (no fetch, so no error and no rebalance tells it). Reading on at 500, the client gets an
    out-of-range error; the topic has a new id, so the engine seeks the new lineage back to its
    start, without a rebalance. The new topic's records 0-4 were then dropped as "fetched
    again" (the next expected offset was still 500) and offset 5 committed: lost, silently."""
    caplog.set_level(logging.INFO, logger="streams.batch_engine")
    new_records = 5
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    _produce(kafka_bootstrap, topic, 500)
    old_id = topic_ids(settings, [topic])[topic]
    lake = _Lake()
    pipeline = _HeldWritingPipeline(lake)
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
            await asyncio.to_thread(_produce, kafka_bootstrap, topic, new_records)
            new_id = topic_ids(settings, [topic])[topic]
            pipeline.go.set()

            async def new_topic_read() -> bool:
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return parts[0].committed == new_records

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
    assert rebalances == 0, "the client saw the topic go: not the scenario of this test"
    assert any("new topic id" in r.getMessage() for r in caplog.records)
    in_kafka = [(new_id, p, o) for _, p, o in kafka_records(kafka_bootstrap, [topic])]
    assert len(in_kafka) == new_records
    assert sorted(o for t, _, o in pipeline.seen if t == old_id) == list(range(500))
    assert sorted(s for s in pipeline.seen if s[0] == new_id) == sorted(in_kafka), [
        r.getMessage() for r in caplog.records if "fetched again" in r.getMessage()
    ]


class _SecondWriteHeld(_Pipeline):
    """Writes the second batch only once :attr:`go` is set (after setting :attr:`writing`):
    the first batch's commit is then done (batches commit in order)."""

    def __init__(self, lake: _HeldLake) -> None:
        super().__init__(lake)
        self.writes = 0
        self.writing = threading.Event()
        self.go = threading.Event()

    def write(self, outputs: list[list[RawMessage]]) -> WriteResult:
        self.writes += 1
        if self.writes == 2:
            self.writing.set()
            self.go.wait(300)
        return super().write(outputs)


def test_the_group_s_offset_does_not_go_back_after_a_lower_bound_seek(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """A read begun before a rebalance (the lake held offsets 0-4 then) positions the
    partition at 5, a lower bound, while the group committed 300 in the same lineage (another
    owner wrote and committed 0-299 meanwhile). Reading from 5, the worker committed 105
    after its first batch: the group's offset went back by 195 (lag shown that was not
    there) until it caught up."""
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT, "other-tenant"], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    other = settings.topic_for("other-tenant", "telemetry")
    tp = TopicPartition(topic, 0)
    _produce(kafka_bootstrap, topic, 320)
    tid = topic_ids(settings, [topic])[topic]
    lake = _HeldLake({(tid, 0): 4})
    pipeline = _SecondWriteHeld(lake)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    intruder = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=settings.group_id, enable_auto_commit=False
    )
    seen_by_operator: list[int] = []

    async def committed() -> int:
        await asyncio.to_thread(intruder.poll, 0)
        parts = await asyncio.to_thread(group_offsets, settings, [topic])
        return parts[0].committed or 0

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: asyncio.to_thread(lake.entered.wait, 0.5), "the read", task)
            assignments = engine._assignments
            intruder.subscribe([other])

            async def rebalanced() -> bool:
                await asyncio.to_thread(intruder.poll, 200)
                return engine._assignments > assignments and tp in engine.consumer.assignment()  # type: ignore[union-attr]

            await _until(rebalanced, "a rebalance during the read", task)
            # What the partition's owner meanwhile wrote and committed, as this engine commits.
            lake.holds[(tid, 0)] = 299
            await asyncio.to_thread(
                intruder.commit, {KafkaPartition(topic, 0): OffsetAndMetadata(300, tid, -1)}
            )
            seen_by_operator.append(await committed())
            lake.release.set()
            await _until(
                lambda: asyncio.to_thread(pipeline.writing.wait, 0.5), "a second batch", task
            )
            seen_by_operator.append(await committed())
            pipeline.go.set()

            async def caught_up() -> bool:
                seen_by_operator.append(await committed())
                return seen_by_operator[-1] == 320

            await _until(caught_up, "the group's commit at the end", task)
        finally:
            lake.release.set()
            pipeline.go.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        intruder.close()
    assert min(o for _, _, o in pipeline.seen) == 5, "positioned at the lower bound"
    assert sorted(o for _, _, o in pipeline.seen) == list(range(5, 320))
    assert seen_by_operator[:2] == [300, 300], seen_by_operator
    assert seen_by_operator == sorted(seen_by_operator), "the group's offset went back"
