"""Builders of valid v1 events for the schemas tests; override any field by keyword."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

_ENVELOPE: dict[str, Any] = {
    "schema_version": 1,
    "tenant": "northwind-auto",
    "plant": "stuttgart",
    "line": "block-l1",
    "machine": "cnc-101",
    "event_time": "2026-11-26T10:00:00.123Z",
}


def _event(
    kind: str, event_id: Any, body: dict[str, Any], fields: dict[str, Any]
) -> dict[str, Any]:
    return {**_ENVELOPE, "event_id": event_id, "kind": kind, **body, **fields}


def telemetry(event_id: Any = "t-1", **fields: Any) -> dict[str, Any]:
    """A single-reading telemetry event."""
    reading = {"tag": "spindle_speed", "value": 12000, "unit": "rpm", "quality": "GOOD"}
    return _event("telemetry", event_id, {"reading": reading}, fields)


def machine_event(event_id: str = "m-1", **fields: Any) -> dict[str, Any]:
    """A STATE machine event."""
    return _event("machine_event", event_id, {"event_type": "STATE", "state": "RUNNING"}, fields)


def inspection(event_id: str = "i-1", **fields: Any) -> dict[str, Any]:
    """A FAIL inspection of one part made on two machines."""
    body = {
        "part_serial": "NW-BLK-000123",
        "lot": "LOT-2026-11-26-A",
        "machines": ["cnc-101", "cnc-102"],
        "process_start": "2026-11-26T09:00:00Z",
        "process_end": "2026-11-26T10:30:00+01:00",
        "result": "FAIL",
        "defect_codes": ["BURR"],
        "dimensions": [
            {"name": "bore_diameter", "value": 82.012, "unit": "mm"},
            {"name": "flatness", "value": 0.02},
        ],
    }
    return _event("inspection", event_id, body, fields)


def without(event: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``event`` minus ``keys``."""
    return {k: v for k, v in event.items() if k not in keys}


def encode(*events: dict[str, Any]) -> list[bytes]:
    """Kafka message values of ``events``."""
    return [orjson.dumps(e) for e in events]
