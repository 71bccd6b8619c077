"""Vectorised column checks shared by the event schemas.

Each helper takes the raw Python values of one field across a batch (one per *item*: a message
or an element of a list inside messages), rejects the owners of bad values, nulls those values
and returns a typed Arrow array. The fast path is C-speed whole-column work (``set(map(type,
...))``, set differences on the distinct values, ``pa.array``, ``pyarrow.compute``); the
per-item Python loop runs only for a column that holds a bad value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas._batch import Batch, describe, positions
from schemas.kinds import RejectReason

__all__ = [
    "POSITIONS",
    "TIMESTAMP",
    "Exploded",
    "Scope",
    "explode",
    "extract",
    "get_all",
    "id_columns",
    "int_column",
    "number_column",
    "string_column",
    "timestamp_column",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
RFC3339 = r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_NONE = type(None)
_MAX_GAPS = 8
_DENSE_GAPS = 32


@dataclass(frozen=True, slots=True)
class Scope:
    """Which message owns each item and how to name an item's field in a rejection detail."""

    owners: list[int] | None
    path: Callable[[int], str]

    def owner(self, item: int) -> int:
        """The batch position of the message that holds ``item``."""
        return item if self.owners is None else self.owners[item]

    def field(self, item: int, key: str) -> str:
        """Dotted field path of ``key`` in ``item``, e.g. ``readings[2].value``."""
        prefix = self.path(item)
        if not prefix:
            return key
        return f"{prefix}.{key}" if key else prefix


POSITIONS = Scope(None, lambda _: "")
"""Scope of top-level fields: one item per message."""


def extract(dicts: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[Any]]:
    """One list of values per key (None where absent).

    Runs ``itemgetter`` over the dicts at C speed, one pass that touches each dict once; a
    dict lacking a key stops the run, gets its values with ``dict.get`` and the run resumes
    after it (``list.extend`` keeps what was appended before the ``KeyError``), so the cost
    stays per bad dict, not per batch. Once at least ``_MAX_GAPS`` dicts and more than one
    in ``_DENSE_GAPS`` of those read so far lack a key (a key absent almost everywhere, such
    as ``reading`` in snapshots), the rest is read with ``dict.get`` instead of an exception
    per dict.
    """
    getter = itemgetter(*keys)
    rows: list[Any] = []
    rest = iter(dicts)
    gaps = 0
    while True:
        try:
            rows.extend(map(getter, rest))
            break
        except KeyError:
            rows.append(_get(dicts[len(rows)], keys))
            gaps += 1
            if gaps >= _MAX_GAPS and gaps * _DENSE_GAPS > len(rows):
                rows.extend(_get_all(list(rest), keys))
                break
    if len(keys) == 1:
        return [rows]
    if not rows:
        return [[] for _ in keys]
    return [list(column) for column in zip(*rows, strict=True)]


