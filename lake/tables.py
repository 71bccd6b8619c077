"""Names, schemas and partitioning of every table the ingest path writes.

``silver/<kind>`` holds valid typed rows (schema :func:`schemas.silver_schema`, re-exported here);
``quarantine/<kind>`` every rejected message with its raw bytes, all its reasons and its Kafka
coordinates; ``ops/duplicates`` every resent event that was not written again; and
``ops/validation_runs`` one row per micro-batch with its counts, so the accounting invariant
(every consumed offset in exactly one of silver, quarantine, duplicates) can be checked from the
lake alone.
"""

from __future__ import annotations

import pyarrow as pa

from schemas import EventKind, silver_schema
from schemas.silver import PARTITION_COLUMNS, TIMESTAMP

__all__ = [
    "DUPLICATES",
    "DUPLICATES_SCHEMA",
    "PLAIN_COLUMNS",
    "QUARANTINE_PARTITIONS",
    "QUARANTINE_SCHEMA",
    "RUNS",
    "RUNS_SCHEMA",
    "SILVER_PARTITIONS",
    "quarantine_table",
    "silver_schema",
    "silver_table",
]


SILVER_PARTITIONS = PARTITION_COLUMNS
QUARANTINE_PARTITIONS = ("tenant", "date")
DUPLICATES = "ops/duplicates"
RUNS = "ops/validation_runs"

PLAIN_COLUMNS = (
    "event_id",
    "content_hash",
    "kafka_offset",
    "original_offset",
    "value",
    "event_time",
    "sent_time",
)
"""Columns written without a Parquet dictionary (:func:`lake.delta.writer_properties`), in
whichever table has them: nearly every value is distinct, so a dictionary only costs CPU."""


def silver_table(kind: EventKind | str) -> str:
    """Table name of the valid rows of ``kind``."""
    return f"silver/{EventKind(kind).value}"


def quarantine_table(kind: EventKind | str) -> str:
    """Table name of the rejected messages of ``kind``."""
    return f"quarantine/{EventKind(kind).value}"


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("kafka_timestamp", TIMESTAMP),
        pa.field("kafka_key", pa.binary()),
        pa.field("raw", pa.binary(), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("details", pa.list_(pa.string()), nullable=False),
        pa.field("suite_version", pa.string()),
        pa.field("quarantined_at", TIMESTAMP, nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("kafka_topic_id", pa.string()),
    ]
)
"""``stage`` is ``decode`` (the event schema rejected it) or ``validate`` (a drop expectation)."""

DUPLICATES_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("original_offset", pa.int64()),
        pa.field("detected_at", TIMESTAMP, nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("kafka_topic_id", pa.string()),
    ]
)
"""``original_offset`` is the offset (same topic and partition) whose copy reached silver."""

_COUNT = pa.struct([("name", pa.string()), ("count", pa.int64())])

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("worker", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("finished_at", TIMESTAMP, nullable=False),
        pa.field("consumed", pa.int64(), nullable=False),
        pa.field("silver_events", pa.int64(), nullable=False),
        pa.field("silver_rows", pa.int64(), nullable=False),
        pa.field("quarantined", pa.int64(), nullable=False),
        pa.field("duplicates", pa.int64(), nullable=False),
        pa.field("quarantined_by_reason", pa.list_(_COUNT), nullable=False),
        pa.field("warn_counts", pa.list_(_COUNT), nullable=False),
        pa.field(
            "batch_checks",
            pa.list_(
                pa.struct(
                    [("name", pa.string()), ("success", pa.bool_()), ("observed", pa.float64())]
                )
            ),
            nullable=False,
        ),
        pa.field("failed_expectations", pa.list_(pa.string()), nullable=False),
        pa.field("suite_version", pa.string()),
        pa.field("registry_version", pa.int64()),
        pa.field(
            "offsets",
            pa.list_(
                pa.struct(
                    [
                        ("topic", pa.string()),
                        ("partition", pa.int32()),
                        ("first_offset", pa.int64()),
                        ("last_offset", pa.int64()),
                    ]
                )
            ),
            nullable=False,
        ),
        pa.field("decode_ms", pa.float64(), nullable=False),
        pa.field("validate_ms", pa.float64(), nullable=False),
        pa.field("write_ms", pa.float64(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
    ]
)
"""Counts cover only offsets this run wrote for the first time, so they add up across a
crash and its replay."""
