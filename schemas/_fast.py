"""The decoder's fast path: Arrow-parsed columns checked whole, exact decoder for the rest.

:func:`fast_decode` parses a batch with :func:`schemas._fastparse.parse_batch`, runs every
envelope and body check as one vectorised pass over the columns and keeps the messages that pass
all of them. Every other message (prescreened, failing to parse, failing any check) is decoded
by the exact decoder, which alone writes rejection texts, and the two results are merged in input
order. The fast path therefore never rejects anything itself: it can only be slower, never
different, when it is unsure, and ``tests/unit/schemas/test_decode_fast.py`` checks that its
results equal the exact decoder's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from maxlake import native_parser
from schemas._columns import TIMESTAMP
from schemas._fastparse import parse_batch
from schemas.results import DecodeLimits, DecodeResult, Rejection

__all__ = ["ENVELOPE_PARSE_FIELDS", "Checked", "FastBody", "as_mask", "fast_decode", "valid_ids"]

ENVELOPE_PARSE_FIELDS = (
    pa.field("event_id", pa.string()),
    pa.field("schema_version", pa.int64()),
    pa.field("kind", pa.string()),
    pa.field("tenant", pa.string()),
    pa.field("plant", pa.string()),
    pa.field("line", pa.string()),
    pa.field("machine", pa.string()),
    pa.field("event_time", pa.string()),
    pa.field("sent_time", pa.string()),
)
"""How the envelope is parsed; a value of another JSON type is a parse error (dirty message)."""

_SIMPLE_TIME = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)$"
"""The timestamps the fast path takes: those ``pc.cast`` and ``datetime.fromisoformat`` read
alike. Lower-case separators and more than 6 fractional digits go to the exact decoder."""
_US = 1_000_000
_EARLIEST_US = 0
_LATEST_US = 7_258_118_400 * _US
"""2200-01-01T00:00:00Z; the exact decoder accepts 1970-01-01 up to (not including) it."""

Mask = npt.NDArray[np.bool_]

_native_micros: Any = getattr(native_parser.module, "rfc3339_micros", None)
"""``maxlake_native.rfc3339_micros`` (the shape and value checks in one pass), None without the
compiled module: the regex and ``pc.cast`` of :func:`_timestamps_arrow` check instead."""


@dataclass(frozen=True, slots=True)
class Checked:
    """Body columns from :data:`FastBody`: one row per item, owned by a parsed message."""

    columns: dict[str, pa.Array]
    owners: npt.NDArray[np.int64]
    ok: Mask
    """Per parsed message: its body passed every check."""


FastBody = Callable[[pa.Table], Checked]
"""An event schema's vectorised body check over the parsed columns."""


def fast_decode(
    messages: Sequence[bytes],
    *,
    kind: str,
    schema: pa.Schema,
    row_schema: pa.Schema,
    body: FastBody,
    exact: Callable[[Sequence[bytes]], DecodeResult],
    tenant: str | None,
    now: datetime,
    limits: DecodeLimits,
    id_pattern: Any,
) -> DecodeResult | None:
    """Decode ``messages`` fast where possible; None when the batch does not suit the fast path
    (the caller then decodes it exactly). ``exact`` decodes a sub-batch exactly."""
    parsed = parse_batch(messages, limits.max_message_bytes, schema, threads=limits.parallel_parse)
    if parsed is None:
        return None
    table = parsed.table
    env, ok = _envelope(table, kind, tenant, now, limits, id_pattern)
    checked = body(table)
    ok &= checked.ok
    keep = ok[checked.owners]
    owners = checked.owners[keep]
    if len(owners) == len(table) and np.array_equal(owners, np.arange(len(table))):
        columns = dict(env)
    else:
        take = pa.array(owners.astype(np.int32))
        # Each kept message names the topic's tenant (checked): repeated, not gathered.
        same = {} if tenant is None else {"tenant": pa.scalar(tenant, pa.string())}
        columns = {
            name: pa.repeat(same[name], len(owners)) if name in same else col.take(take)
            for name, col in env.items()
        }
    if keep.all():
        columns.update(checked.columns)
    else:
        kept = pa.array(keep)
        columns.update({name: col.filter(kept) for name, col in checked.columns.items()})
    columns["_msg"] = pa.array(parsed.index[owners].astype(np.int32))
    rows = pa.Table.from_arrays([columns[f.name] for f in row_schema], schema=row_schema)
    dirty = np.union1d(parsed.dirty, parsed.index[~ok])
    ids = table["event_id"] if ok.all() else table["event_id"].filter(pa.array(ok))
    if not len(dirty):
        return DecodeResult(rows.combine_chunks(), [], ids.to_pylist())
    event_ids = np.full(len(messages), None, object)
    event_ids[parsed.index[ok]] = ids.to_pylist()
    slow = exact([messages[i] for i in dirty.tolist()])
    back = dirty.astype(np.int32)
    event_ids[dirty] = slow.event_ids
    rejections = [
        Rejection(int(back[r.index]), r.reason, r.detail, r.event_id) for r in slow.rejections
    ]
    if slow.rows.num_rows:
        msg = pa.array(back[slow.rows["_msg"].to_numpy()])
        slow_rows = slow.rows.set_column(len(row_schema) - 1, row_schema.field("_msg"), msg)
        rows = pa.concat_tables([rows, slow_rows])
        rows = rows.take(pc.sort_indices(rows["_msg"]))
    return DecodeResult(rows.combine_chunks(), rejections, event_ids.tolist())


