"""The compiled parser (``maxlake_native``) against orjson, message by message.

Oracle: ``orjson.loads`` of the message, then the conversions the exact decoder applies (an
integer into a double field is ``float(int)``). The parser may set any message aside; a message
it keeps must be one orjson reads, every field of the right JSON type, and its row must hold
exactly the oracle's values (doubles compared bit for bit). Clean events must all be kept, or
the fast path would be slow for nothing. Hostile bytes, every JSON type in every field, unknown
nested fields, numbers at the edges of double and int64, escapes, whitespace and mangling.
"""

from __future__ import annotations

import json
import logging
import math
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from maxlake import native_parser
from schemas import _native
from schemas.events.telemetry import _PARSE_SCHEMA

_NEEDS_NATIVE = pytest.mark.skipif(
    not _native.available(), reason=f"native parser not built: {_native.UNAVAILABLE}"
)
"""On every test but the one that fails when the module is not built."""

_ITEM = pa.struct([pa.field("flag", pa.bool_()), pa.field("n", pa.int64())])
_WIDE = pa.schema(
    [
        pa.field("s", pa.string()),
        pa.field("i", pa.int64()),
        pa.field("f", pa.float64()),
        pa.field("b", pa.bool_()),
        pa.field("o", pa.struct([pa.field("x", pa.float64()), pa.field("items", pa.list_(_ITEM))])),
        pa.field("fs", pa.list_(pa.float64())),
        pa.field("ss", pa.list_(pa.list_(pa.string()))),
    ]
)
_SCHEMAS = [_PARSE_SCHEMA, _WIDE]
_NO = object()
"""The oracle's verdict: the exact decoder would not read this value into this type."""


def test_native_parser_is_built() -> None:
    """`make install` builds maxlake_native; without it the decoder's parse costs ~5x the CPU."""
    assert _native.available(), _native.UNAVAILABLE
    assert _native.PARSER == "native"


@pytest.mark.parametrize("built", [True, False])
def test_the_parser_in_use_is_logged_once(built: bool, caplog: pytest.LogCaptureFixture) -> None:
    """One line per process: INFO naming the native parser, or a WARNING naming why not."""
    why = None if built else "maxlake_native is not importable (no module); ... `make install`"
    with (
        mock.patch.object(native_parser, "PARSER", "native" if built else "arrow"),
        mock.patch.object(native_parser, "UNAVAILABLE", why),
        mock.patch.object(_native, "_announced", False),
        caplog.at_level(logging.INFO, logger=_native.__name__),
    ):
        _native.announce()
        _native.announce()
    assert len(caplog.records) == 1
    record = caplog.records[0]
    if built:
        assert record.levelno == logging.INFO
        assert "decoder JSON parser: native (maxlake_native" in record.getMessage()
    else:
        assert record.levelno == logging.WARNING
        assert record.getMessage() == f"decoder JSON parser: arrow (fallback: {why})"


def _expected(kind: pa.DataType, value: Any) -> Any:
    """What the row must hold for ``value`` (orjson's) in a ``kind`` column, or ``_NO``."""
    if value is None:
        return None
    if pa.types.is_string(kind):
        return value if type(value) is str else _NO
    if pa.types.is_boolean(kind):
        return value if type(value) is bool else _NO
    if pa.types.is_int64(kind):
        return value if type(value) is int and -(2**63) <= value < 2**63 else _NO
    if pa.types.is_float64(kind):
        return float(value) if type(value) in (int, float) else _NO
    if pa.types.is_struct(kind):
        if type(value) is not dict:
            return _NO
        return _row(list(kind), value)
    if type(value) is not list:
        return _NO
    items = [_expected(kind.value_type, v) for v in value]
    return _NO if any(v is _NO for v in items) else items


def _row(fields: list[pa.Field], obj: dict[str, Any]) -> Any:
    row = {}
    for field in fields:
        value = _expected(field.type, obj.get(field.name))
        if value is _NO:
            return _NO
        row[field.name] = value
    return row


