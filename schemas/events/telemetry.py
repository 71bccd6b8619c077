"""Telemetry v1: sensor readings of one machine, one silver row per reading."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from schemas._batch import Batch, describe
from schemas._columns import Scope, explode, extract, get_all, number_column, string_column
from schemas._fast import ENVELOPE_PARSE_FIELDS, Checked, as_mask, fast_decode, valid_ids
from schemas.event_schema import COMMON_FIELDS, ID_RE, MSG_FIELD, EventSchema
from schemas.kinds import ID_PATTERN, EventKind, RejectReason
from schemas.results import DecodeLimits, DecodeResult

__all__ = [
    "CONVERSION_FIELDS",
    "FAST_MIN_BATCH",
    "MAX_READINGS",
    "QUALITIES",
    "TelemetrySchema",
]

MAX_READINGS = 1000
QUALITIES = frozenset({"GOOD", "UNCERTAIN", "BAD"})
FAST_MIN_BATCH = 256
"""Smallest batch parsed by the Arrow fast path (each parse call costs ~0.1-0.2 ms)."""
_READING = pa.struct(
    [
        pa.field("tag", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("unit", pa.string()),
        pa.field("quality", pa.string()),
    ]
)
_PARSE_SCHEMA = pa.schema(
    [
        *ENVELOPE_PARSE_FIELDS,
        pa.field("reading", _READING),
        pa.field("readings", pa.list_(_READING)),
    ]
)
_QUALITY_LIST = sorted(QUALITIES)

CONVERSION_FIELDS = (
    pa.field("value_sent", pa.float64()),
    pa.field("unit_sent", pa.string()),
)
"""Telemetry only: the value and unit as sent when the reading was converted to its tag's
registry unit (``value``/``unit`` then hold the converted reading); null otherwise."""


class TelemetrySchema(EventSchema):
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
    silver_extra_fields = CONVERSION_FIELDS
    tag_column = "tag"

    def _decode_batch(
        self, messages: Sequence[bytes], tenant: str | None, now: datetime, limits: DecodeLimits
    ) -> DecodeResult:
        if len(messages) >= FAST_MIN_BATCH:
            result = self._fast_decode(messages, tenant, now, limits)
            if result is not None:
                return result
        return super()._decode_batch(messages, tenant, now, limits)

    def _fast_decode(
        self, messages: Sequence[bytes], tenant: str | None, now: datetime, limits: DecodeLimits
    ) -> DecodeResult | None:
        """The Arrow fast path (:mod:`schemas._fast`); None when the batch does not suit it."""
        return fast_decode(
            messages,
            kind=self.kind.value,
            schema=_PARSE_SCHEMA,
            row_schema=self.row_schema,
            body=_fast_body,
            exact=lambda sub: EventSchema._decode_batch(self, sub, tenant, now, limits),
            tenant=tenant,
            now=now,
            limits=limits,
            id_pattern=ID_RE,
        )

    def _body(self, b: Batch) -> tuple[dict[str, pa.Array], list[int] | None]:
        objs = b.objs
        many = get_all(objs, "readings")
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


def _fast_body(table: pa.Table) -> Checked:
    """Readings of Arrow-parsed telemetry, one item per reading, checked as whole columns."""
    single = table["reading"].combine_chunks()
    many = table["readings"].combine_chunks()
    has_one = as_mask(pc.is_valid(single))
    has_many = as_mask(pc.is_valid(many))
    ok = has_one ^ has_many
    if not has_many.any():
        items, owners = single, np.arange(len(table), dtype=np.int64)
        sub = np.zeros(len(table), np.int64)
    else:
        counts = pc.list_value_length(many)
        sized = pc.and_(pc.greater_equal(counts, 1), pc.less_equal(counts, MAX_READINGS))
        ok &= as_mask(sized) | ~has_many
        flat = many.flatten()
        parents = np.asarray(pc.list_parent_indices(many).to_numpy(), np.int64)
        within = _positions_within(parents)
        items, owners, sub = flat, parents, within
        if has_one.any():
            ones = np.flatnonzero(has_one)
            # Merged in message order, a single reading before a list of the same message
            # (both sent: rejected, but checked alike): where each single lands among the
            # list items, the list items filling the other slots in order.
            at = np.arange(len(ones)) + np.searchsorted(parents, ones)
            is_one = np.zeros(len(ones) + len(parents), bool)
            is_one[at] = True
            order = np.empty(len(is_one), np.int64)
            order[at] = np.arange(len(ones))
            order[~is_one] = np.arange(len(ones), len(is_one))
            items = pa.concat_arrays([single.filter(pa.array(has_one)), flat]).take(order)
            owners = np.empty(len(is_one), np.int64)
            owners[at] = ones
            owners[~is_one] = parents
            sub = np.zeros(len(is_one), np.int64)
            sub[~is_one] = within
    tag, value, unit, quality = (items.field(k) for k in ("tag", "value", "unit", "quality"))
    item_ok = as_mask(pc.is_valid(items)) & valid_ids(tag, ID_RE)
    item_ok &= as_mask(pc.is_finite(value))
    numbers = np.asarray(value.to_numpy(zero_copy_only=False), np.float64)
    item_ok &= ~((numbers == 0) & np.signbit(numbers))
    item_ok &= as_mask(
        pc.or_(
            pc.is_null(quality), pc.is_in(quality, value_set=pa.array(_QUALITY_LIST, pa.string()))
        )
    )
    ok[owners[~item_ok]] = False
    columns = {
        "reading_index": pa.array(sub.astype(np.int16)),
        "tag": tag,
        "value": value,
        "unit": unit,
        "quality": pc.fill_null(quality, "GOOD"),
    }
    return Checked(columns, owners, ok)


def _positions_within(parents: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per item of a flattened list column, its position within its list (``parents``: the
    ascending list index of each item)."""
    n = len(parents)
    if not n:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate(([True], parents[1:] != parents[:-1])))
    lengths = np.diff(np.append(starts, n))
    out: npt.NDArray[np.int64] = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    return out
