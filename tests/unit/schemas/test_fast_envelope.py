"""The fast path's envelope shortcuts against the Arrow kernels they replace (issue 20,
sixteenth pass): the event id's length read from the offsets, the ``date`` column from the
microseconds, the topic's tenant repeated instead of gathered per reading."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EventKind, _fast, event_schema_for
from schemas._columns import TIMESTAMP
from schemas.event_schema import EventSchema
from schemas.events.telemetry import FAST_MIN_BATCH, TelemetrySchema
from schemas.results import DecodeLimits
from tests.unit.schemas.events import NOW, telemetry

_SCHEMA = event_schema_for(EventKind.TELEMETRY)
assert isinstance(_SCHEMA, TelemetrySchema)
TELEMETRY: TelemetrySchema = _SCHEMA
_LIMITS = DecodeLimits(max_message_bytes=200_000)


def _sized_before(strings: pa.Array, most: int) -> np.ndarray:
    length = pc.utf8_length(strings)
    return _fast.as_mask(pc.and_(pc.greater_equal(length, 1), pc.less_equal(length, most)))


_IDS = st.one_of(
    st.none(),
    st.text(max_size=140),
    st.text(alphabet="é€😀a", min_size=30, max_size=140),  # multi-byte: bytes > characters
    st.integers(120, 135).map(lambda n: "x" * n),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_IDS, max_size=30), st.integers(0, 3))
def test_event_id_lengths_as_utf8_length_gave(values: list[str | None], cut: int) -> None:
    strings = pa.array(values, pa.string())
    strings = strings.slice(min(cut, len(strings)))  # an offset into the buffers
    np.testing.assert_array_equal(_fast._sized(strings, 128), _sized_before(strings, 128))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 7_258_118_400 * 10**6 - 1)), max_size=30))
def test_dates_as_the_cast_gave(values: list[int | None]) -> None:
    """Times from 1970 to 2199 (the window admits no others), some null."""
    times = pa.array(values, pa.int64()).cast(TIMESTAMP)
    good = _fast.as_mask(pc.is_valid(times))
    micros = np.asarray(times.cast(pa.int64()).fill_null(0).to_numpy(), np.int64)
    dates = _fast._dates(micros, good)
    assert dates.type == pa.date32()
    assert dates.equals(pc.cast(times, pa.date32()))


def _mixed_batch(seed: int, n: int) -> list[bytes]:
    """Telemetry of the topic's tenant and of others, lists and singles, long event ids."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fields: dict[str, object] = {"event_id": f"env-{i}"}
        roll = rng.random()
        if roll < 0.1:
            fields["tenant"] = rng.choice(["other-tenant", "northwind-autO", "", None, 7])
        elif roll < 0.2:
            fields["event_id"] = rng.choice(["é" * 128, "é" * 129, "x" * 129, "", "€" * 50])
        event = {**telemetry(), **fields}
        if rng.random() < 0.6:
            del event["reading"]
            event["readings"] = [
                {"tag": f"t{k}", "value": k, "unit": "mm"} for k in range(rng.randint(1, 5))
            ]
        out.append(json.dumps(event).encode())
    return out


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tenant", ["northwind-auto", None])
def test_mixed_batches_decode_as_the_exact_decoder(seed: int, tenant: str | None) -> None:
    messages = _mixed_batch(seed, FAST_MIN_BATCH + 300)
    fast = TELEMETRY._fast_decode(messages, tenant, NOW, _LIMITS)
    exact = EventSchema._decode_batch(TELEMETRY, messages, tenant, NOW, _LIMITS)
    assert fast is not None
    assert fast.rows.schema == exact.rows.schema
    assert fast.rows.equals(exact.rows)
    assert fast.rejections == exact.rejections
    assert fast.event_ids == exact.event_ids
    assert fast.rows.num_rows > FAST_MIN_BATCH
    assert any(len(e or "") > 64 for e in fast.rows["event_id"].to_pylist())


def _as_mask_before(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), bool)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.booleans()), max_size=70),
    st.integers(0, 17),
    st.integers(0, 3),
)
def test_masks_as_arrow_converted_them(values: list[bool | None], cut: int, chunks: int) -> None:
    """Sliced (bit offsets), chunked and null-holding booleans: True only where true."""
    arr = pa.array(values, pa.bool_()).slice(min(cut, len(values)))
    got = _fast.as_mask(arr)
    np.testing.assert_array_equal(got, _as_mask_before(arr))
    got &= True  # writable, as the callers use it
    bounds = sorted({0, len(arr), *(len(arr) * k // (chunks + 1) for k in range(1, chunks + 1))})
    pieces = [arr.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    chunked = pa.chunked_array(pieces, pa.bool_())
    np.testing.assert_array_equal(_fast.as_mask(chunked), _as_mask_before(chunked))


def test_a_null_with_its_value_bit_set_is_false() -> None:
    """Arrow leaves a null's value bit undefined: kernels may set it."""
    values = pa.py_buffer(np.packbits([1, 1, 0, 1, 1, 1, 0, 0, 1, 1], bitorder="little"))
    validity = pa.py_buffer(np.packbits([1, 0, 1, 0, 1, 1, 1, 1, 0, 1], bitorder="little"))
    arr = pa.Array.from_buffers(pa.bool_(), 10, [validity, values], 3)
    for piece in (arr, arr.slice(1), arr.slice(3, 6)):
        np.testing.assert_array_equal(_fast.as_mask(piece), _as_mask_before(piece))
    assert _fast.as_mask(arr).tolist() == [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]


def test_a_mask_of_an_all_null_column_is_false_everywhere() -> None:
    """A column of Arrow's null type (no value buffer: a JSON field that was null in every
    message) reads as False, not as an error."""
    np.testing.assert_array_equal(_fast.as_mask(pa.nulls(3)), [False, False, False])
    np.testing.assert_array_equal(_fast.as_mask(pa.nulls(2, pa.bool_())), [False, False])