def _bits(value: Any) -> Any:
    """Doubles as their bit patterns (so that -0.0 != 0.0 and NaN == NaN), recursively."""
    if type(value) is float:
        return struct.pack("<d", value)
    if type(value) is dict:
        return {k: _bits(v) for k, v in value.items()}
    if type(value) is list:
        return [_bits(v) for v in value]
    return value


def _check(messages: list[bytes], schema: pa.Schema) -> tuple[int, int]:
    """Parses ``messages`` and checks every kept row against the oracle; (kept, dirty)."""
    out = _native.parse(messages, 1 << 20, schema)
    assert out is not None
    table, index, dirty = out
    table.validate(full=True)
    assert sorted([*index.tolist(), *dirty.tolist()]) == list(range(len(messages)))
    assert table.num_rows == len(index)
    rows = table.to_pylist()
    for row, i in zip(rows, index.tolist(), strict=True):
        try:
            doc = orjson.loads(messages[i])
        except orjson.JSONDecodeError as exc:
            pytest.fail(f"kept a message orjson refuses ({exc}): {messages[i]!r}")
        assert type(doc) is dict, messages[i]
        want = _row(list(schema), doc)
        assert want is not _NO, f"kept a message with a wrongly typed field: {messages[i]!r}"
        assert _bits(row) == _bits(want), messages[i]
    return len(index), len(dirty)


# --- values ----------------------------------------------------------------------------------

_EDGE_INTS = [0, -1, 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
              2**64 - 1, 2**64, 10**18, 10**19, -(10**18), 123456789012345678901234]  # fmt: skip
_EDGE_FLOATS = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
                1.7976931348623157e308, 1e308, 1e-308, 0.1, 2.5, -1.5e-7,
                9007199254740993.0]  # fmt: skip
