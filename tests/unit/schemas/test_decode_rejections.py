"""Every class of bad message is rejected with its stable reason and a detail naming the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from schemas import RejectReason, event_schema_for
from schemas.results import DecodeLimits
from tests.unit.schemas.events import NOW, encode, inspection, machine_event, telemetry, without

R = RejectReason


def _reading(**fields: Any) -> dict[str, Any]:
    return telemetry(reading={"tag": "spindle_speed", "value": 1.5, **fields})


RAW_CASES = [
    (b"", R.EMPTY, "empty"),
    (b"   \n", R.EMPTY, "empty"),
    (b'{"event_id": "x", ', R.MALFORMED_JSON, "malformed JSON"),
    (b"\xff\xfe{}", R.NOT_UTF8, "UTF-8"),
    (b'{"event_id": "caf\xe9"}', R.NOT_UTF8, "UTF-8"),
    (b'{"reading": {"value": NaN}}', R.NAN_OR_INFINITY, "NaN or Infinity"),
    (b'{"reading": {"value": -Infinity}}', R.NAN_OR_INFINITY, "NaN or Infinity"),
    (b'{"note": "NaN", "value": oops}', R.MALFORMED_JSON, "malformed JSON"),
    (b"[1, 2]", R.NOT_AN_OBJECT, "array"),
    (b'"telemetry"', R.NOT_AN_OBJECT, "string"),
    (b"null", R.NOT_AN_OBJECT, "null"),
]


@pytest.mark.parametrize(("raw", "reason", "needle"), RAW_CASES)
def test_unparseable_messages(raw: bytes, reason: RejectReason, needle: str) -> None:
    result = event_schema_for("telemetry").decode([raw], now=NOW)
    assert result.rows.num_rows == 0
    [rejection] = result.rejections
    assert (rejection.index, rejection.reason, rejection.event_id) == (0, reason, None)
    assert needle in rejection.detail
    assert result.event_ids == [None]


def test_oversized_message() -> None:
    raw = orjson.dumps(telemetry(padding="x" * 2000))
    result = event_schema_for("telemetry").decode(
        [raw], limits=DecodeLimits(max_message_bytes=1024)
    )
    [rejection] = result.rejections
    assert rejection.reason == R.OVERSIZED
    assert f"{len(raw)} bytes, the limit is 1024" in rejection.detail


FIELD_CASES = [
    (without(telemetry(), "event_id"), R.MISSING_FIELD, "field 'event_id' is required"),
    (without(telemetry(), "machine"), R.MISSING_FIELD, "field 'machine' is required"),
    (telemetry(plant=None), R.MISSING_FIELD, "field 'plant' is required"),
    (without(telemetry(), "reading"), R.MISSING_FIELD, "'reading' or 'readings' is required"),
    (telemetry(event_id=""), R.INVALID_VALUE, "field 'event_id': must not be empty"),
    (telemetry(event_id="e" * 129), R.INVALID_VALUE, "longer than 128 characters"),
    (telemetry(event_id=42), R.WRONG_TYPE, "field 'event_id': expected a string, got number 42"),
    (telemetry(line=["l1"]), R.WRONG_TYPE, "field 'line': expected a string, got array"),
    (telemetry(machine="cnc 101"), R.INVALID_VALUE, "field 'machine': must match"),
    (_reading(value="abc"), R.WRONG_TYPE,
     "field 'reading.value': expected a number, got string 'abc'"),
    (_reading(value=True), R.WRONG_TYPE, "field 'reading.value': expected a number, got boolean"),
    (_reading(value=None), R.MISSING_FIELD, "field 'reading.value' is required"),
    (_reading(tag=""), R.INVALID_VALUE, "field 'reading.tag': must match"),
    (_reading(quality="OK"), R.INVALID_VALUE,
     "field 'reading.quality': expected one of BAD, GOOD, UNCERTAIN, got string 'OK'"),
    (_reading(unit=5), R.WRONG_TYPE, "field 'reading.unit': expected a string"),
    (telemetry(reading=[1]), R.WRONG_TYPE, "field 'reading': expected an object"),
    (telemetry(readings=[{"tag": "a", "value": 1}]), R.INVALID_VALUE, "exactly one of them"),
    (telemetry(reading=None, readings=[]), R.INVALID_VALUE, "field 'readings': must not be empty"),
    (telemetry(reading=None, readings={"tag": "a"}), R.WRONG_TYPE, "expected an array"),
    (telemetry(reading=None, readings=[{"tag": "a", "value": 1}] * 1001), R.INVALID_VALUE,
     "1001 items, at most 1000"),
    (telemetry(reading=None, readings=[{"tag": "a", "value": 1}, {"tag": "b", "value": "abc"}]),
     R.WRONG_TYPE, "field 'readings[1].value': expected a number, got string 'abc'"),
    (telemetry(reading=None, readings=[{"tag": "a", "value": 1}, 7]), R.WRONG_TYPE,
     "field 'readings[1]': expected an object, got number 7"),
    (telemetry(schema_version=2), R.UNKNOWN_SCHEMA_VERSION,
     "field 'schema_version': number 2 is not supported (supported: 1)"),
    (telemetry(schema_version="1"), R.WRONG_TYPE, "field 'schema_version': expected an integer"),
    (without(telemetry(), "schema_version"), R.MISSING_FIELD, "field 'schema_version'"),
    (telemetry(kind="inspection"), R.KIND_MISMATCH,
     "field 'kind': string 'inspection' was sent to a 'telemetry' topic"),
    (telemetry(kind=None), R.MISSING_FIELD, "field 'kind' is required"),
    (telemetry(event_time="2026-11-26"), R.INVALID_TIMESTAMP,
     "field 'event_time': expected an RFC 3339 timestamp"),
    (telemetry(event_time="2026-11-26T10:00Z"), R.INVALID_TIMESTAMP, "field 'event_time'"),
    (telemetry(event_time="2026-11-26T10:00:00+0100"), R.INVALID_TIMESTAMP, "field 'event_time'"),
    (telemetry(event_time="2026-02-30T10:00:00Z"), R.INVALID_TIMESTAMP,
     "field 'event_time': not a valid date and time"),
    (telemetry(event_time=1764151200), R.WRONG_TYPE, "expected an RFC 3339 timestamp string"),
    (telemetry(sent_time="soon"), R.INVALID_TIMESTAMP, "field 'sent_time'"),
    (telemetry(event_time="2026-11-26T12:05:01Z"), R.EVENT_TIME_IN_FUTURE,
     "301 s in the future (at most 300 s allowed)"),
    (telemetry(event_time="2025-10-01T00:00:00Z"), R.EVENT_TIME_TOO_OLD,
     "days old (at most 400 days allowed)"),
]  # fmt: skip


@pytest.mark.parametrize(("event", "reason", "needle"), FIELD_CASES)
def test_bad_telemetry_fields(event: dict[str, Any], reason: RejectReason, needle: str) -> None:
    result = event_schema_for("telemetry").decode(encode(event), now=NOW)
    assert result.rows.num_rows == 0
    [rejection] = result.rejections
    assert rejection.reason == reason, rejection.detail
    assert needle in rejection.detail


def test_event_time_window_edges_are_inclusive_and_limits_apply() -> None:
    at_edge = telemetry(event_time="2026-11-26T12:05:00Z")
    assert event_schema_for("telemetry").decode(encode(at_edge), now=NOW).rejections == []
    strict = DecodeLimits(max_future_skew=timedelta(0), max_event_age=timedelta(hours=1))
    result = event_schema_for("telemetry").decode(
        encode(at_edge, telemetry()), now=NOW, limits=strict
    )
    assert [r.reason for r in result.rejections] == [R.EVENT_TIME_IN_FUTURE, R.EVENT_TIME_TOO_OLD]


def test_tenant_mismatch_only_when_the_topic_tenant_is_given() -> None:
    event = encode(telemetry(tenant="ironbridge-steel"))
    assert event_schema_for("telemetry").decode(event, now=NOW).rejections == []
    [rejection] = (
        event_schema_for("telemetry").decode(event, tenant="northwind-auto", now=NOW).rejections
    )
    assert rejection.reason == R.TENANT_MISMATCH
    assert "'ironbridge-steel' differs from the topic's tenant 'northwind-auto'" in rejection.detail
    assert rejection.event_id == "t-1"


@pytest.mark.parametrize(
    ("event", "reason", "needle"),
    [
        (machine_event(event_type="PAUSE"), R.INVALID_VALUE, "field 'event_type': expected one of"),
        (machine_event(state="SLEEPING"), R.INVALID_VALUE, "field 'state': expected one of"),
        (machine_event(state=None), R.MISSING_FIELD, "'state' is required when event_type"),
        (machine_event(event_type="ALARM"), R.MISSING_FIELD, "'alarm' is required"),
        (machine_event(event_type="ALARM", alarm={"code": "A1", "severity": 0}), R.INVALID_VALUE,
         "field 'alarm.severity': must be an integer in 1..1000, got number 0"),
        (machine_event(event_type="ALARM", alarm={"code": "A1", "severity": 7.5}), R.WRONG_TYPE,
         "field 'alarm.severity': expected an integer"),
        (machine_event(event_type="ALARM", alarm={"severity": 10}), R.MISSING_FIELD, "alarm.code"),
        (machine_event(event_type="ALARM", alarm={"code": "A", "severity": 9, "text": "x" * 1001}),
         R.INVALID_VALUE, "field 'alarm.text': longer than 1000 characters"),
        (machine_event(alarm="overheat"), R.WRONG_TYPE, "field 'alarm': expected an object"),
        (machine_event(event_type="ALARM", alarm={"code": "", "severity": 10}), R.INVALID_VALUE,
         "field 'alarm.code': must not be empty"),
    ],
)  # fmt: skip
def test_bad_machine_events(event: dict[str, Any], reason: RejectReason, needle: str) -> None:
    [rejection] = event_schema_for("machine_event").decode(encode(event), now=NOW).rejections
    assert rejection.reason == reason, rejection.detail
    assert needle in rejection.detail


@pytest.mark.parametrize(
    ("event", "reason", "needle"),
    [
        (inspection(process_end="2026-11-26T08:59:59Z"), R.INVALID_VALUE,
         "field 'process_end': earlier than 'process_start'"),
        (inspection(result="OK"), R.INVALID_VALUE, "field 'result': expected one of"),
        (inspection(machines=[]), R.INVALID_VALUE, "field 'machines': must not be empty"),
        (inspection(machines="cnc-101"), R.WRONG_TYPE, "field 'machines': expected an array"),
        (inspection(machines=["cnc-101", 5]), R.WRONG_TYPE, "'machines[1]': expected a string"),
        (without(inspection(), "lot"), R.MISSING_FIELD, "field 'lot' is required"),
        (inspection(defect_codes=[None]), R.MISSING_FIELD, "field 'defect_codes[0]'"),
        (inspection(dimensions=[{"name": "d", "value": "1.0"}]), R.WRONG_TYPE,
         "field 'dimensions[0].value': expected a number"),
        (inspection(dimensions=[{"value": 1.0}]), R.MISSING_FIELD, "field 'dimensions[0].name'"),
        (without(inspection(), "process_start"), R.MISSING_FIELD, "field 'process_start'"),
    ],
)  # fmt: skip
def test_bad_inspections(event: dict[str, Any], reason: RejectReason, needle: str) -> None:
    [rejection] = event_schema_for("inspection").decode(encode(event), now=NOW).rejections
    assert rejection.reason == reason, rejection.detail
    assert needle in rejection.detail


def test_mixed_batch_keeps_input_indices() -> None:
    multi = telemetry(
        "t-multi", reading=None, readings=[{"tag": "a", "value": 1}, {"tag": "b", "value": 2}]
    )
    messages = [
        *encode(telemetry("t-0")),
        b"not json",
        *encode(telemetry("t-2", tenant="other")),
        *encode(multi),
        b"",
        *encode(_reading(value="n/a") | {"event_id": "t-5"}),
        *encode(telemetry("t-6")),
    ]
    result = event_schema_for("telemetry").decode(messages, tenant="northwind-auto", now=NOW)
    assert result.rows.column("_msg").to_pylist() == [0, 3, 3, 6]
    assert result.rows.column("event_id").to_pylist() == ["t-0", "t-multi", "t-multi", "t-6"]
    assert [(r.index, r.reason, r.event_id) for r in result.rejections] == [
        (1, R.MALFORMED_JSON, None),
        (2, R.TENANT_MISMATCH, "t-2"),
        (4, R.EMPTY, None),
        (5, R.WRONG_TYPE, "t-5"),
    ]
    assert result.event_ids == ["t-0", None, "t-2", "t-multi", None, "t-5", "t-6"]


def test_first_problem_in_event_schema_order_wins() -> None:
    event = telemetry(schema_version=3, kind="inspection", tenant="bad tenant!")
    [rejection] = event_schema_for("telemetry").decode(encode(event), now=NOW).rejections
    assert rejection.reason == R.UNKNOWN_SCHEMA_VERSION


def test_times_outside_the_supported_range_are_rejected_not_passed_on() -> None:
    event = telemetry(sent_time="0001-01-01T00:00:00Z")
    result = event_schema_for("telemetry").decode(encode(event), now=NOW)
    assert result.rows.num_rows == 0
    (rejection,) = result.rejections
    assert rejection.reason is RejectReason.INVALID_TIMESTAMP
    assert "sent_time" in rejection.detail
    assert "supported range" in rejection.detail
