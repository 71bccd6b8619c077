"""Valid events of every kind decode to the typed silver rows plants and model teams rely on."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from schemas import EVENT_SCHEMAS, EventKind, event_schema_for
from tests.unit.schemas.events import NOW, encode, inspection, machine_event, telemetry

_T0 = datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)


def test_telemetry_single_reading_round_trip() -> None:
    result = event_schema_for("telemetry").decode(encode(telemetry()), now=NOW)
    assert result.rejections == []
    assert result.event_ids == ["t-1"]
    assert result.rows.to_pylist() == [
        {
            "event_id": "t-1",
            "schema_version": 1,
            "tenant": "northwind-auto",
            "plant": "stuttgart",
            "line": "block-l1",
            "machine": "cnc-101",
            "event_time": _T0,
            "sent_time": None,
            "date": date(2026, 11, 26),
            "reading_index": 0,
            "tag": "spindle_speed",
            "value": 12000.0,
            "unit": "rpm",
            "quality": "GOOD",
            "_msg": 0,
        }
    ]


def test_telemetry_readings_array_gives_one_row_per_reading() -> None:
    event = telemetry(
        reading=None,
        readings=[
            {"tag": "spindle_temp", "value": 38.5, "unit": "degC"},
            {"tag": "vibration_rms", "value": 2, "quality": "UNCERTAIN"},
            {"tag": "tool_wear", "value": -0.0, "quality": "BAD"},
        ],
        event_time="2026-11-26T11:00:00.5+01:00",
        sent_time="2026-11-26T10:00:00.600Z",
    )
    result = event_schema_for(EventKind.TELEMETRY).decode(
        encode(telemetry("first"), event), now=NOW
    )
    rows = result.rows.to_pylist()
    assert [r["_msg"] for r in rows] == [0, 1, 1, 1]
    assert [
        (r["reading_index"], r["tag"], r["value"], r["unit"], r["quality"]) for r in rows[1:]
    ] == [
        (0, "spindle_temp", 38.5, "degC", "GOOD"),
        (1, "vibration_rms", 2.0, None, "UNCERTAIN"),
        (2, "tool_wear", 0.0, None, "BAD"),
    ]
    assert rows[1]["event_time"] == datetime(2026, 11, 26, 10, 0, 0, 500000, tzinfo=UTC)
    assert rows[1]["sent_time"] == datetime(2026, 11, 26, 10, 0, 0, 600000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),
        ("2026-11-26T10:00:00.123456789Z", datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-26T12:30:00+02:30", datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),
        ("2026-11-26T05:00:00.1-05:00", datetime(2026, 11, 26, 10, 0, 0, 100000, tzinfo=UTC)),
        ("2026-11-26 10:00:00Z", datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),
        ("2026-11-26t10:00:00z", datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),
    ],
)
def test_rfc3339_variants_become_utc_microseconds(text: str, expected: datetime) -> None:
    result = event_schema_for("telemetry").decode(encode(telemetry(event_time=text)), now=NOW)
    assert result.rejections == []
    assert result.rows.column("event_time").to_pylist() == [expected]


def test_utc_date_partition_follows_the_offset() -> None:
    event = telemetry(event_time="2026-11-26T00:30:00+01:00")
    rows = event_schema_for("telemetry").decode(encode(event), now=NOW).rows
    assert rows.column("date").to_pylist() == [date(2026, 11, 25)]


def test_machine_event_state_and_alarm_round_trip() -> None:
    alarm = machine_event(
        "m-2",
        event_type="ALARM",
        state=None,
        alarm={"code": "CNC-1001", "severity": 700, "text": "Spindle over temperature"},
    )
    result = event_schema_for("machine_event").decode(encode(machine_event(), alarm), now=NOW)
    assert result.rejections == []
    body = result.rows.select(
        ["event_id", "event_type", "state", "alarm_code", "alarm_severity", "alarm_text", "_msg"]
    )
    assert body.to_pylist() == [
        {"event_id": "m-1", "event_type": "STATE", "state": "RUNNING", "alarm_code": None,
         "alarm_severity": None, "alarm_text": None, "_msg": 0},
        {"event_id": "m-2", "event_type": "ALARM", "state": None, "alarm_code": "CNC-1001",
         "alarm_severity": 700, "alarm_text": "Spindle over temperature", "_msg": 1},
    ]  # fmt: skip


def test_inspection_round_trip_with_nested_lists() -> None:
    bare = inspection("i-2")
    del bare["defect_codes"], bare["dimensions"]
    result = event_schema_for("inspection").decode(encode(inspection(), bare), now=NOW)
    assert result.rejections == []
    rows = result.rows.to_pylist()
    assert rows[0]["machines"] == ["cnc-101", "cnc-102"]
    assert rows[0]["process_start"] == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert rows[0]["process_end"] == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert rows[0]["result"] == "FAIL"
    assert rows[0]["defect_codes"] == ["BURR"]
    assert rows[0]["dimensions"] == [
        {"name": "bore_diameter", "value": 82.012, "unit": "mm"},
        {"name": "flatness", "value": 0.02, "unit": None},
    ]
    assert (rows[1]["defect_codes"], rows[1]["dimensions"]) == ([], [])


def test_unknown_fields_are_ignored() -> None:
    event = telemetry(firmware="4.2.1", reading={"tag": "x1", "value": 1, "calibrated": True})
    result = event_schema_for("telemetry").decode(encode(event), now=NOW)
    assert result.rejections == []
    assert result.rows.num_rows == 1


@pytest.mark.parametrize("kind", list(EventKind))
def test_rows_have_exactly_the_row_schema_even_when_empty(kind: EventKind) -> None:
    event_schema = EVENT_SCHEMAS[kind]
    assert event_schema.row_schema.names[-1] == "_msg"
    assert event_schema.row_schema.field("_msg").type == pa.int32()
    for batch in ([], [b"{}"]):
        assert event_schema.decode(batch, now=NOW).rows.schema == event_schema.row_schema
    good = {"telemetry": telemetry, "machine_event": machine_event, "inspection": inspection}
    rows = event_schema.decode(encode(good[kind.value]()), now=NOW).rows
    assert rows.schema == event_schema.row_schema
    assert rows.num_rows == 1


def test_decode_restores_the_garbage_collector_and_takes_naive_now_as_utc() -> None:
    assert gc.isenabled()
    naive_now = NOW.replace(tzinfo=None)
    result = event_schema_for("telemetry").decode(encode(telemetry()), now=naive_now)
    assert result.rows.num_rows == 1
    assert gc.isenabled()
    gc.disable()
    try:
        event_schema_for("telemetry").decode([b"{}"], now=NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()