_NUMBER_TEXT = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    st.sampled_from(["", "-"]),
    st.sampled_from(["0", "1", "9", "17", "2251799813685248", "179769313486231570"])
    | st.integers(0, 10**30).map(str),
    st.sampled_from(["", ".0", ".5", ".000000000000000000001"])
    | st.integers(0, 10**25).map(lambda d: f".{d}"),
    st.sampled_from(["", "e0", "E+2", "e-5", "e308", "e309", "e-324", "e-400", "e400", "e-307"])
    | st.integers(-400, 400).map(lambda e: f"e{e}"),
)
"""Number tokens as text: decimal forms no float repr gives (long mantissas, exponents near
the overflow and underflow edges, integers beyond 64 bits)."""

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(_EDGE_INTS)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(_EDGE_FLOATS)
    | st.text(max_size=12)
    | st.sampled_from(["", "é", "\u2028", "\x00", "\x7f", 'a"b', "a\\b", "\U0001f600", "\ud7ff"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["s", "i", "f", "b", "o", "x", "items", "flag", "n", "k", "tag", "value"]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=15,
)


@st.composite
def _shaped(draw: st.DrawFn, kind: pa.DataType) -> Any:
    """A value that fits ``kind`` (mostly), so that many messages are kept."""
    if draw(st.integers(0, 40)) == 0:
        return draw(_JSON)
    if pa.types.is_string(kind):
        return draw(st.text(max_size=10))
    if pa.types.is_boolean(kind):
        return draw(st.booleans())
    if pa.types.is_int64(kind):
        return draw(st.integers(-(2**63), 2**63 - 1) | st.sampled_from(_EDGE_INTS))
    if pa.types.is_float64(kind):
        return draw(
            st.floats(allow_nan=False, allow_infinity=False)
            | st.integers(-(10**20), 10**20)
            | st.sampled_from(_EDGE_FLOATS)
        )
    if pa.types.is_struct(kind):
        return draw(_object(list(kind)))
    return draw(st.lists(_shaped(kind.value_type), max_size=4))


@st.composite
def _object(draw: st.DrawFn, fields: list[pa.Field]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for field in draw(st.permutations(fields)):
        if draw(st.integers(0, 5)):
            obj[field.name] = draw(_shaped(field.type))
    for _ in range(draw(st.integers(0, 2))):
        obj[draw(st.sampled_from(["extra", "meta", "ts", ""]))] = draw(_JSON)
    return obj


def _dump(draw: st.DrawFn, obj: Any) -> bytes:
    style = draw(st.integers(0, 4))
    if style == 0:
        try:
            return orjson.dumps(obj)
        except TypeError:  # integers beyond 64 bits
            return json.dumps(obj).encode()
    if style == 1:
        return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
    if style == 2:
        return json.dumps(obj, indent=draw(st.sampled_from([None, 1, "\t", "\r\n"]))).encode()
    if style == 3:
        text = json.dumps(obj, separators=(" ,\t", "\n:\r ")).encode()
        return b" \t\r\n" + text + b"\n"
    return json.dumps(obj, ensure_ascii=True).encode()


@st.composite
def _message(draw: st.DrawFn, schema: pa.Schema) -> bytes:
    raw = _dump(draw, draw(_object(list(schema))))
    how = draw(st.integers(0, 36))
    if how == 0:
        return raw[: draw(st.integers(0, len(raw)))]
    if how == 1:
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    if how == 2:
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=1)) + raw[at + 1 :]
    if how == 3:
        field: str = draw(st.sampled_from(schema.names))
        return raw[:-1] + b',"' + field.encode() + b'":1}'
    if how == 4:
        number = draw(_NUMBER_TEXT)
        key = draw(st.sampled_from(["f", "i", "value", "schema_version", "extra"]))
        return raw[:-1] + (b"," if len(raw) > 2 else b"") + f'"{key}":{number}}}'.encode()
    if how == 5:
        word = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "+1", ".5", "01",
                                     "1.", "-", "1e", "0x10", "tru", "nul", "True",
                                     "'a'"]))  # fmt: skip
        key = draw(st.sampled_from(["f", "s", "extra", "value"]))
        return raw[:-1] + (b"," if len(raw) > 2 else b"") + f'"{key}":{word}}}'.encode()
    if how == 6:
        return draw(st.sampled_from([b"\xef\xbb\xbf", b"\x00", b"\x0c", b"[", b""])) + raw
    if how == 7:
        return raw + draw(st.sampled_from([b"\x00", b"x", b"{}", b" 1", b"\x0c", b",", b"\xef"]))
    if how == 8:
        escape = draw(st.sampled_from(["\\ud800", "\\udc00", "\\ud800\\u0041",
                                       "\\ud83d\\ude00", "\\u00e9", "\\x41", "\\u12", "\\'",
                                       "\\/", "\\u0000", "\\uDBFF\\uDFFF",
                                       "\\b\\f\\n\\r\\t"]))  # fmt: skip
        key = draw(st.sampled_from(["s", "extra", "tag", "event_id"]))
        return raw[:-1] + (b"," if len(raw) > 2 else b"") + f'"{key}":"a{escape}b"}}'.encode()
    if how == 9:
        bad: bytes = draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80",
                                           b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xc3\xa9",
                                           b"\xf0\x9f\x98\x80", b"\x1f", b"\t"]))  # fmt: skip
        name: bytes = draw(st.sampled_from([b"s", b"extra", b"tag"]))
        sep = b"," if len(raw) > 2 else b""
        return raw[:-1] + sep + b'"' + name + b'":"a' + bad + b'b"}'
    if how == 10:
        depth = draw(st.integers(100, 1100))
        return raw[:-1] + b',"extra":' + b"[" * depth + b"]" * depth + b"}"
    if how == 11:
        return raw[:-1] + b',"extra":{"a":1,"a":[1,2,],}}'
    if how == 12:
        return b'{"s\\u0020":"x","\\u0073":"y"}'
    return raw


@st.composite
def _batch(draw: st.DrawFn) -> tuple[pa.Schema, list[bytes]]:
    schema = draw(st.sampled_from(_SCHEMAS))
    one = st.one_of(*[_message(schema)] * 8, st.binary(max_size=30))
    messages = draw(st.lists(one, min_size=1, max_size=30))
    return schema, messages


