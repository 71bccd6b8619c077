"""Event contracts, Arrow schemas, JSON Schema export and the asset registry.

The decoder turns micro-batches of raw Kafka message values into typed silver rows (Arrow) and
one :class:`Rejection` per bad message; :func:`contract_for` picks the contract of a kind.
"""

from schemas.compat import Incompatibility, check_against_baseline, check_compatibility
from schemas.contract import EventContract
from schemas.contracts import CONTRACTS, contract_for, export_json_schemas
from schemas.errors import RegistryError, UnknownKindError
from schemas.json_schema import published_dir, schema_file_name
from schemas.kinds import (
    ID_PATTERN,
    SUPPORTED_VERSIONS,
    TENANT_ID_PATTERN,
    EventKind,
    RejectReason,
)
from schemas.registry import (
    AlarmSpec,
    Line,
    Machine,
    MachineType,
    Plant,
    Registry,
    TagSpec,
    Tenant,
    UnitDef,
    load_registry,
    parse_registry,
    registry_json_schema,
)
from schemas.results import DecodeLimits, DecodeResult, Rejection
from schemas.tables import INGEST_FIELDS, PARTITION_COLUMNS, lake_schema

__all__ = [
    "CONTRACTS",
    "ID_PATTERN",
    "INGEST_FIELDS",
    "PARTITION_COLUMNS",
    "SUPPORTED_VERSIONS",
    "TENANT_ID_PATTERN",
    "AlarmSpec",
    "DecodeLimits",
    "DecodeResult",
    "EventContract",
    "EventKind",
    "Incompatibility",
    "Line",
    "Machine",
    "MachineType",
    "Plant",
    "Registry",
    "RegistryError",
    "RejectReason",
    "Rejection",
    "TagSpec",
    "Tenant",
    "UnitDef",
    "UnknownKindError",
    "check_against_baseline",
    "check_compatibility",
    "contract_for",
    "export_json_schemas",
    "lake_schema",
    "load_registry",
    "parse_registry",
    "published_dir",
    "registry_json_schema",
    "schema_file_name",
]
