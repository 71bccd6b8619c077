"""The batch engine keeps its group membership while a long batch is being written.

A batch of tens of thousands of events takes seconds to decode, validate and commit. If that
work blocked the event loop, the consumer would miss its heartbeats, the group would evict the
worker mid-batch and the offset commit after the batch would fail. Here the pipeline is a
stand-in that takes longer than the session timeout on its first batch; the consumer and broker
are real.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from lake import WriteResult
from maxlake.settings import Settings
from schemas import EventKind
from streams.batch_engine import BatchEngine
from streams.ingest import RawMessage
from streams.offsets import group_offsets
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration

TENANT = "northwind-auto"
SESSION_TIMEOUT_S = 6.0


class _Writer:
    def committed_offsets(
        self,
        kind: str,
        partitions: list[tuple[str, int]],
        topic_ids: dict[str, str] | None = None,
        *,
        worker: str = "",
    ) -> dict[tuple[str, int], int]:
        del kind, partitions, topic_ids, worker
        return {}

    def handle(self) -> _Writer:
        return self

    def stored_offsets(
        self,
        table: str,
        partitions: list[tuple[str, int]],
        topic_ids: dict[str, str],
        worker: str,
    ) -> dict[tuple[str, int], int]:
        del table, partitions, topic_ids, worker
        return {}


class _SlowPipeline:
    """Records what it is given; the first batch takes twice the session timeout."""

    def __init__(self) -> None:
        self.writer = _Writer()
        self.worker = "slow"
        self.seen: list[tuple[int, int]] = []
        self.forgotten = 0

    def forget(self, topic: str, partition: int) -> None:
        del topic, partition
        self.forgotten += 1

    def prepare(self, kind: EventKind, messages: list[RawMessage]) -> list[list[RawMessage]]:
        del kind
        if not self.seen:
            time.sleep(2 * SESSION_TIMEOUT_S)
        self.seen.extend((m.partition, m.offset) for m in messages)
        return [messages]

    def write(self, outputs: list[list[RawMessage]]) -> WriteResult:
        consumed = sum(len(messages) for messages in outputs)
        return WriteResult(consumed, 0, 0, 0, 0, 0, 0.0)


def test_a_batch_longer_than_the_session_timeout_keeps_the_partitions(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique_name,
        group_id=f"{unique_name}-ingest",
        lake_root=str(tmp_path / "lake"),
        topic_partitions=2,
        broker_session_timeout_s=SESSION_TIMEOUT_S,
        batch_max_events=1000,
        batch_wait_s=0.5,
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(40):
        producer.send(topic, key=f"m{i % 4}".encode(), value=b"{}")
    producer.flush()
    producer.close()

    pipeline = _SlowPipeline()
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            assert not task.done(), task.exception()
            committed = await asyncio.to_thread(_committed, settings, topic)
            if len(pipeline.seen) >= 40 and committed == 40:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())

    assert sorted(pipeline.seen) == sorted(set(pipeline.seen)), "a record was processed twice"
    assert len(pipeline.seen) == 40
    assert _committed(settings, topic) == 40
    # One assignment at start-up; an eviction mid-batch would revoke and reassign (more calls).
    assert pipeline.forgotten == 2


def _committed(settings: Settings, topic: str) -> int:
    parts = group_offsets(settings, [topic], group_id=settings.group_id)
    return sum(p.committed or 0 for p in parts)
