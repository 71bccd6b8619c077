"""Kafka-side numbers for operations: committed offsets, log start and end, lag."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    NotCoordinatorError,
)

from maxlake.settings import Settings
from streams.topics import admin_client

__all__ = ["PartitionOffsets", "committed_data_offsets", "committed_offset", "group_offsets"]


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition of an ingest topic as the consumer group sees it."""

    topic: str
    partition: int
    start: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        """Messages not yet committed by the group (all of them when it never committed)."""
        return self.end - (self.committed if self.committed is not None else self.start)


def group_offsets(
    settings: Settings, topics: list[str], *, group_id: str | None = None
) -> list[PartitionOffsets]:
    """Start, end and committed offsets of every partition of ``topics`` for the group."""
    group = group_id or settings.group_id
    security = settings.kafka_security()
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **security)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, **security
    )
    try:
        committed = _committed(admin, group)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        starts = consumer.beginning_offsets(partitions)
        ends = consumer.end_offsets(partitions)
        return [
            PartitionOffsets(
                tp.topic,
                tp.partition,
                int(starts[tp]),
                int(ends[tp]),
                committed.get((tp.topic, tp.partition)),
            )
            for tp in partitions
        ]
    finally:
        consumer.close()
        admin.close()


def committed_offset(
    settings: Settings,
    topic: str,
    partition: int,
    *,
    group_id: str | None = None,
    timeout_s: float = 30.0,
) -> int | None:
    """The offset the group (default ``settings.group_id``) committed for ``topic[partition]``
    (the next one it reads); None when it committed none there.

    Raises:
        TopicAdminError: the broker could not be reached.
        KafkaError: the group coordinator kept answering that it moved or is loading.
    """
    with admin_client(settings, timeout_s) as admin:
        return _committed(admin, group_id or settings.group_id).get((topic, partition))


def _committed(admin: KafkaAdminClient, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets; none while the group coordinator does not exist yet
    (before any group ever committed, ``__consumer_offsets`` is created lazily).

    Right after a rebalance or a broker restart the coordinator may answer ``NOT_COORDINATOR``
    or ``COORDINATOR_LOAD_IN_PROGRESS`` for a moment: those are retried, then raised.
    """
    for attempt in range(20):
        try:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
        except CoordinatorNotAvailableError:
            if attempt == 19:
                return {}
            time.sleep(0.5)
            continue
        except (NotCoordinatorError, CoordinatorLoadInProgressError):
            if attempt == 19:
                raise
            time.sleep(0.5)
            continue
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    return {}


def committed_data_offsets(
    settings: Settings, topic: str, partition: int, offsets: list[int], *, timeout_s: float = 30.0
) -> set[int]:
    """The offsets of ``offsets`` that are committed data records of one partition.

    A ``read_committed`` consumer never returns transaction markers or records of aborted
    transactions: their offsets are gaps in what it reads. Each run of consecutive offsets is
    read once; offsets no longer in the log are not data either.
    """
    runs: list[tuple[int, int]] = []
    for offset in sorted(offsets):
        if runs and offset == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], offset)
        else:
            runs.append((offset, offset))
    tp = TopicPartition(topic, partition)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="latest",
        **settings.kafka_security(),
    )
    found: set[int] = set()
    try:
        consumer.assign([tp])
        end = int(consumer.end_offsets([tp])[tp])
        for lo, hi in runs:
            if lo >= end:
                continue
            consumer.seek(tp, lo)
            deadline = time.monotonic() + timeout_s
            while consumer.position(tp) <= min(hi, end - 1) and time.monotonic() < deadline:
                for record in consumer.poll(timeout_ms=500).get(tp, []):
                    if lo <= record.offset <= hi:
                        found.add(record.offset)
    finally:
        consumer.close()
    return found
