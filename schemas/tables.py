"""Arrow schemas of the lake's silver tables."""

from __future__ import annotations

import pyarrow as pa

from schemas._columns import TIMESTAMP
from schemas.contracts import contract_for
from schemas.kinds import EventKind

__all__ = ["INGEST_FIELDS", "PARTITION_COLUMNS", "lake_schema"]

PARTITION_COLUMNS = ("tenant", "plant", "date")
"""Partition columns of every silver table (fixed at table creation)."""

INGEST_FIELDS = (
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("ingested_at", TIMESTAMP, nullable=False),
)
"""Columns the ingest worker appends to decoded rows: where and when each row was read."""


def lake_schema(kind: EventKind | str) -> pa.Schema:
    """Schema of the silver table of ``kind``: the decoded row columns (without ``_msg``)
    followed by :data:`INGEST_FIELDS`.

    Raises:
        UnknownKindError: for an unknown kind name.
    """
    row = contract_for(kind).row_schema
    return pa.schema([*(f for f in row if f.name != "_msg"), *INGEST_FIELDS])
