"""Event schemas, Arrow schemas, JSON Schema export and the asset registry.

The decoder turns micro-batches of raw Kafka message values into typed silver rows (Arrow) and
one :class:`Rejection` per bad message; :func:`event_schema_for` picks the event schema of a kind.
This package exports what users of maxlake need; the registry's parts (``Tenant``,
``Machine``, ``TagSpec``...), the id patterns and the decoder's plumbing live in the
submodules (:mod:`schemas.registry`, :mod:`schemas.kinds`, :mod:`schemas.silver`,
:mod:`schemas.results`, :mod:`schemas.event_schema`).
"""

from schemas._native import PARSER as JSON_PARSER
from schemas._native import announce as announce_json_parser
from schemas._native import describe as json_parser
from schemas.compat import check_against_baseline, check_compatibility
from schemas.errors import RegistryError, SchemasError, UnknownKindError
from schemas.events import EVENT_SCHEMAS, event_schema_for, export_json_schemas
from schemas.json_schema import published_dir
from schemas.kinds import EventKind, RejectReason
from schemas.registry import Registry, load_registry, parse_registry, registry_json_schema
from schemas.results import DecodeResult, Rejection
from schemas.silver import silver_schema

__all__ = [
    "EVENT_SCHEMAS",
    "JSON_PARSER",
    "DecodeResult",
    "EventKind",
    "Registry",
    "RegistryError",
    "RejectReason",
    "Rejection",
    "SchemasError",
    "UnknownKindError",
    "announce_json_parser",
    "check_against_baseline",
    "check_compatibility",
    "event_schema_for",
    "export_json_schemas",
    "json_parser",
    "load_registry",
    "parse_registry",
    "published_dir",
    "registry_json_schema",
    "silver_schema",
]
