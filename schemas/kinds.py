"""Names shared by every event schema: event kinds, rejection reasons and the id pattern.

These strings are stable: they appear in Kafka topic names, quarantine rows, metrics labels and
the plants' integration code, so changing one is a breaking change of the event schemas.

The kinds are not listed here: each module of :mod:`schemas.events` declares its own with
:meth:`EventKind.declare` (docs/EXTENDING.md, "Add an event kind").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

__all__ = [
    "ENVELOPE_REQUIRED",
    "ID_PATTERN",
    "KIND_NAME_PATTERN",
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

KIND_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""Grammar of event kind names: lower-case snake case, 1..32 chars (a kind is part of topic,
table and file names)."""

_DECLARED: dict[str, EventKind] = {}


class _EventKindType(type):
    """Makes the class :class:`EventKind` a collection of the declared kinds, like an enum."""

    def __iter__(cls) -> Iterator[EventKind]:
        return iter(tuple(_DECLARED.values()))

    def __len__(cls) -> int:
        return len(_DECLARED)

    def __contains__(cls, value: object) -> bool:
        return isinstance(value, str) and value in _DECLARED


class EventKind(str, metaclass=_EventKindType):
    """The name of an event kind a plant sends, one Kafka topic per tenant and kind.

    A string (``EventKind.TELEMETRY == "telemetry"``) that only holds declared names:
    ``EventKind("x")`` raises ``ValueError`` for a name no module of :mod:`schemas.events`
    declared. Iterating the class gives every kind in declaration order (the built-in ones
    first); ``len(EventKind)`` counts them. The built-in kinds have constants for the code
    that treats them specially; a kind added later is reached by its name.
    """

    __slots__ = ()

    TELEMETRY: ClassVar[EventKind]
    MACHINE_EVENT: ClassVar[EventKind]
    INSPECTION: ClassVar[EventKind]

    def __new__(cls, value: str) -> EventKind:
        known = _DECLARED.get(value) if isinstance(value, str) else None
        if known is None:
            raise ValueError(f"{value!r} is not a valid EventKind")
        return known

    @classmethod
    def declare(cls, name: str) -> EventKind:
        """Declare the kind ``name`` (idempotent); its event schema module calls this once.

        Raises:
            ValueError: ``name`` does not match :data:`KIND_NAME_PATTERN`.
        """
        if not re.fullmatch(KIND_NAME_PATTERN, name):
            raise ValueError(f"event kind {name!r} does not match {KIND_NAME_PATTERN}")
        if name not in _DECLARED:
            _DECLARED[name] = str.__new__(cls, name)
        return _DECLARED[name]

    @property
    def value(self) -> str:
        """The kind's name as a plain ``str``."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"EventKind({self.value!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            ref="EventKind",
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "description": "The event kinds a plant sends, one Kafka topic per tenant and kind.",
            "enum": [kind.value for kind in cls],
            "title": "EventKind",
            "type": "string",
        }

    @classmethod
    def _validate(cls, value: Any) -> EventKind:
        if isinstance(value, str) and value in _DECLARED:
            return _DECLARED[value]
        names = [repr(k.value) for k in cls]
        expected = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise PydanticCustomError("enum", "Input should be {expected}", {"expected": expected})


EventKind.TELEMETRY = EventKind.declare("telemetry")
EventKind.MACHINE_EVENT = EventKind.declare("machine_event")
EventKind.INSPECTION = EventKind.declare("inspection")


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