@_NEEDS_NATIVE
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_batch())
@example((_WIDE, [b'{"f":-0}', b'{"f":-0.0}', b'{"i":-0}', b'{"f":1e-400}']))
@example((_WIDE, [b'{"f":2.4703282292062328e-324}', b'{"f":2.4703282292062327e-324}']))
@example((_WIDE, [b'{"f":1.7976931348623158e308}', b'{"f":1.7976931348623159e308}']))
@example((_WIDE, [b'{"f":18446744073709551615}', b'{"f":123456789012345678901234}']))
@example((_WIDE, [b'{"i":9223372036854775807}', b'{"i":9223372036854775808}']))
@example((_WIDE, [b'{"i":-9223372036854775808}', b'{"i":-9223372036854775809}']))
@example((_WIDE, [b'{"s":"a","s":"b"}', b'{"o":{"x":1,"x":2}}']))
@example((_WIDE, [b'{"s":"\\u0041\\ud83d\\ude00"}']))
def test_kept_rows_equal_orjson(batch: tuple[pa.Schema, list[bytes]]) -> None:
    schema, messages = batch
    _check(messages, schema)


@_NEEDS_NATIVE
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NUMBER_TEXT, min_size=1, max_size=50))
def test_number_tokens_are_correctly_rounded_or_set_aside(numbers: list[str]) -> None:
    """Every decimal token into a double field: kept ones equal orjson's value bit for bit,
    and those under the overflow margin with an exponent or fraction are kept."""
    messages = [f'{{"f":{n}}}'.encode() for n in numbers]
    _check(messages, _WIDE)
    out = _native.parse(messages, 1 << 20, _WIDE)
    assert out is not None
    kept = set(out[1].tolist())
    for i, text in enumerate(numbers):
        value = float(text)
        plain = any(c in text for c in ".eE") and math.isfinite(value) and abs(value) <= 1e308
        if plain:
            assert i in kept, text


@_NEEDS_NATIVE
def test_clean_events_are_all_kept() -> None:
    """What producers send (orjson and json.dumps, ASCII or not, spaced or compact) is parsed,
    not set aside: the fast path would be no faster otherwise."""
    rng = random.Random(3)
    messages = []
    for i in range(500):
        event: dict[str, Any] = {
            "event_id": f"e-{i}",
            "schema_version": 1,
            "kind": "telemetry",
            "tenant": "northwind-auto",
            "plant": "stuttgart",
            "line": "l1",
            "machine": "cnc-101",
            "event_time": "2026-11-26T10:00:00.123Z",
            "sent_time": None if i % 3 else "2026-11-26T10:00:00.2Z",
            "readings": [
                {"tag": f"t{k}", "value": rng.uniform(-1e6, 1e6), "unit": "°C", "quality": "GOOD"}
                for k in range(i % 5)
            ],
            "meta": {"fw": [1, 2, {"a": None}], "note": 'ünïcode \n\t"quoted"'},
        }
        if i % 2:
            readings = event.pop("readings")
            event["reading"] = readings[0] if readings else None
        messages.append(
            orjson.dumps(event) if i % 4 else json.dumps(event, ensure_ascii=bool(i % 3)).encode()
        )
    assert _check(messages, _PARSE_SCHEMA) == (500, 0)


@_NEEDS_NATIVE
def test_oversized_and_non_bytes() -> None:
    ok = orjson.dumps({"s": "x" * 100})
    out = _native.parse([ok, ok[:50], ok], 60, _WIDE)
    assert out is not None
    assert out[1].tolist() == []
    assert out[2].tolist() == [0, 1, 2]
    out = _native.parse([ok], 1000, _WIDE)
    assert out is not None
    assert out[1].tolist() == [0]
    assert _native.parse([ok, bytearray(ok)], 1000, _WIDE) is None  # type: ignore[list-item]
    assert _native.parse([], 1000, _WIDE) is None


@_NEEDS_NATIVE
def test_a_schema_with_other_types_is_not_parsed_natively() -> None:
    schema = pa.schema([pa.field("t", pa.timestamp("us"))])
    assert _native.parse([b'{"t":"2026-01-01T00:00:00"}'], 1000, schema) is None
    wide = pa.schema([pa.field(f"f{i}", pa.int64()) for i in range(65)])
    assert _native.parse([b'{"f0":1}'], 1000, wide) is None


