"""Small synthetic silver frames for the curation tests.

The builders return frames with exactly the silver tables' columns and types (from
``schemas.silver_schema``), so a job tested here sees what the build runner hands it. Times are
given as seconds after :data:`T0`. The registry is a tiny hand-written one (two machine types,
three machines) whose units the expected values in the tests refer to.

Import the builders from here (``from tests.unit.lake.curation.conftest import telemetry_frame``);
the fixtures below wrap the common cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from lake.curation.job import JobInputs
from schemas import EventKind
from schemas.silver import silver_schema

__all__ = [
    "MILL_1",
    "MILL_2",
    "OVEN_1",
    "T0",
    "at",
    "inspection_frame",
    "job_inputs",
    "machine_event_frame",
    "registry_machines",
    "registry_tags",
    "telemetry_frame",
]

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
"""Start of the synthetic data (a Monday, on the hour)."""
MILL_1 = "mill-1"
MILL_2 = "mill-2"
OVEN_1 = "oven-1"
_LINE = {"tenant": "acme", "plant": "p1", "line": "l1"}


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def registry_machines() -> pl.DataFrame:
    """Two mills and an oven on one line of one plant."""
    return pl.DataFrame(
        {
            "tenant": ["acme"] * 3,
            "plant": ["p1"] * 3,
            "line": ["l1"] * 3,
            "machine": [MILL_1, MILL_2, OVEN_1],
            "machine_type": ["mill", "mill", "oven"],
        }
    )


def registry_tags() -> pl.DataFrame:
    """mill: ``temp`` (degC), ``vib`` (mm/s); oven: ``zone_temp`` (degC)."""
    return pl.DataFrame(
        {
            "machine_type": ["mill", "mill", "oven"],
            "tag": ["vib", "temp", "zone_temp"],
            "unit": ["mm/s", "degC", "degC"],
            "min": [0.0, 0.0, 0.0],
            "max": [50.0, 200.0, 400.0],
            "nominal": [2.0, 40.0, 240.0],
        }
    )


def _frame(kind: str, rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    schema = pl.DataFrame(silver_schema(kind).empty_table()).schema
    filled = []
    for i, row in enumerate(rows):
        event_time = row["event_time"]
        filled.append(
            {
                "event_id": f"{kind}-{i:06d}",
                "schema_version": 1,
                **_LINE,
                "sent_time": None,
                "date": event_time.date(),
                "kafka_topic": f"acme.{kind}",
                "kafka_partition": 0,
                "kafka_offset": i,
                "ingested_at": event_time + timedelta(seconds=1),
                **row,
            }
        )
    return (
        pl.DataFrame(filled, schema=schema, orient="row") if filled else pl.DataFrame(schema=schema)
    )


def telemetry_frame(
    rows: Sequence[tuple[str, float, str, float] | tuple[str, float, str, float, str]],
) -> pl.DataFrame:
    """Silver telemetry from ``(machine, seconds after T0, tag, value[, quality])``."""
    units = dict(registry_tags().select("tag", "unit").iter_rows())
    return _frame(
        "telemetry",
        [
            {
                "machine": r[0],
                "event_time": at(r[1]),
                "reading_index": 0,
                "tag": r[2],
                "value": float(r[3]),
                "unit": units.get(r[2]),
                "quality": r[4] if len(r) == 5 else "GOOD",
            }
            for r in rows
        ],
    )


def machine_event_frame(
    rows: Sequence[tuple[str, float, str, str | int]],
) -> pl.DataFrame:
    """Silver machine events from ``(machine, seconds, "STATE", state)`` or
    ``(machine, seconds, "ALARM", severity)``."""
    out = []
    for machine, seconds, event_type, what in rows:
        alarm = event_type == "ALARM"
        out.append(
            {
                "machine": machine,
                "event_time": at(seconds),
                "event_type": event_type,
                "state": None if alarm else what,
                "alarm_code": f"A-{what}" if alarm else None,
                "alarm_severity": int(what) if alarm else None,
                "alarm_text": "synthetic" if alarm else None,
            }
        )
    return _frame("machine_event", out)


def inspection_frame(
    rows: Sequence[tuple[str, str, Sequence[str], float, float, str, Sequence[str]]],
) -> pl.DataFrame:
    """Silver inspections from ``(part_serial, lot, machines, start s, end s, result,
    defect_codes)``; the inspection is recorded 10 s after the process end."""
    return _frame(
        "inspection",
        [
            {
                "machine": "gauge-1",
                "event_time": at(end + 10),
                "part_serial": serial,
                "lot": lot,
                "machines": list(machines),
                "process_start": at(start),
                "process_end": at(end),
                "result": result,
                "defect_codes": list(defects),
                "dimensions": [],
            }
            for serial, lot, machines, start, end, result, defects in rows
        ],
    )


def job_inputs(
    *,
    telemetry: pl.DataFrame | None = None,
    machine_events: pl.DataFrame | None = None,
    inspections: pl.DataFrame | None = None,
    params: Mapping[str, Any] | None = None,
) -> JobInputs:
    """JobInputs over the given frames (empty silver frames for the ones not given)."""
    frames = {
        EventKind.TELEMETRY: telemetry if telemetry is not None else telemetry_frame([]),
        EventKind.MACHINE_EVENT: (
            machine_events if machine_events is not None else machine_event_frame([])
        ),
        EventKind.INSPECTION: inspections if inspections is not None else inspection_frame([]),
    }
    return JobInputs(
        sources={kind: frame.lazy() for kind, frame in frames.items()},
        machines=registry_machines(),
        tags=registry_tags(),
        params=dict(params or {}),
    )


@pytest.fixture
def empty_inputs() -> JobInputs:
    """Inputs with every silver table empty."""
    return job_inputs()
