"""The batch ingest engine: the same pipeline, fed by whole fetches instead of Faust streams.

Faust's stream machinery costs several asyncio tasks and queue hand-offs per message, which caps
one worker process at roughly 10-25k messages/s (see docs/BENCHMARKS.md), below the ingest target.
This engine keeps the Faust app (lifecycle, signals, logging, timers) but runs the consumer loop
as a Faust task over aiokafka's ``getmany``: a fetch returns thousands of records parsed by
aiokafka's C extension, the batch is split by event kind and handed to the same
:class:`~streams.ingest.IngestPipeline`, and offsets are committed to Kafka only after the Delta
commits — the same exactly-once contract as the agent engine. On assignment it seeks each
partition past what the lake already holds (``ops/validation_runs`` app transactions), so a
restart does not even re-read written offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from lake import app_id
from maxlake.settings import Settings
from schemas import EventKind
from streams.ingest import IngestPipeline, RawMessage, log_batch

__all__ = ["BatchEngine"]

logger = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.engine.pipeline().forget(tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        for tp in assigned:
            self.engine.pipeline().forget(tp.topic, tp.partition)
        await self.engine.seek_past_lake(list(assigned))


class BatchEngine:
    """One aiokafka consumer over every ingest topic; batches of up to ``batch_max_events``."""

    def __init__(
        self,
        settings: Settings,
        topics: dict[str, EventKind],
        pipeline: Callable[[], IngestPipeline],
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.pipeline = pipeline
        self.consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Consume until cancelled (Faust cancels its tasks on shutdown)."""
        settings = self.settings
        security = settings.kafka_security()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_max_events,
            fetch_max_bytes=64 << 20,
            max_partition_fetch_bytes=16 << 20,
            session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=max(int(settings.broker_session_timeout_s * 100), 500),
            max_poll_interval_ms=300_000,
            **security,
        )
        consumer.subscribe(list(self.topics), listener=_Rebalance(self))
        self.consumer = consumer
        await consumer.start()
        try:
            while True:
                records = await self._fill_batch(consumer)
                if records:
                    await self._process(consumer, records)
        finally:
            await consumer.stop()

    async def _fill_batch(self, consumer: AIOKafkaConsumer) -> list[Any]:
        limit = self.settings.batch_max_events
        deadline = time.monotonic() + self.settings.batch_wait_s
        records: list[Any] = []
        while len(records) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            fetched = await consumer.getmany(
                timeout_ms=int(remaining * 1000), max_records=limit - len(records)
            )
            for batch in fetched.values():
                records.extend(batch)
        return records

    async def _process(self, consumer: AIOKafkaConsumer, records: list[Any]) -> None:
        by_kind: dict[EventKind, list[RawMessage]] = {}
        for r in records:
            by_kind.setdefault(self.topics[r.topic], []).append(
                RawMessage(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
            )
        pipeline = self.pipeline()
        for kind, messages in by_kind.items():
            result = pipeline.process(kind, messages)
            log_batch(kind, result)
        await consumer.commit(_next_offsets(records))

    async def seek_past_lake(self, assigned: Sequence[TopicPartition]) -> None:
        """Start each assigned partition after the last offset fully accounted in the lake."""
        if self.consumer is None or not assigned:
            return
        writer = self.pipeline().writer
        loop = asyncio.get_running_loop()
        versions = await loop.run_in_executor(
            None,
            writer.committed_offsets,
            "",
            [(tp.topic, tp.partition) for tp in assigned],
        )
        for tp in assigned:
            done = versions.get(app_id(tp.topic, tp.partition), -1)
            if done >= 0:
                committed = await self.consumer.committed(tp)
                if committed is None or committed <= done:
                    self.consumer.seek(tp, done + 1)
                    logger.info(
                        "%s[%d]: lake holds up to %d, seeking", tp.topic, tp.partition, done
                    )


def _next_offsets(records: Sequence[Any]) -> dict[TopicPartition, int]:
    nxt: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        if r.offset + 1 > nxt.get(tp, -1):
            nxt[tp] = r.offset + 1
    return nxt