def _get(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return tuple(d.get(k) for k in keys) if len(keys) > 1 else d.get(keys[0])


def _get_all(dicts: list[dict[str, Any]], keys: tuple[str, ...]) -> list[Any]:
    """What ``map(itemgetter(*keys), dicts)`` gives, None for absent keys, one pass per key."""
    if len(keys) == 1:
        return get_all(dicts, keys[0])
    return list(zip(*(get_all(dicts, k) for k in keys), strict=True))


def get_all(dicts: list[dict[str, Any]], key: str) -> list[Any]:
    """``[d.get(key) for d in dicts]`` at C speed (``dicts`` must all be dicts)."""
    return list(map(dict.get, dicts, repeat(key)))


def _check_types(
    b: Batch,
    scope: Scope,
    vals: list[Any],
    key: str,
    *,
    allowed: tuple[type, ...],
    expected: str,
    required: bool,
) -> None:
    types = set(map(type, vals))
    if types.issubset(allowed) or (not required and types.issubset((*allowed, _NONE))):
        return
    type_list = list(map(type, vals))
    bad = sorted(i for t in types.difference(allowed) for i in positions(type_list, t))
    for i in bad:
        v = vals[i]
        if v is None:
            if required:
                b.reject(
                    scope.owner(i),
                    RejectReason.MISSING_FIELD,
                    f"field '{scope.field(i, key)}' is required but missing or null",
                )
            continue
        b.reject(
            scope.owner(i),
            RejectReason.WRONG_TYPE,
            f"field '{scope.field(i, key)}': expected {expected}, got {describe(v)}",
        )
        vals[i] = None


def _reject_values(
    b: Batch, scope: Scope, vals: list[Any], key: str, *, bad: Collection[Any], why: str
) -> None:
    for i in sorted(i for value in bad for i in positions(vals, value)):
        b.reject(
            scope.owner(i),
            RejectReason.INVALID_VALUE,
            f"field '{scope.field(i, key)}': {why}, got {describe(vals[i])}",
        )
        vals[i] = None


def _string_array(
    b: Batch, scope: Scope, vals: list[Any], key: str, *, required: bool, expected: str
) -> pa.Array:
    """``pa.array(vals, string)``, whose C++ conversion is the type check; per-item checks
    run only when it fails or when a required column holds nulls."""
    try:
        arr = pa.array(vals, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        _check_types(b, scope, vals, key, allowed=(str,), expected=expected, required=required)
        return pa.array(vals, pa.string())
    if required and arr.null_count:
        _check_types(b, scope, vals, key, allowed=(str,), expected=expected, required=required)
    return arr


def string_column(
    b: Batch,
    scope: Scope,
    vals: list[Any],
    key: str,
    *,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
    enum: frozenset[str] | None = None,
    max_len: int | None = None,
) -> pa.Array:
    """A string column. ``pattern`` and ``enum`` are checked on distinct values only, which
    is cheap for low-cardinality fields (ids, tags, enums); ``max_len`` counts characters.
    Empty strings are rejected for required fields."""
    arr = _string_array(b, scope, vals, key, required=required, expected="a string")
    if not len(arr):
        return arr
    changed = False
    if enum is not None or pattern is not None:
        distinct = set(pc.unique(arr).to_pylist())
        distinct.discard(None)
        if enum is not None and not distinct.issubset(enum):
            why = f"expected one of {', '.join(sorted(enum))}"
            _reject_values(b, scope, vals, key, bad=distinct - enum, why=why)
            changed = True
        elif pattern is not None:
            bad = {v for v in distinct if not pattern.fullmatch(v)}
            if bad:
                _reject_values(b, scope, vals, key, bad=bad, why=f"must match {pattern.pattern}")
                changed = True
    check_empty = required and pattern is None and enum is None
    if not check_empty and max_len is None:
        return pa.array(vals, pa.string()) if changed else arr
    lengths = pc.min_max(pc.utf8_length(arr)).as_py()
    if check_empty and lengths["min"] == 0:
        _reject_values(b, scope, vals, key, bad={""}, why="must not be empty")
        changed = True
    if max_len is not None and (lengths["max"] or 0) > max_len:
        long = {v for v in vals if v is not None and len(v) > max_len}
        _reject_values(b, scope, vals, key, bad=long, why=f"longer than {max_len} characters")
        changed = True
    return pa.array(vals, pa.string()) if changed else arr


def id_columns(
    b: Batch, raw: dict[str, list[Any]], names: tuple[str, ...], pattern: re.Pattern[str]
) -> dict[str, pa.Array]:
    """Several required id columns that vary together (tenant, plant, line, machine).

    The distinct id *tuples* of a batch are few, so the columns are built as a dictionary
    (distinct tuples + one index per row) and checked once per distinct tuple. Rows holding a
    bad tuple (a null, non-string or non-matching value) are rejected one by one, columns in
    ``names`` order, with the texts :func:`string_column` would give; unhashable values fall
    back to :func:`string_column` per column.
    """
    columns = [raw[n] for n in names]
    try:
        keys = list(zip(*columns, strict=True))
        distinct = list(set(keys))
    except TypeError:
        distinct = []
        keys = []
    if not keys:
        return {n: string_column(b, POSITIONS, raw[n], n, pattern=pattern) for n in names}
    good = [k for k in distinct if all(type(v) is str and pattern.fullmatch(v) for v in k)]
    code = {k: i for i, k in enumerate(good)}
    if len(good) < len(distinct):
        bad_keys = {k for k in distinct if k not in code}
        for i in positions(list(map(bad_keys.__contains__, keys)), True):
            for name, column in zip(names, columns, strict=True):
                problem = _id_problem(column[i], name, pattern)
                if problem is not None:
                    b.reject(i, *problem)
                    column[i] = None
    index = pa.array(list(map(code.get, keys)), pa.int32())
    return {
        name: pa.array([k[j] for k in good], pa.string()).take(index)
        for j, name in enumerate(names)
    }


def _id_problem(value: Any, key: str, pattern: re.Pattern[str]) -> tuple[RejectReason, str] | None:
    if value is None:
        return RejectReason.MISSING_FIELD, f"field '{key}' is required but missing or null"
    if type(value) is not str:
        return RejectReason.WRONG_TYPE, f"field '{key}': expected a string, got {describe(value)}"
    if not pattern.fullmatch(value):
        why = f"must match {pattern.pattern}"
        return RejectReason.INVALID_VALUE, f"field '{key}': {why}, got {describe(value)}"
    return None


def number_column(
    b: Batch, scope: Scope, vals: list[Any], key: str, *, required: bool = True
) -> pa.Array:
    """A float64 column from JSON numbers (ints or floats; booleans are a wrong type)."""
    _check_types(b, scope, vals, key, allowed=(int, float), expected="a number", required=required)
    try:
        return pa.array(vals, pa.float64())
    except (pa.ArrowInvalid, OverflowError):
        return pa.array([None if v is None else float(v) for v in vals], pa.float64())


def int_column(
    b: Batch,
    scope: Scope,
    vals: list[Any],
    key: str,
    *,
    lo: int,
    hi: int,
    arrow_type: pa.DataType,
    required: bool = True,
) -> pa.Array:
    """An integer column whose values must lie in ``lo..hi`` (inclusive)."""
    _check_types(b, scope, vals, key, allowed=(int,), expected="an integer", required=required)
    present = [v for v in vals if v is not None]
    if present and (min(present) < lo or max(present) > hi):
        out = {v for v in present if not lo <= v <= hi}
        _reject_values(b, scope, vals, key, bad=out, why=f"must be an integer in {lo}..{hi}")
    return pa.array(vals, arrow_type)


def timestamp_column(
    b: Batch, scope: Scope, vals: list[Any], key: str, *, required: bool = True
) -> pa.Array:
    """A ``timestamp[us, UTC]`` column from RFC 3339 strings (``Z`` or ``±HH:MM`` offsets,
    any number of fractional digits, truncated to microseconds)."""
    expected = "an RFC 3339 timestamp string"
    arr = _string_array(b, scope, vals, key, required=required, expected=expected)
    shaped = pc.match_substring_regex(arr, RFC3339)
    if not pc.all(shaped).as_py():
        for i in pc.indices_nonzero(pc.invert(shaped)).to_pylist():
            b.reject(
                scope.owner(i),
                RejectReason.INVALID_TIMESTAMP,
                f"field '{scope.field(i, key)}': expected an RFC 3339 timestamp such as "
                f"2026-11-26T10:00:00.123Z, got {describe(vals[i])}",
            )
            vals[i] = None
        arr = pa.array(vals, pa.string())
    try:
        parsed = pc.cast(arr, TIMESTAMP)
    except pa.ArrowInvalid:
        try:
            parsed = pc.cast(pc.replace_substring_regex(arr, r"(\.\d{6})\d+", r"\1"), TIMESTAMP)
        except pa.ArrowInvalid:
            parsed = _timestamps_one_by_one(b, scope, vals, key)
    return _within_supported_range(b, scope, vals, key, parsed)


_LATEST_US = (datetime(2200, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US


def _within_supported_range(
    b: Batch, scope: Scope, vals: list[Any], key: str, parsed: pa.Array
) -> pa.Array:
    """Reject times before 1970 or from 2200 on: no factory event has them, and downstream
    tools (pandas nanosecond timestamps in validation and training code) cannot hold them."""
    earliest, latest = pa.scalar(0, TIMESTAMP), pa.scalar(_LATEST_US, TIMESTAMP)
    outside = pc.or_(pc.less(parsed, earliest), pc.greater_equal(parsed, latest))
    if not pc.any(outside).as_py():
        return parsed
    for i in pc.indices_nonzero(pc.fill_null(outside, False)).to_pylist():
        b.reject(
            scope.owner(i),
            RejectReason.INVALID_TIMESTAMP,
            f"field '{scope.field(i, key)}': {describe(vals[i])} is outside the supported "
            "range 1970-01-01 to 2199-12-31",
        )
    return pc.if_else(outside, pa.scalar(None, TIMESTAMP), parsed)


def _timestamps_one_by_one(b: Batch, scope: Scope, vals: list[Any], key: str) -> pa.Array:
    micros: list[int | None] = []
    for i, text in enumerate(vals):
        if text is None:
            micros.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text.upper())
            micros.append((moment - _EPOCH) // _ONE_US)
        except (ValueError, OverflowError, TypeError) as exc:
            b.reject(
                scope.owner(i),
                RejectReason.INVALID_TIMESTAMP,
                f"field '{scope.field(i, key)}': not a valid date and time ({exc}), "
                f"got {describe(text)}",
            )
            micros.append(None)
    return pa.array(micros, pa.int64()).cast(TIMESTAMP)


@dataclass(frozen=True, slots=True)
class Exploded:
    """The elements of a list field across a batch, flattened, with list offsets."""

    items: list[Any]
    scope: Scope
    offsets: list[int]
    sub: list[int]
    """Position of each item inside its message's list."""

    def list_array(self, values: pa.Array) -> pa.Array:
        """Wrap per-item ``values`` back into one list per message."""
        return pa.ListArray.from_arrays(pa.array(self.offsets, pa.int32()), values)


def explode(
    b: Batch,
    lists: list[Any],
    key: str,
    *,
    required: bool,
    non_empty: bool,
    max_items: int,
    objects: bool,
) -> Exploded:
    """Flatten a per-message list field; absent lists are empty unless ``required``.

    Args:
        objects: True when elements must be JSON objects (checked here); otherwise the
            element type is left to the column helper run over ``items``.
    """
    fast = _explode_clean(lists, non_empty=non_empty, max_items=max_items, objects=objects)
    if fast is not None:
        items, owners, sub, offsets = fast
        return Exploded(items, Scope(owners, lambda i: f"{key}[{sub[i]}]"), offsets, sub)
    items = []
    owners = []
    sub = []
    offsets = [0]
    for pos, lst in enumerate(lists):
        problem = _list_problem(lst, key, required=required, non_empty=non_empty, cap=max_items)
        if problem is None and lst is not None and objects:
            problem = next(
                (_not_object(key, k, e) for k, e in enumerate(lst) if type(e) is not dict),
                None,
            )
        if problem is not None:
            b.reject(pos, *problem)
        elif lst:
            items.extend(lst)
            owners.extend([pos] * len(lst))
            sub.extend(range(len(lst)))
        offsets.append(len(items))
    return Exploded(items, Scope(owners, lambda i: f"{key}[{sub[i]}]"), offsets, sub)


def _explode_clean(
    lists: list[Any], *, non_empty: bool, max_items: int, objects: bool
) -> tuple[list[Any], list[int], list[int], list[int]] | None:
    """Items, owners, positions in list and offsets when every message holds a list within
    bounds (of objects if ``objects``), found with C-speed whole-batch passes and NumPy; None
    when any list is absent or has a problem, leaving the rejections to the per-list loop."""
    if not lists or set(map(type, lists)) != {list}:
        return None
    lens = list(map(len, lists))
    if max(lens) > max_items or (non_empty and min(lens) == 0):
        return None
    items = list(chain.from_iterable(lists))
    if objects and items and set(map(type, items)) != {dict}:
        return None
    counts = np.array(lens, dtype=np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    owners = np.repeat(np.arange(len(lens), dtype=np.int64), counts)
    sub = np.arange(len(items), dtype=np.int64) - np.repeat(offsets[:-1], counts)
    return items, owners.tolist(), sub.tolist(), offsets.tolist()


def _list_problem(
    lst: Any, key: str, *, required: bool, non_empty: bool, cap: int
) -> tuple[RejectReason, str] | None:
    if lst is None:
        if required:
            return RejectReason.MISSING_FIELD, f"field '{key}' is required but missing or null"
        return None
    if type(lst) is not list:
        return RejectReason.WRONG_TYPE, f"field '{key}': expected an array, got {describe(lst)}"
    if non_empty and not lst:
        return RejectReason.INVALID_VALUE, f"field '{key}': must not be empty"
    if len(lst) > cap:
        return RejectReason.INVALID_VALUE, f"field '{key}': {len(lst)} items, at most {cap}"
    return None


def _not_object(key: str, k: int, element: Any) -> tuple[RejectReason, str]:
    return (
        RejectReason.WRONG_TYPE,
        f"field '{key}[{k}]': expected an object, got {describe(element)}",
    )
