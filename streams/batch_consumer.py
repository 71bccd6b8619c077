"""The batch engine's Kafka consumer: how it fetches, and how much it buffers."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from maxlake.settings import Settings
from streams.kafka_records import RAW, install

__all__ = ["batch_consumer"]

_FETCH_MAX_BYTES = 8 << 20
_PARTITION_FETCH_MAX_BYTES = 2 << 20


def batch_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A new consumer of ``settings``' broker and group, not subscribed nor started: one
    :class:`~streams.kafka_records.RecordBlock` per partition and fetch, manual commits,
    read_committed, no offset reset."""
    install()
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        # One RecordBlock of columns per partition, decoded natively from the fetched
        # bytes, instead of a ConsumerRecord per record (streams/kafka_records.py).
        key_deserializer=RAW,
        group_id=settings.group_id,
        enable_auto_commit=False,
        # Every position is set on assignment from the lake (seek_past_lake); a position
        # Kafka no longer holds raises instead of a silent reset (see _reset).
        auto_offset_reset="none",
        isolation_level="read_committed",
        metadata_max_age_ms=10_000,
        max_poll_records=settings.batch_max_events,
        # Bounds what the client buffers ahead of the batch being filled. A partition's fetch
        # is decoded whole when the batch first takes from it, and the part the batch does not
        # take waits, decoded, for the next one: 2 MiB of lz4-compressed snapshots (~20,000
        # events, ~11 MB decoded) per partition peaked 33 MiB lower than 4 MiB at the same
        # events/s; 1 MiB cost ~3% of them (docs/BENCHMARKS.md, issue 20, seventeenth pass).
        fetch_max_bytes=_FETCH_MAX_BYTES,
        max_partition_fetch_bytes=_PARTITION_FETCH_MAX_BYTES,
        session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
        heartbeat_interval_ms=max(int(settings.broker_session_timeout_s * 100), 500),
        # aiokafka's default rebalance timeout is the session timeout: a worker still
        # writing the batches it holds when a rebalance began (a slow object store) was
        # dropped from the group, rejoined, and restarted the rebalance, in a loop.
        rebalance_timeout_ms=int(settings.broker_rebalance_timeout_s * 1000),
        max_poll_interval_ms=int(settings.broker_rebalance_timeout_s * 1000),
        **settings.kafka_security(),
    )
