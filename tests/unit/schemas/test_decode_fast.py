"""Differential: the fast path gives exactly what the exact decoder gives.

Telemetry batches of ``FAST_MIN_BATCH`` messages or more are parsed by the compiled parser
(``maxlake_native``) or, without it, by ``pyarrow.json``, and checked as whole columns; every
message the fast path is unsure about goes to the exact decoder. These tests decode generated
batches (valid events, events with one field changed to the kind of value that parses differently
in Arrow and orjson, and raw byte mangling) both ways and require equal rows, rejections (reason
and detail) and event ids. Every test runs once with each parser.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import DecodeResult, EventKind, _fastparse, _native, event_schema_for
from schemas.event_schema import EventSchema
from schemas.events.telemetry import FAST_MIN_BATCH, TelemetrySchema
from schemas.results import DecodeLimits
from tests.unit.schemas.events import NOW, telemetry

_TELEMETRY = event_schema_for(EventKind.TELEMETRY)
assert isinstance(_TELEMETRY, TelemetrySchema)
TELEMETRY: TelemetrySchema = _TELEMETRY


@pytest.fixture(scope="module", autouse=True, params=["native", "arrow"])
def parser(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs every test of this module with the compiled parser and with the Arrow fallback."""
    name: str = request.param
    if name == "native" and not _native.available():
        pytest.skip(f"the native parser is not built: {_native.UNAVAILABLE}")
    with mock.patch.object(_native, "PARSER", name):
        yield name


_NUMBERS: st.SearchStrategy[Any] = st.sampled_from(
    [0, -0.0, 1, -1, 2.5, 1e-400, 12345678901234567890123, 9007199254740993, -9223372036854775809,
     1e308, 0.1, 3, True, None, "12", [], {}]
)  # fmt: skip
_TIMES = st.sampled_from(
    [
        "2026-11-26T10:00:00Z",
        "2026-11-26T10:00:00.123Z",
        "2026-11-26T10:00:00.123456Z",
        "2026-11-26T10:00:00.1234567Z",
        "2026-11-26t10:00:00Z",
        "2026-11-26T10:00:00z",
        "2026-11-26 10:00:00Z",
        "2026-11-26T10:00:00+01:00",
        "2026-11-26T10:00:00+23:59",
        "2026-11-26T10:00:00-00:00",
        "2026-02-30T10:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T12:06:00Z",
        "2026-11-26T12:04:59.999Z",
        "2025-10-22T12:00:00Z",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "26/11/2026 10:00",
        "",
        "2026-11-26T10:00:00",
    ]
)
_STRINGS = st.sampled_from(
    ["cnc-101", "", "bad tag!", "northwind-auto", "x" * 65, "x" * 129, "é", "a\nb", "a\\b",
     "NaN", "telemetry", "GOOD", "BAD", "good", "1", "_x", "A.b-c_9"]
)  # fmt: skip
_ANY = _NUMBERS | _TIMES | _STRINGS
_ENVELOPE = ["event_id", "schema_version", "kind", "tenant", "plant", "line", "machine",
             "event_time", "sent_time"]  # fmt: skip
_READING = ["tag", "value", "unit", "quality"]
_CHANGES = st.sampled_from([0, 0, 0, 1, 2])
"""Changes per event or reading: mostly none, so that many messages take the fast path."""


@st.composite
def _reading(draw: st.DrawFn) -> Any:
    reading: dict[str, Any] = {"tag": "spindle_speed", "value": 12.5, "unit": "rpm"}
    if draw(st.booleans()):
        reading["quality"] = draw(st.sampled_from(["GOOD", "BAD", "UNCERTAIN"]))
    for _ in range(draw(_CHANGES)):
        key = draw(st.sampled_from(_READING))
        if draw(st.booleans()):
            reading[key] = draw(_NUMBERS if key == "value" else _ANY)
        else:
            reading.pop(key, None)
    return reading if draw(st.integers(0, 30)) else draw(_ANY)


@st.composite
def _event(draw: st.DrawFn) -> bytes:
    event = telemetry(event_id=f"t-{draw(st.integers(0, 10**6))}")
    if draw(st.booleans()):
        del event["reading"]
        event["readings"] = draw(st.lists(_reading(), min_size=0, max_size=5))
        if draw(st.booleans()):
            event["sent_time"] = draw(_TIMES)
    else:
        event["reading"] = draw(_reading())
    for _ in range(draw(_CHANGES)):
        key = draw(st.sampled_from([*_ENVELOPE, "reading", "readings", "extra"]))
        action = draw(st.sampled_from(["set", "drop", "time"]))
        if action == "drop":
            event.pop(key, None)
        elif action == "time" or key.endswith("_time"):
            event[key] = draw(_TIMES)
        else:
            event[key] = draw(_ANY | st.lists(_ANY, max_size=3))
    compact = draw(st.booleans())
    text = json.dumps(event, separators=(",", ":") if compact else None)
    return _mangle(draw, text).encode() if draw(st.integers(0, 8)) == 0 else text.encode()