def valid_ids(col: pa.ChunkedArray, pattern: Any) -> Mask:
    """Per row: a string matching ``pattern`` (``re`` fullmatch, on the distinct values)."""
    distinct = pc.unique(col).to_pylist()
    good = [v for v in distinct if v is not None and pattern.fullmatch(v)]
    if len(good) == len(distinct):
        return np.ones(len(col), bool)
    return as_mask(pc.is_in(col, value_set=pa.array(good, pa.string())))


def as_mask(arr: Any) -> Mask:
    """A boolean Arrow array (or chunked array) as NumPy, null read as False: its value and
    validity bitmaps unpacked (Arrow's own conversion costs ~10x as much). Another type is cast
    to boolean first (Arrow's null type: all False).

    Raises:
        pyarrow.ArrowInvalid: the type has no cast to boolean."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not len(arr):
        return np.zeros(0, bool)
    if arr.type != pa.bool_():
        arr = arr.cast(pa.bool_())
    validity, values = arr.buffers()
    mask = _bits(values, arr.offset, len(arr))
    if arr.null_count:
        mask &= _bits(validity, arr.offset, len(arr))
    return mask


def _bits(bitmap: pa.Buffer, offset: int, length: int) -> Mask:
    """``length`` bits of an Arrow bitmap from bit ``offset``, as a writable boolean array."""
    raw = np.frombuffer(bitmap, np.uint8, (offset + length + 7) // 8)
    bits = np.unpackbits(raw, count=offset + length, bitorder="little")[offset:]
    return bits.view(bool)


def _envelope(
    table: pa.Table,
    kind: str,
    tenant: str | None,
    now: datetime,
    limits: DecodeLimits,
    id_pattern: Any,
) -> tuple[dict[str, pa.Array], Mask]:
    ok = as_mask(pc.equal(table["schema_version"], 1))
    ok &= as_mask(pc.equal(table["kind"], kind))
    event_id = table["event_id"].combine_chunks()
    ok &= _sized(event_id, 128)
    env: dict[str, pa.Array] = {
        "event_id": event_id,
        "schema_version": pc.cast(table["schema_version"], pa.int16(), safe=False).combine_chunks(),
    }
    for name in ("tenant", "plant", "line", "machine"):
        ok &= valid_ids(table[name], id_pattern)
        env[name] = table[name].combine_chunks()
    if tenant is not None:
        ok &= as_mask(pc.equal(table["tenant"], tenant))
    event_time, micros, good = _timestamps(table["event_time"])
    now_us = int(now.timestamp() * _US)
    hi = min(now_us + int(limits.max_future_skew.total_seconds() * _US), _LATEST_US - 1)
    lo = max(now_us - int(limits.max_event_age.total_seconds() * _US), _EARLIEST_US)
    ok &= good & (micros >= lo) & (micros <= hi)
    date = _dates(micros, good)
    sent = table["sent_time"]
    if sent.null_count == len(sent):
        sent_time = pa.nulls(len(sent), TIMESTAMP)
    else:
        sent_time, sent_us, good = _timestamps(sent)
        good &= (sent_us >= _EARLIEST_US) & (sent_us < _LATEST_US)
        ok &= good | ~as_mask(pc.is_valid(sent))
    env["event_time"] = event_time
    env["sent_time"] = sent_time
    env["date"] = date
    return env, ok


def _dates(micros: npt.NDArray[np.int64], good: Mask) -> pa.Array:
    """The UTC day of each time (null where not ``good``) as ``pc.cast`` to ``date32`` gives it
    for the times the window admits (1970 on): the microseconds floor-divided by a day's."""
    days = (micros // (86_400 * _US)).astype(np.int32)
    return _null_where_not(pa.date32(), pa.py_buffer(days), good)


def _null_where_not(arrow_type: pa.DataType, values: pa.Buffer, good: Mask) -> pa.Array:
    """The fixed-width ``values`` (one per item of ``good``) as an array of ``arrow_type``,
    null where ``good`` is False."""
    nulls = len(good) - int(np.count_nonzero(good))
    bitmap = None if not nulls else pa.py_buffer(np.packbits(good, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, len(good), [bitmap, values], nulls)


def _sized(strings: pa.Array, most: int) -> Mask:
    """Per value: 1 to ``most`` characters (False where null). The byte lengths in the offsets
    decide, unless a value has more than ``most`` bytes: then characters are counted."""
    if not len(strings):
        return np.zeros(0, bool)
    if strings.type != pa.string():
        length = pc.utf8_length(strings)
        return as_mask(pc.and_(pc.greater_equal(length, 1), pc.less_equal(length, most)))
    offsets = np.frombuffer(strings.buffers()[1], np.int32, len(strings) + 1, strings.offset * 4)
    size = np.diff(offsets)
    if size.max() > most:
        length = pc.utf8_length(strings)
        return as_mask(pc.and_(pc.greater_equal(length, 1), pc.less_equal(length, most)))
    ok: Mask = size >= 1
    if strings.null_count:
        ok &= as_mask(strings.is_valid())
    return ok


def _timestamps(col: pa.ChunkedArray) -> tuple[pa.Array, npt.NDArray[np.int64], Mask]:
    """``timestamp[us, UTC]`` of each simple RFC 3339 string (null where absent or other), its
    microseconds (undefined where null) and where it is one (False where absent or other)."""
    strings = col.combine_chunks()
    if _native_micros is None or strings.type != pa.string():
        times, good = _timestamps_arrow(strings)
        return times, np.asarray(times.cast(pa.int64()).fill_null(0).to_numpy(), np.int64), good
    if not len(strings):
        return pa.array([], TIMESTAMP), np.zeros(0, np.int64), np.zeros(0, bool)
    validity, offsets, data = strings.buffers()
    micros, taken = _native_micros(len(strings), strings.offset, offsets, data, validity)
    good = np.frombuffer(taken, bool).copy()
    times = _null_where_not(TIMESTAMP, pa.py_buffer(micros), good)
    return times, np.frombuffer(micros, np.int64), good


def _timestamps_arrow(strings: pa.Array) -> tuple[pa.Array, Mask]:
    """What :func:`_timestamps` gives without ``maxlake_native`` (the reference of its tests):
    the shape checked by a regex, the values by ``pc.cast``."""
    good = as_mask(pc.match_substring_regex(strings, _SIMPLE_TIME))
    if not good.all():
        strings = pc.if_else(pa.array(good), strings, pa.scalar(None, pa.string()))
    return _cast_times(strings, good, 0), good


def _cast_times(strings: pa.Array, good: Mask, offset: int) -> pa.Array:
    """``pc.cast`` to timestamps; where it fails (an impossible date such as 02-30), halves
    are cast until the failing values are single, which become null and False in ``good``."""
    try:
        return pc.cast(strings, TIMESTAMP)
    except pa.ArrowInvalid:
        if len(strings) == 1:
            good[offset] = False
            return pa.nulls(1, TIMESTAMP)
    half = len(strings) // 2
    return pa.concat_arrays(
        [
            _cast_times(strings.slice(0, half), good, offset),
            _cast_times(strings.slice(half), good, offset + half),
        ]
    )
