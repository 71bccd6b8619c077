"""The gateway judges rows exactly as the decoder produces them from plant JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from quality import ValidationGateway
from schemas import event_schema_for

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ENVELOPE = {
    "schema_version": 1,
    "tenant": "circuitry-electronics",
    "plant": "penang",
    "line": "smt-1",
    "event_time": "2026-11-26T11:00:00Z",
    "sent_time": "2026-11-26T11:00:01Z",
}


def _decode(kind: str, events: list[dict[str, Any]]) -> Any:
    messages = [orjson.dumps({**ENVELOPE, "kind": kind, **e}) for e in events]
    result = event_schema_for(kind).decode(messages, tenant="circuitry-electronics", now=NOW)
    assert result.rejections == []
    return result.rows


def test_multi_reading_telemetry_is_judged_per_reading(gateway: ValidationGateway) -> None:
    readings = [
        {"tag": "reflow_zone_temp", "value": 245.0, "unit": "degC"},
        {"tag": "reflow_zone_temp", "value": 351.0, "unit": "degC"},
        {"tag": "o2_ppm", "value": 800.0, "unit": "%", "quality": "BAD"},
    ]
    rows = _decode("telemetry", [{"event_id": "t-1", "machine": "reflow-1", "readings": readings}])
    verdict = gateway.validate("telemetry", rows)
    assert rows.column("_msg").to_pylist() == [0, 0, 0]
    assert verdict.drop_reasons == [
        (),
        ("tag_value_not_above_physical_max",),
        ("unit_matches_registry",),
    ]
    assert not verdict.batch_results["bad_quality_share_at_most_5pct"].success


def test_decoded_alarms_and_inspections(gateway: ValidationGateway) -> None:
    alarms = _decode(
        "machine_event",
        [
            {"event_id": "m-1", "machine": "pnp-11", "event_type": "ALARM",
             "alarm": {"code": "PP-NZ", "severity": 500}},
            {"event_id": "m-2", "machine": "pnp-11", "event_type": "ALARM",
             "alarm": {"code": "RO-01", "severity": 800}},
        ],
    )  # fmt: skip
    assert gateway.validate("machine_event", alarms).drop.tolist() == [False, True]
    parts = _decode(
        "inspection",
        [
            {"event_id": "i-1", "machine": "reflow-1", "part_serial": "P-1", "lot": "L",
             "machines": ["pnp-11", "reflow-1"], "process_start": "2026-11-26T10:00:00Z",
             "process_end": "2026-11-26T10:20:00Z", "result": "FAIL",
             "defect_codes": ["BRIDGING"]},
            {"event_id": "i-2", "machine": "reflow-1", "part_serial": "P-2", "lot": "L",
             "machines": ["pnp-11", "cnc-101"], "process_start": "2026-11-26T10:00:00Z",
             "process_end": "2026-11-26T10:20:00Z", "result": "PASS"},
        ],
    )  # fmt: skip
    verdict = gateway.validate("inspection", parts)
    assert verdict.drop_reasons == [(), ("machines_known_for_tenant",)]
