"""Telemetry v1: sensor readings of one machine, one silver row per reading."""

from __future__ import annotations

import copy
from typing import Any

import pyarrow as pa

from schemas._batch import Batch, describe
from schemas._columns import Scope, explode, extract, number_column, string_column
from schemas.contract import COMMON_FIELDS, ID_RE, MSG_FIELD, EventContract
from schemas.kinds import ID_PATTERN, EventKind, RejectReason

__all__ = ["MAX_READINGS", "QUALITIES", "TelemetryContract"]

MAX_READINGS = 1000
QUALITIES = frozenset({"GOOD", "UNCERTAIN", "BAD"})


class TelemetryContract(EventContract):
    """A snapshot of one or more tag readings (``reading`` or ``readings``)."""

    kind = EventKind.TELEMETRY
    row_schema = pa.schema(
        [
            *COMMON_FIELDS,
            pa.field("reading_index", pa.int16(), nullable=False),
            pa.field("tag", pa.string(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
            pa.field("unit", pa.string()),
            pa.field("quality", pa.string(), nullable=False),
            MSG_FIELD,
        ]
    )

    def _body(self, b: Batch) -> tuple[dict[str, pa.Array], list[int] | None]:
        objs = b.objs
        many = [o.get("readings") for o in objs]
        (one,) = extract(objs, ("reading",))
        owners: list[int] | None
        if objs and many.count(None) == len(objs) and set(map(type, one)) == {dict}:
            items: list[Any] = one
            scope = Scope(None, lambda _: "reading")
            owners = None
            index = pa.repeat(pa.scalar(0, pa.int16()), len(objs))
        else:
            items, scope, sub = self._explode_readings(b, one, many)
            owners = scope.owners
            index = pa.array(sub, pa.int16())
        # One itemgetter pass per key: cheaper than a tuple per reading for 4+ items/event.
        tags, values, units, qualities = (
            extract(items, (key,))[0] for key in ("tag", "value", "unit", "quality")
        )
        quality = string_column(b, scope, qualities, "quality", required=False, enum=QUALITIES)
        return {
            "reading_index": index,
            "tag": string_column(b, scope, tags, "tag", pattern=ID_RE),
            "value": number_column(b, scope, values, "value"),
            "unit": string_column(b, scope, units, "unit", required=False),
            "quality": quality.fill_null("GOOD"),
        }, owners

    @staticmethod
    def _explode_readings(
        b: Batch, one: list[Any], many: list[Any]
    ) -> tuple[list[Any], Scope, list[int]]:
        singles: set[int] = set()
        if one.count(None) == len(one) and many.count(None) == 0:
            lists: list[Any] = many
        else:
            lists = []
            for pos, (single, array) in enumerate(zip(one, many, strict=True)):
                if single is not None and array is not None:
                    b.reject(
                        pos,
                        RejectReason.INVALID_VALUE,
                        "fields 'reading' and 'readings': send exactly one of them, not both",
                    )
                    lists.append([])
                elif single is not None:
                    if type(single) is dict:
                        lists.append([single])
                        singles.add(pos)
                    else:
                        b.reject(
                            pos,
                            RejectReason.WRONG_TYPE,
                            f"field 'reading': expected an object, got {describe(single)}",
                        )
                        lists.append([])
                elif array is None:
                    b.reject(
                        pos,
                        RejectReason.MISSING_FIELD,
                        "field 'reading' or 'readings' is required but missing or null",
                    )
                    lists.append([])
                else:
                    lists.append(array)
        ex = explode(
            b,
            lists,
            "readings",
            required=True,
            non_empty=True,
            max_items=MAX_READINGS,
            objects=True,
        )
        owners = ex.scope.owners or []
        inner = ex.scope.path
        scope = Scope(owners, lambda i: "reading" if owners[i] in singles else inner(i))
        return ex.items, scope, ex.sub

    def _body_json_schema(self) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        reading = {
            "type": "object",
            "description": "One tag value at event_time.",
            "required": ["tag", "value"],
            "properties": {
                "tag": {"type": "string", "pattern": ID_PATTERN},
                "value": {"type": "number", "description": "finite JSON number"},
                "unit": {"type": "string"},
                "quality": {"enum": sorted(QUALITIES), "default": "GOOD"},
            },
        }
        props = {
            "reading": reading,
            "readings": {
                "type": "array",
                "items": copy.deepcopy(reading),
                "minItems": 1,
                "maxItems": MAX_READINGS,
            },
        }
        one_of = {"oneOf": [{"required": ["reading"]}, {"required": ["readings"]}]}
        return props, [], [one_of]
