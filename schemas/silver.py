"""Arrow schemas of the lake's silver tables.

:data:`TIMESTAMP` (microseconds, UTC) is the one timestamp type of every lake table; modules that
build a table schema or a timestamp filter import it from here.
"""

from __future__ import annotations

import pyarrow as pa

from schemas._columns import TIMESTAMP
from schemas.events import event_schema_for
from schemas.events.telemetry import CONVERSION_FIELDS
from schemas.kinds import EventKind

__all__ = ["CONVERSION_FIELDS", "INGEST_FIELDS", "PARTITION_COLUMNS", "TIMESTAMP", "silver_schema"]

PARTITION_COLUMNS = ("tenant", "plant", "date")
"""Partition columns of every silver table (fixed at table creation)."""

INGEST_FIELDS = (
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("ingested_at", TIMESTAMP, nullable=False),
    pa.field("kafka_topic_id", pa.string()),
    pa.field("content_hash", pa.int64()),
)
"""Columns the ingest worker appends to decoded rows: where and when each row was read.

``kafka_topic_id`` is the Kafka topic id (the topic's lineage; null in rows written before
lineages were recorded, see lake/lineage.py). ``content_hash`` is the 64-bit hash of the
message's canonical payload (streams/content_hash.py), what dedupe compares a resend with
(null in rows written before it existed); it is never shared (lake/sharing/deid.py)."""


def silver_schema(kind: EventKind | str) -> pa.Schema:
    """Schema of the silver table of ``kind``: the decoded row columns (without ``_msg``),
    the event schema's ``silver_extra_fields`` (telemetry: :data:`CONVERSION_FIELDS`), then
    :data:`INGEST_FIELDS`.

    Raises:
        UnknownKindError: for an unknown kind name.
    """
    event_schema = event_schema_for(kind)
    row = event_schema.row_schema
    body = (f for f in row if f.name != "_msg")
    return pa.schema([*body, *event_schema.silver_extra_fields, *INGEST_FIELDS])
