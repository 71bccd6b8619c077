"""Lake schemas and event schema lookup."""

from __future__ import annotations

import pyarrow as pa
import pytest

from maxlake.errors import ConfigError
from schemas import EVENT_SCHEMAS, EventKind, event_schema_for, silver_schema
from schemas.silver import PARTITION_COLUMNS


@pytest.mark.parametrize("kind", list(EventKind))
def test_lake_schema_is_rows_plus_conversion_and_ingest_columns(
    kind: EventKind,
) -> None:
    schema = silver_schema(kind)
    row = EVENT_SCHEMAS[kind].row_schema
    converted = ["value_sent", "unit_sent"] if kind is EventKind.TELEMETRY else []
    assert schema.names == [
        *row.names[:-1],
        *converted,
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "ingested_at",
        "kafka_topic_id",
        "content_hash",
    ]
    assert schema.field("kafka_topic_id").type == pa.string()
    assert schema.field("content_hash").type == pa.int64()
    assert schema.field("kafka_partition").type == pa.int32()
    assert schema.field("kafka_offset").type == pa.int64()
    assert schema.field("ingested_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("date").type == pa.date32()
    assert set(PARTITION_COLUMNS) <= set(schema.names)


def test_common_columns_come_first_with_their_types() -> None:
    schema = silver_schema("telemetry")
    assert schema.names[:9] == [
        "event_id", "schema_version", "tenant", "plant", "line", "machine",
        "event_time", "sent_time", "date",
    ]  # fmt: skip
    assert schema.field("schema_version").type == pa.int16()
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("sent_time").nullable
    assert not schema.field("event_time").nullable


def test_event_schema_for_accepts_enum_or_name_and_lists_valid_kinds() -> None:
    assert event_schema_for("inspection") is event_schema_for(EventKind.INSPECTION)
    with pytest.raises(ConfigError, match="valid kinds: telemetry, machine_event, inspection"):
        event_schema_for("alarm")
