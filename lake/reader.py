"""Reads the ingest path needs from the lake (kept apart from the writer)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lake.delta import DeltaStore
from lake.tables import DUPLICATES, silver_table

__all__ = ["duplicate_offsets", "recent_event_ids"]


def recent_event_ids(
    store: DeltaStore,
    kind: str,
    *,
    tenant: str,
    topic: str,
    since: date,
    partition: int | None = None,
) -> pa.Table:
    """``event_id``, ``kafka_partition``, ``kafka_offset`` and ``content_hash`` (int64, null
    when unknown) of silver rows of one Kafka topic since a date, one row per event id.

    This is what the dedupe horizon means: resends are recognised when the first copy reached
    silver with an event date on or after ``since``. A resend may arrive on another partition
    than its first copy (another key), so by default every partition of the topic is read;
    ``partition`` narrows it to one. Partition pruning on tenant and date keeps the scan to
    the horizon. ``content_hash`` is the first copy's (:mod:`streams.content_hash`); rows
    written before content hashes have none.
    """
    flt = (
        (ds.field("tenant") == tenant)
        & (ds.field("date") >= pa.scalar(since, pa.date32()))
        & (ds.field("kafka_topic") == topic)
    )
    if partition is not None:
        flt &= ds.field("kafka_partition") == pa.scalar(partition, pa.int32())
    name = silver_table(kind)
    schema = store.schema(name)
    hashed = schema is not None and "content_hash" in schema.names
    columns = ["event_id", "kafka_partition", "kafka_offset"]
    rows = store.read(name, columns=[*columns, "content_hash"] if hashed else columns, filter=flt)
    if rows is None:
        return pa.table(
            {
                "event_id": pa.array([], pa.string()),
                "kafka_partition": pa.array([], pa.int32()),
                "kafka_offset": pa.array([], pa.int64()),
                "content_hash": pa.array([], pa.int64()),
            }
        )
    if not hashed:
        rows = rows.append_column("content_hash", pa.nulls(rows.num_rows, pa.int64()))
    # An event id is in silver at one offset (the accounting invariant), so its rows share
    # one content hash.
    grouped = rows.group_by("event_id").aggregate(
        [("kafka_partition", "min"), ("kafka_offset", "min"), ("content_hash", "max")]
    )
    return pa.table(
        {
            "event_id": grouped["event_id"],
            "kafka_partition": pc.cast(grouped["kafka_partition_min"], pa.int32()),
            "kafka_offset": pc.cast(grouped["kafka_offset_min"], pa.int64()),
            "content_hash": pc.cast(grouped["content_hash_max"], pa.int64()),
        }
    )


def duplicate_offsets(
    store: DeltaStore,
    kind: str,
    *,
    topic: str,
    partition: int,
    first: int,
    last: int,
    topic_id: str | None = None,
) -> set[int]:
    """Offsets in ``[first, last]`` of one partition that ``ops/duplicates`` holds for ``kind``.

    Used on replay: a decision the lake already committed for an offset must stand. With a
    ``topic_id``, rows of that lineage and rows without one (written before lineages; the
    caller only asks for offsets its lineage's stored versions cover) count.
    """
    schema = store.schema(DUPLICATES)
    if schema is None:
        return set()
    flt = (
        (ds.field("kind") == kind)
        & (ds.field("kafka_topic") == topic)
        & (ds.field("kafka_partition") == pa.scalar(partition, pa.int32()))
        & (ds.field("kafka_offset") >= pa.scalar(first, pa.int64()))
        & (ds.field("kafka_offset") <= pa.scalar(last, pa.int64()))
    )
    if topic_id is not None and "kafka_topic_id" in schema.names:
        flt &= (ds.field("kafka_topic_id") == topic_id) | ds.field("kafka_topic_id").is_null()
    rows = store.read(DUPLICATES, columns=["kafka_offset"], filter=flt)
    if rows is None:
        return set()
    return {int(o) for o in rows["kafka_offset"].to_pylist()}