_WITHOUT = """
import logging, sys
sys.modules["maxlake_native"] = None  # as if it were not built
logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
import orjson
from schemas import JSON_PARSER, EventKind, event_schema_for
from streams import content_hash
from tests.unit.schemas.events import NOW, telemetry
assert JSON_PARSER == "arrow", JSON_PARSER
assert content_hash._native_hashes is None
batch = [orjson.dumps(telemetry(event_id=f"w-{i}")) for i in range(300)] + [b"{"]
result = event_schema_for(EventKind.TELEMETRY).decode(batch, now=NOW)
print(result.rows.num_rows, len(result.rejections), content_hash.content_hash(batch[0]) != 0)
"""


def test_without_the_module_the_arrow_parser_decodes_and_says_why() -> None:
    """A user without Rust still has a working decoder, and one WARNING line tells why."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["300", "1", "True"]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("WARNING schemas._native decoder JSON parser: arrow (fallback: ")
    assert "make install" in warnings[0]


def _parsed_with(compiled: Any, messages: list[bytes], schema: pa.Schema) -> Any:
    """``(table, index, dirty)`` of ``messages`` parsed with the compiled schema ``compiled``."""
    module = native_parser.module
    assert module is not None
    out = module.parse_batch(messages, 1 << 20, compiled)
    if out is None:
        return None
    columns, index, dirty = out
    arrays = [_native._array(f.type, c) for f, c in zip(schema, columns, strict=True)]
    return (
        pa.Table.from_arrays(arrays, schema=schema),
        bytes(memoryview(index)),
        bytes(memoryview(dirty)),
    )


@_NEEDS_NATIVE
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_batch(), min_size=2, max_size=5), st.integers(1, 40))
def test_room_reserved_from_the_previous_batch_changes_no_result(
    batches: list[tuple[pa.Schema, list[bytes]]], grow: int
) -> None:
    """A compiled schema reserves room for a batch from what its previous batch held (scaled
    to the batch's size): batches parsed after others, bigger, smaller or all set aside, give
    exactly what a fresh schema gives them."""
    module = native_parser.module
    assert module is not None
    reused = {s: module.Schema(_native._spec(list(s))) for s in _SCHEMAS}
    for k, (schema, messages) in enumerate(batches):
        batch = messages * grow if k % 2 else messages
        fresh = module.Schema(_native._spec(list(schema)))
        again = _parsed_with(reused[schema], batch, schema)
        first = _parsed_with(fresh, batch, schema)
        if first is None:
            assert again is None
            continue
        assert again[0].equals(first[0])
        assert again[1:] == first[1:]


_AFTER_ONE_BIG_MESSAGE = """
import json, resource, sys
import pyarrow as pa
from schemas import _native
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
schema = pa.schema([("s", pa.string()), ("v", pa.list_(pa.struct([("tag", pa.string()),
    ("value", pa.float64())])))])
one = {"string": {"s": "x" * 200_000, "v": []},
       "list": {"s": "a", "v": [{"tag": "t", "value": 1.0}] * 9_000}}[sys.argv[1]]
assert _native.parse([json.dumps(one).encode()], 256 * 1024, schema)[0].num_rows == 1
small = [json.dumps({"s": "a", "v": [{"tag": "t", "value": 1.0}]}).encode()] * 200_000
print(_native.parse(small, 256 * 1024, schema)[0].num_rows)
"""


@_NEEDS_NATIVE
@pytest.mark.parametrize("shape", ["string", "list"])
def test_a_large_batch_after_one_large_message_is_parsed_within_its_own_size(shape: str) -> None:
    """The room reserved from the previous batch is bounded by the batch's own bytes: one
    200 KB message (a long string, or 9,000 list items) followed by 200,000 small ones once
    asked for ~45 GB and aborted the process (no exception, nothing logged). Run under a 3 GiB
    address-space limit so that the machine's overcommit cannot hide it."""
    run = subprocess.run(
        [sys.executable, "-c", _AFTER_ONE_BIG_MESSAGE, shape],
        check=False,
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["200000"]
