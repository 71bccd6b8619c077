"""The contract of each event kind, and lookup by kind name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from schemas.contract import EventContract
from schemas.errors import UnknownKindError
from schemas.inspection import InspectionContract
from schemas.kinds import EventKind
from schemas.machine_event import MachineEventContract
from schemas.telemetry import TelemetryContract

__all__ = ["CONTRACTS", "contract_for"]

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