def _mangle(draw: st.DrawFn, text: str) -> str:
    """Raw-text damage Arrow and orjson might read differently."""
    how = draw(st.integers(0, 13))
    if how == 0:
        return text[: draw(st.integers(0, len(text)))]
    if how == 1:
        return text + text
    if how == 2:
        return text.replace('"value": 12.5', '"value": NaN').replace(
            '"value":12.5', '"value":-Infinity'
        )
    if how == 3:
        return text[:-1] + ', "extra": ' + "[" * 1100 + "]" * 1100 + "}"
    if how == 4:
        return "\ufeff" + text
    if how == 5:
        return text.replace('"tag"', '"t\\u0061g"')
    if how == 6:
        return text[:-1] + ',"kind":"telemetry"}'
    if how == 7:
        return text.replace(",", ",\n", 1)
    if how == 8:
        return " " + text + "\r"
    if how == 9:
        return text.replace("12.5", "-0").replace("12000", "-0")
    if how == 10:
        return text + "\x01"
    if how == 11:
        return text + "\x00" + text
    if how == 12:
        return text[:-1] + ',"extra":1e400}'
    return text[:-1] + ',"extra":' + "9" * draw(st.integers(300, 330)) + "}"


def _both(messages: list[bytes], tenant: str | None, now: datetime) -> tuple[Any, DecodeResult]:
    limits = DecodeLimits(max_message_bytes=4000)
    fast = TELEMETRY._fast_decode(messages, tenant, now, limits)
    exact = EventSchema._decode_batch(TELEMETRY, messages, tenant, now, limits)
    return fast, exact


def _assert_same(fast: DecodeResult, exact: DecodeResult) -> None:
    assert fast.rows.schema == exact.rows.schema
    assert fast.rows.to_pylist() == exact.rows.to_pylist()
    assert fast.rows.equals(exact.rows)
    assert fast.rejections == exact.rejections
    assert fast.event_ids == exact.event_ids
    assert {type(e) for e in fast.event_ids} <= {str, type(None)}


_GOOD = orjson.dumps(telemetry())
_MESSAGE = st.one_of(_event(), _event(), _event(), st.just(_GOOD), st.binary(max_size=40))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_MESSAGE, min_size=1, max_size=40),
    st.sampled_from([None, "northwind-auto", "other-tenant"]),
)
def test_fast_path_equals_exact_decoder(messages: list[bytes], tenant: str | None) -> None:
    fast, exact = _both(messages, tenant, NOW)
    if fast is not None:
        _assert_same(fast, exact)


_VALID = [orjson.dumps(telemetry(event_id=f"v-{i}")) for i in range(FAST_MIN_BATCH + 50)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID)), _MESSAGE), min_size=1, max_size=12))
def test_generated_messages_among_many_valid_ones(inserts: list[tuple[int, bytes]]) -> None:
    """Long batches: a set-aside or multi-row message must not shift later rows (Arrow numbers
    parse errors by row, and the fast path maps rows back to messages)."""
    messages = list(_VALID)
    for at, message in inserts:
        messages.insert(at, message)
    fast, exact = _both(messages, None, NOW)
    if fast is not None:
        _assert_same(fast, exact)


def test_two_objects_on_a_line_before_a_parse_error() -> None:
    """Regression: a message holding two objects gave Arrow an extra row, so a parse error in a
    later block was mapped to the message before the bad one and every later row shifted
    (found with 1,500-message batches; 1,200 messages span two parse blocks)."""
    messages = [orjson.dumps(telemetry(event_id=f"v-{i}")) for i in range(1200)]
    messages[10] = messages[10] + messages[11]
    messages[1100] = orjson.dumps(telemetry(reading={"tag": 5, "value": 1}))
    fast, exact = _both(messages, None, NOW)
    assert fast is not None
    _assert_same(fast, exact)
    assert [r.index for r in exact.rejections] == [10, 1100]


