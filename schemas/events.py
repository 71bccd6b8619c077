"""The event schema of each kind (`EVENT_SCHEMAS`), lookup by kind name, JSON Schema export."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from schemas.errors import UnknownKindError
from schemas.event_schema import EventSchema
from schemas.inspection import InspectionSchema
from schemas.json_schema import schema_file_name
from schemas.kinds import EventKind
from schemas.machine_event import MachineEventSchema
from schemas.telemetry import TelemetrySchema

__all__ = ["EVENT_SCHEMAS", "event_schema_for", "export_json_schemas"]

EVENT_SCHEMAS: Mapping[EventKind, EventSchema] = MappingProxyType(
    {
        EventKind.TELEMETRY: TelemetrySchema(),
        EventKind.MACHINE_EVENT: MachineEventSchema(),
        EventKind.INSPECTION: InspectionSchema(),
    }
)
"""The current (v1) event schema of every kind."""


def event_schema_for(kind: EventKind | str) -> EventSchema:
    """The event schema of ``kind``.

    Raises:
        UnknownKindError: (a ``ConfigError``) listing the valid kinds.
    """
    try:
        return EVENT_SCHEMAS[EventKind(kind)]
    except ValueError:
        raise UnknownKindError(kind, [k.value for k in EventKind]) from None


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<kind>.v<version>.schema.json`` for every event schema; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, event_schema in EVENT_SCHEMAS.items():
        path = out_dir / schema_file_name(kind, event_schema.version)
        text = json.dumps(event_schema.json_schema(), indent=2, sort_keys=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
