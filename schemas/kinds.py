"""Names shared by every event schema: event kinds, rejection reasons and the id pattern.

These strings are stable: they appear in Kafka topic names, quarantine rows, metrics labels and
the plants' integration code, so changing one is a breaking change of the event schemas.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ENVELOPE_REQUIRED",
    "ID_PATTERN",
    "SUPPORTED_VERSIONS",
    "TENANT_ID_PATTERN",
    "EventKind",
    "RejectReason",
]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Grammar of plant, line, machine, tag and machine type ids: 1..64 chars, no leading
punctuation (docs/EVENT_SCHEMAS.md, "Ids"). Written so that RE2 (``pyarrow.compute``), ``re`` and
JSON Schema all read it the same way."""

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""Grammar of tenant ids: like :data:`ID_PATTERN` without dots, because the tenant is the
second dot-separated segment of every topic name and of the ACL prefixes."""

SUPPORTED_VERSIONS = frozenset({1})
"""``schema_version`` values the decoder accepts."""

ENVELOPE_REQUIRED = (
    "event_id",
    "schema_version",
    "kind",
    "tenant",
    "plant",
    "line",
    "machine",
    "event_time",
)
"""Envelope fields every event must carry (``sent_time`` is optional)."""


class EventKind(StrEnum):
    """The event kinds a plant sends, one Kafka topic per tenant and kind."""

    TELEMETRY = "telemetry"
    MACHINE_EVENT = "machine_event"
    INSPECTION = "inspection"


class RejectReason(StrEnum):
    """Why a message was quarantined instead of becoming silver rows."""

    EMPTY = "empty"
    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"
    NAN_OR_INFINITY = "nan_or_infinity"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    KIND_MISMATCH = "kind_mismatch"
    TENANT_MISMATCH = "tenant_mismatch"
    INVALID_TIMESTAMP = "invalid_timestamp"
    EVENT_TIME_IN_FUTURE = "event_time_in_future"
    EVENT_TIME_TOO_OLD = "event_time_too_old"
