"""Reads the ingest path needs from the lake (kept apart from the writer)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lake.delta import DeltaStore
from lake.tables import silver_table

__all__ = ["recent_event_ids"]


def recent_event_ids(
    store: DeltaStore, kind: str, *, tenant: str, topic: str, partition: int, since: date
) -> pa.Table:
    """``event_id`` and ``kafka_offset`` of silver rows of one Kafka partition since a date.

    This is what the dedupe horizon means: resends are recognised when the first copy reached
    silver with an event date on or after ``since``. Partition pruning on tenant and date keeps
    the scan to the horizon.
    """
    table = store.open(silver_table(kind))
    if table is None:
        return pa.table(
            {"event_id": pa.array([], pa.string()), "kafka_offset": pa.array([], pa.int64())}
        )
    dataset = table.to_pyarrow_dataset()
    flt = (
        (ds.field("tenant") == tenant)
        & (ds.field("date") >= pa.scalar(since, pa.date32()))
        & (ds.field("kafka_topic") == topic)
        & (ds.field("kafka_partition") == pa.scalar(partition, pa.int32()))
    )
    rows = dataset.to_table(columns=["event_id", "kafka_offset"], filter=flt)
    grouped = rows.group_by("event_id").aggregate([("kafka_offset", "min")])
    return pa.table(
        {
            "event_id": grouped["event_id"],
            "kafka_offset": pc.cast(grouped["kafka_offset_min"], pa.int64()),
        }
    )
