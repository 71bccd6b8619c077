"""Event contracts, Arrow schemas, JSON Schema export and the asset registry."""

from schemas.errors import RegistryError, UnknownKindError
from schemas.kinds import ID_PATTERN, SUPPORTED_VERSIONS, EventKind, RejectReason
from schemas.registry import (
    AlarmSpec,
    Line,
    Machine,
    MachineType,
    Plant,
    Registry,
    TagSpec,
    Tenant,
    load_registry,
)

__all__ = [
    "ID_PATTERN",
    "SUPPORTED_VERSIONS",
    "AlarmSpec",
    "EventKind",
    "Line",
    "Machine",
    "MachineType",
    "Plant",
    "Registry",
    "RegistryError",
    "RejectReason",
    "TagSpec",
    "Tenant",
    "UnknownKindError",
    "load_registry",
]
