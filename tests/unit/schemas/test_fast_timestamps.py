"""The fast path's timestamps in one native pass against the regex and cast they replace.

Since issue 20's sixteenth pass ``schemas._fast._timestamps`` reads ``event_time`` and
``sent_time`` with ``maxlake_native.rfc3339_micros`` (shape, calendar and value in one pass);
before, an RE2 shape check and ``pc.cast`` did (``_timestamps_arrow``, kept as the path without
the compiled module). These tests require the same verdict and the same microseconds for every
string of hostile sets (leap seconds and days, offsets of every form, fractional digits from
none to 12, lower-case separators, years 0000 and 9999, missing zones, non-ASCII digits, stray
bytes) and the same decoded rows, types, rejections and event ids for whole batches.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxlake import native_parser
from schemas import EventKind, _fast, event_schema_for
from schemas.event_schema import EventSchema
from schemas.events.telemetry import FAST_MIN_BATCH, TelemetrySchema
from schemas.results import DecodeLimits
from tests.unit.schemas.events import NOW, telemetry

pytestmark = pytest.mark.skipif(
    _fast._native_micros is None, reason="maxlake_native is not built (make install)"
)

_SCHEMA = event_schema_for(EventKind.TELEMETRY)
assert isinstance(_SCHEMA, TelemetrySchema)
TELEMETRY: TelemetrySchema = _SCHEMA
_LIMITS = DecodeLimits(max_message_bytes=200_000)

_YEARS = ["0000", "0001", "1600", "1900", "1969", "1970", "2000", "2024", "2026", "2100"]
_YEARS += ["2199", "2200", "9999", "202", "20261", "2o26", "２０２６"]
_MONTHS = ["00", "01", "02", "04", "06", "09", "11", "12", "13", "1", "99", "0a"]
_DAYS = ["00", "01", "28", "29", "30", "31", "32", "3", "99", "٣١"]
_SEPARATORS = ["T", "t", " ", "_", "", "TT", "\t"]
_HOURS = ["00", "09", "23", "24", "99", "7"]
_MINUTES = ["00", "30", "59", "60", "5"]
_SECONDS = ["00", "07", "59", "60", "61", "5", "٠٠"]
_FRACTIONS = ["", ".", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567"]
_FRACTIONS += [".123456789", ".123456789012", ".12a", ",123", "..1", ".٠"]
_ZONES = ["Z", "z", "", "+00:00", "-00:00", "+01:00", "-05:30", "+23:59", "-23:59", "+24:00"]
_ZONES += ["-12:60", "+0100", "+01", "+1:00", "+01:00:00", " Z", "Z ", "ZZ", "+01:0", "±01:00"]
_ZONES += ["+٠١:00", "-"]


_VALID = (
    ["1970", "2000", "2024", "2026", "2199"],
    ["-"],
    ["01", "02", "11", "12"],
    ["-"],
    ["01", "28", "29", "30", "31"],
    ["T", " "],
    ["00", "09", "23"],
    [":"],
    ["00", "59"],
    [":"],
    ["00", "59"],
    ["", ".1", ".123", ".123456"],
    ["Z", "+01:00", "-05:30", "+23:59"],
)
_HOSTILE: tuple[list[str], ...] = (_YEARS, ["-", "/"], _MONTHS, ["-", ""], _DAYS, _SEPARATORS)
_HOSTILE += (_HOURS, [":", "."], _MINUTES, [":", ""], _SECONDS, _FRACTIONS, _ZONES)


def _timestamp(rng: random.Random, *, recent: bool = False) -> str:
    """A timestamp built from parts each valid or not (mostly valid in half of them, so that
    the calendar checks are reached), then at times one character changed; ``recent``: the
    date and hour within the decode tests' window whenever those parts are valid."""
    valid = rng.choice([0.5, 0.95])
    parts = [
        rng.choice(good if rng.random() < valid else hostile)
        for good, hostile in zip(_VALID, _HOSTILE, strict=True)
    ]
    if recent:
        for at, within in ((0, "2026"), (2, "11"), (4, "26"), (6, "11")):
            if parts[at] in _VALID[at]:
                parts[at] = within
    text = "".join(parts)
    if text and rng.random() < 0.2:
        at = rng.randrange(len(text))
        edit = rng.choice(["\n", "\0", "é", "-", ":", "0", "9", "Z", "T", ".", " ", ""])
        text = text[:at] + edit + text[at + rng.randrange(2) :]
    return text


def _strings(seed: int, n: int, *, recent: bool = False) -> list[str | None]:
    rng = random.Random(seed)
    return [None if rng.random() < 0.03 else _timestamp(rng, recent=recent) for _ in range(n)]


def _assert_as_before(values: pa.Array) -> None:
    """``_timestamps`` of ``values`` equals what the regex and cast gave."""
    times, micros, good = _fast._timestamps(pa.chunked_array([values], pa.string()))
    expected, expected_good = _fast._timestamps_arrow(values)
    np.testing.assert_array_equal(good, expected_good)
    assert times.type == expected.type
    assert times.equals(expected)
    reference = np.asarray(expected.cast(pa.int64()).fill_null(0).to_numpy(), np.int64)
    np.testing.assert_array_equal(micros[good], reference[good])


@pytest.mark.parametrize("seed", range(8))
def test_hostile_timestamps_read_as_the_regex_and_cast_read_them(seed: int) -> None:
    values = pa.array(_strings(seed, 4000), pa.string())
    _assert_as_before(values)
    _, _, good = _fast._timestamps(pa.chunked_array([values]))
    assert 0.1 < good.mean() < 0.9  # both verdicts are well represented