@pytest.mark.parametrize("tag", ["NOx_INLET", "spindle_speed"])
@pytest.mark.parametrize("spelled", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_set_aside_whether_n_and_i_are_rare_or_not(
    spelled: str, tag: str
) -> None:
    """The NaN/Infinity prescreen looks up rare first bytes one by one and switches to a pass
    over the buffer when they are common (NOx_INLET: an 'N' and an 'I' in every message): both ways
    the non-finite values go to the exact decoder, which refuses them as orjson does (Arrow
    would read them, even in a field it skips)."""
    messages = [
        orjson.dumps(telemetry(event_id=f"t-{i}", reading={"tag": tag, "value": i}))
        for i in range(FAST_MIN_BATCH * 2)
    ]
    bad = [3, FAST_MIN_BATCH + 7]
    for i in bad:
        messages[i] = messages[i][:-1] + b',"extra":' + spelled.encode() + b"}"
    fast, exact = _both(messages, None, NOW)
    assert fast is not None
    _assert_same(fast, exact)
    assert [r.index for r in exact.rejections] == bad


@pytest.mark.parametrize("digits", [309, 310, 400, 1000])
def test_numbers_too_big_for_a_double_in_a_skipped_field_are_set_aside(digits: int) -> None:
    """orjson refuses an integer of 309 nines or more (infinite as a double); Arrow reads it without
    complaint in a field it skips. Runs start at every offset modulo the prescreen's 64-byte
    sampling; the same digits in a string are a valid message."""
    big = "9" * digits
    messages = [
        orjson.dumps(telemetry(event_id=f"d-{i}", reading={"tag": "spindle_speed", "value": i}))
        for i in range(FAST_MIN_BATCH * 2)
    ]
    bad = list(range(3, 3 + 64 * 3, 3))
    for pad, i in enumerate(bad):
        extra = [f'"{"x" * pad}"', big, f"[-{big}]", f'"{big}"'][pad % 4]
        messages[i] = messages[i][:-1] + f',"extra":{extra}}}'.encode()
    fast, exact = _both(messages, None, NOW)
    assert fast is not None
    _assert_same(fast, exact)
    assert [r.index for r in exact.rejections] == [i for k, i in enumerate(bad) if k % 4 in (1, 2)]


def test_fast_path_takes_a_typical_batch_and_matches() -> None:
    """A realistic mix (1 in 20 bad, singles and snapshots) is decoded by the fast path."""
    rng = random.Random(7)
    messages = []
    for i in range(FAST_MIN_BATCH * 2):
        event = telemetry(event_id=f"t-{i}")
        if i % 3 == 0:
            del event["reading"]
            event["readings"] = [
                {"tag": f"tag_{k}", "value": rng.uniform(-5, 5), "unit": "bar"} for k in range(4)
            ]
        if i % 20 == 0:
            event["reading" if "reading" in event else "kind"] = "n/a"
        messages.append(orjson.dumps(event) if i % 41 else orjson.dumps(event)[:-3])
    fast, exact = _both(messages, "northwind-auto", NOW)
    assert fast is not None
    _assert_same(fast, exact)
    assert exact.rejections
    assert exact.rows.num_rows
    result = TELEMETRY.decode(messages, tenant="northwind-auto", now=NOW)
    _assert_same(result, exact)


@pytest.mark.parametrize("bad_every", [1, 2, 7])
def test_mostly_bad_batches_match(bad_every: int) -> None:
    """Many parse errors exhaust the fast path's error budget; results stay the same."""
    messages = [
        orjson.dumps(telemetry(event_id=f"t-{i}", tenant=1 if i % bad_every == 0 else "x"))
        for i in range(FAST_MIN_BATCH)
    ]
    fast, exact = _both(messages, None, NOW)
    assert fast is not None
    _assert_same(fast, exact)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 6000), _MESSAGE), min_size=1, max_size=30))
def test_parallel_parse_of_many_blocks_equals_exact_decoder(
    inserts: list[tuple[int, bytes]],
) -> None:
    """The ingest worker lets Arrow parse blocks on its thread pool; parse errors in later
    blocks must still be pinned on the right message (6,000 messages span ~6 blocks)."""
    messages = [orjson.dumps(telemetry(event_id=f"p-{i}")) for i in range(6000)]
    for at, message in inserts:
        messages.insert(at, message)
    limits = DecodeLimits(max_message_bytes=4000, parallel_parse=True)
    fast = TELEMETRY._fast_decode(messages, None, NOW, limits)
    exact = EventSchema._decode_batch(TELEMETRY, messages, None, NOW, limits)
    assert fast is not None
    _assert_same(fast, exact)


_OVERSIZED = orjson.dumps({**telemetry(event_id="big"), "extra": "x" * 5000})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    oversized_at=st.lists(st.integers(0, FAST_MIN_BATCH + 50), min_size=8, max_size=40),
    inserts=st.lists(st.tuples(st.integers(0, FAST_MIN_BATCH + 50), _MESSAGE), max_size=12),
)
def test_batches_mostly_made_of_set_aside_bytes_equal_exact_decoder(
    oversized_at: list[int], inserts: list[tuple[int, bytes]], parser: str
) -> None:
    """Oversized messages are left out of the buffer Arrow parses before it is joined (they can
    outweigh the rest: 2% of the simulator's bad mix is 267 KB each); the parse errors and
    set-aside messages among those kept must still be pinned on the right input positions."""
    messages = list(_VALID)
    for at, message in inserts:
        messages.insert(at, message)
    for at in oversized_at:
        messages.insert(at, _OVERSIZED)
    with mock.patch.object(_fastparse, "_without", wraps=_fastparse._without) as without:
        fast, exact = _both(messages, None, NOW)
    assert fast is not None
    _assert_same(fast, exact)
    assert without.called == (parser == "arrow")
