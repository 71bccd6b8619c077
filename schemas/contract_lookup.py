"""The event contract of each kind (`CONTRACTS`), lookup by kind name, JSON Schema export."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from schemas.errors import UnknownKindError
from schemas.event_contract import EventContract
from schemas.inspection import InspectionContract
from schemas.json_schema import schema_file_name
from schemas.kinds import EventKind
from schemas.machine_event import MachineEventContract
from schemas.telemetry import TelemetryContract

__all__ = ["CONTRACTS", "contract_for", "export_json_schemas"]

CONTRACTS: Mapping[EventKind, EventContract] = MappingProxyType(
    {
        EventKind.TELEMETRY: TelemetryContract(),
        EventKind.MACHINE_EVENT: MachineEventContract(),
        EventKind.INSPECTION: InspectionContract(),
    }
)
"""The current (v1) contract of every kind."""


def contract_for(kind: EventKind | str) -> EventContract:
    """The contract of ``kind``.

    Raises:
        UnknownKindError: (a ``ConfigError``) listing the valid kinds.
    """
    try:
        return CONTRACTS[EventKind(kind)]
    except ValueError:
        raise UnknownKindError(kind, [k.value for k in EventKind]) from None


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write ``<kind>.v<version>.schema.json`` for every contract; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, contract in CONTRACTS.items():
        path = out_dir / schema_file_name(kind, contract.version)
        text = json.dumps(contract.json_schema(), indent=2, sort_keys=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