def test_every_calendar_day_and_time_edge_as_before() -> None:
    """Every day of leap and common years (00-32), edges of each time field and offset."""
    values = [
        f"{year}-{month:02d}-{day:02d}T{hms}{zone}"
        for year in ("0000", "1900", "1970", "2000", "2023", "2024", "2100", "2199", "9999")
        for month in range(14)
        for day in range(33)
        for hms, zone in (("00:00:00", "Z"), ("23:59:59.999999", "+23:59"))
    ]
    values += [
        f"2026-11-26T{h:02d}:{m:02d}:{s:02d}{z}"
        for h in (0, 23, 24)
        for m in (0, 59, 60)
        for s in (0, 59, 60)
        for z in ("Z", "+00:00", "-23:59", "+24:00", "-00:60")
    ]
    _assert_as_before(pa.array(values, pa.string()))


def test_sliced_and_chunked_columns_as_before() -> None:
    """An array with an offset and nulls (its bitmap and offsets read from the offset)."""
    values = pa.array(_strings(99, 1000), pa.string())
    for start, stop in ((1, 1000), (7, 300), (0, 9), (500, 500)):
        _assert_as_before(values.slice(start, stop - start))
    chunked = pa.chunked_array([values.slice(3, 100), values.slice(200, 50)])
    times, _, good = _fast._timestamps(chunked)
    expected, expected_good = _fast._timestamps_arrow(chunked.combine_chunks())
    np.testing.assert_array_equal(good, expected_good)
    assert times.equals(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=34)), min_size=1, max_size=40))
def test_any_text_as_before(values: list[str | None]) -> None:
    _assert_as_before(pa.array(values, pa.string()))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
    st.integers(0, 6),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.sampled_from(["T", " "]),
)
def test_any_valid_moment_as_before(
    moment: datetime, digits: int, offset_minutes: int, separator: str
) -> None:
    """Valid timestamps of any date, fraction width and offset: same microseconds."""
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if digits:
        text += "." + moment.strftime("%f")[:digits]
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    zone = f"{sign}{hours:02d}:{minutes:02d}"
    _assert_as_before(pa.array([text + zone, text + "Z", None], pa.string()))


def _event_times(seed: int, n: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    pairs = zip(_strings(seed, n, recent=True), _strings(~seed, n, recent=True), strict=True)
    for i, (hostile, sent_time) in enumerate(pairs):
        fields: dict[str, object] = {"event_time": hostile}
        if rng.random() < 0.5:  # a valid, recent event time
            recent = f"2026-11-26T{rng.randrange(10, 12):02d}:00:00.{rng.randrange(999)}Z"
            fields["event_time"] = recent
        if rng.random() < 0.7:
            fields["sent_time"] = sent_time if rng.random() < 0.5 else "2026-11-26T11:59:00Z"
        yield json.dumps(telemetry(event_id=f"ts-{i}", **fields)).encode()


@pytest.mark.parametrize("seed", range(4))
def test_hostile_batches_decode_as_before(seed: int) -> None:
    """Rows (values and types), rejections (reason and detail) and event ids, against the same
    decode with the regex and cast, and against the exact decoder."""
    messages = list(_event_times(seed, FAST_MIN_BATCH + 500))
    fast = TELEMETRY._fast_decode(messages, "northwind-auto", NOW, _LIMITS)
    with mock.patch.object(_fast, "_native_micros", None):
        before = TELEMETRY._fast_decode(messages, "northwind-auto", NOW, _LIMITS)
    exact = EventSchema._decode_batch(TELEMETRY, messages, "northwind-auto", NOW, _LIMITS)
    assert fast is not None
    assert before is not None
    for other in (before, exact):
        assert fast.rows.schema == other.rows.schema
        assert fast.rows.equals(other.rows)
        assert fast.rejections == other.rejections
        assert fast.event_ids == other.event_ids
    assert fast.rows.num_rows
    assert fast.rejections


def test_without_the_compiled_function_the_regex_and_cast_check() -> None:
    """An older ``maxlake_native`` (no ``rfc3339_micros``) or none: the previous path runs."""
    assert native_parser.module is not None
    values = pa.chunked_array([pa.array(["2026-11-26T10:00:00Z", "2026-02-30T10:00:00Z"])])
    with mock.patch.object(_fast, "_native_micros", None):
        times, micros, good = _fast._timestamps(values)
    assert good.tolist() == [True, False]
    assert times.null_count == 1
    assert micros[0] == 1_795_687_200_000_000


def test_large_strings_read_as_the_regex_and_cast_read_them() -> None:
    """A ``large_string`` column (64-bit offsets) is not read as 32-bit offsets."""
    values = pa.array(_strings(7, 500), pa.large_string())
    times, micros, good = _fast._timestamps(pa.chunked_array([values]))
    expected, expected_good = _fast._timestamps_arrow(values.cast(pa.string()))
    np.testing.assert_array_equal(good, expected_good)
    assert times.equals(expected)
    reference = np.asarray(expected.cast(pa.int64()).fill_null(0).to_numpy(), np.int64)
    np.testing.assert_array_equal(micros[good], reference[good])


@pytest.mark.skipif(
    _fast._native_micros is None, reason="no maxlake_native with rfc3339_micros: nothing to call"
)
@pytest.mark.parametrize(("length", "offset"), [(2**62, 2**62), (1, 2**64 - 1), (2**63, 0)])
def test_sizes_past_any_buffer_are_a_value_error_not_a_panic(length: int, offset: int) -> None:
    values = pa.array(["2026-11-26T00:00:00Z"], pa.string())
    validity, offsets, data = values.buffers()
    assert _fast._native_micros is not None
    with pytest.raises(ValueError, match=r"overflows|shorter than the array"):
        _fast._native_micros(length, offset, offsets, data, validity)
