"""Hand-built row tables with the row schemas of the v1 event schemas.

Each builder takes a list of per-row overrides of a valid default row, so a test states only
what makes its row special.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from schemas import EventKind, event_schema_for

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

TELEMETRY = event_schema_for(EventKind.TELEMETRY).row_schema
MACHINE_EVENT = event_schema_for(EventKind.MACHINE_EVENT).row_schema
INSPECTION = event_schema_for(EventKind.INSPECTION).row_schema


def _envelope(i: int, tenant: str, plant: str, line: str, machine: str) -> dict[str, Any]:
    return {
        "event_id": f"e-{i}",
        "schema_version": 1,
        "tenant": tenant,
        "plant": plant,
        "line": line,
        "machine": machine,
        "event_time": T0,
        "sent_time": T0 + timedelta(seconds=2),
        "date": T0.date(),
        "_msg": i,
    }


def _table(
    schema: pa.Schema, defaults: dict[str, Any], overrides: list[dict[str, Any]]
) -> pa.Table:
    rows = []
    for i, extra in enumerate(overrides):
        row = {**_envelope(i, "northwind-auto", "stuttgart", "block-l1", "cnc-101"), **defaults}
        row.update(extra)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def telemetry(*overrides: dict[str, Any]) -> pa.Table:
    """Spindle-speed readings of cnc-101 (range 0..24000 rpm), one per override dict."""
    defaults = {
        "reading_index": 0,
        "tag": "spindle_speed",
        "value": 12000.0,
        "unit": "rpm",
        "quality": "GOOD",
    }
    return _table(TELEMETRY, defaults, list(overrides))


def machine_events(*overrides: dict[str, Any]) -> pa.Table:
    """STATE events of cnc-101 unless overridden."""
    defaults = {
        "event_type": "STATE",
        "state": "RUNNING",
        "alarm_code": None,
        "alarm_severity": None,
        "alarm_text": None,
    }
    return _table(MACHINE_EVENT, defaults, list(overrides))


def alarm(code: str, severity: int, **extra: Any) -> dict[str, Any]:
    """Overrides for an ALARM event."""
    return {
        "event_type": "ALARM",
        "state": None,
        "alarm_code": code,
        "alarm_severity": severity,
        **extra,
    }


def inspections(*overrides: dict[str, Any]) -> pa.Table:
    """PASS inspections of a part made on cnc-101 and cnc-102 in one hour."""
    defaults = {
        "part_serial": "EB-1",
        "lot": "L-1",
        "machines": ["cnc-101", "cnc-102"],
        "process_start": T0 - timedelta(hours=1),
        "process_end": T0,
        "result": "PASS",
        "defect_codes": [],
        "dimensions": [{"name": "bore", "value": 82.01, "unit": "mm"}],
    }
    return _table(INSPECTION, defaults, list(overrides))
