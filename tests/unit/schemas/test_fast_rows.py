"""The fast path's row building against the code it replaced (issue 20, fifteenth pass).

Telemetry's ``_fast_body`` places each reading in message order: a message's single ``reading``
first, then its ``readings`` list items, each with its position in its list. It used to do so
with a binary search per item and a stable argsort over all items; it now computes run starts
and the slots the singles land in. These tests keep the old computation as the reference and
require the same items, owners, positions and verdicts on hostile batches (singles and lists
interleaved, both sent in one message, null, empty and oversized lists, null items), and the
same decoded rows, types, rejections and event ids as the exact decoder.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EventKind, event_schema_for
from schemas._fast import Checked, as_mask
from schemas._fastparse import parse_batch
from schemas.event_schema import EventSchema
from schemas.events import telemetry as telemetry_module
from schemas.events.telemetry import FAST_MIN_BATCH, MAX_READINGS, TelemetrySchema
from schemas.results import DecodeLimits
from tests.unit.schemas.events import NOW, telemetry

_SCHEMA = event_schema_for(EventKind.TELEMETRY)
assert isinstance(_SCHEMA, TelemetrySchema)
TELEMETRY: TelemetrySchema = _SCHEMA
_LIMITS = DecodeLimits(max_message_bytes=200_000)


def _reference_order(
    single: pa.StructArray, many: pa.ListArray
) -> tuple[pa.Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Items, owners and positions as ``_fast_body`` computed them before this pass."""
    has_one = as_mask(pc.is_valid(single))
    flat = many.flatten()
    parents = np.asarray(pc.list_parent_indices(many).to_numpy(), np.int64)
    within = np.arange(len(parents), dtype=np.int64) - np.searchsorted(parents, parents)
    if not has_one.any():
        return flat, parents, within
    ones = np.flatnonzero(has_one)
    owners = np.concatenate((ones, parents))
    order = np.argsort(owners, kind="stable")
    items = pa.concat_arrays([single.filter(pa.array(has_one)), flat]).take(order)
    sub = np.concatenate((np.zeros(len(ones), np.int64), within))[order]
    return items, owners[order], sub


_READING = {"tag": "spindle_speed", "value": 12.5, "unit": "rpm", "quality": "GOOD"}
_ODD_READINGS: list[Any] = [
    None,
    {},
    {"tag": "bad tag!", "value": 1},
    {"tag": "x", "value": -0.0, "quality": "good"},
    {"tag": "y", "value": 3, "quality": None},
]


def _hostile_event(rng: random.Random, i: int) -> bytes:
    """A telemetry event whose body is one of the shapes the row building orders."""
    event = telemetry(event_id=f"h-{i}")
    shape = rng.randrange(8)
    if shape in (1, 2, 3):  # a list of 1-6 readings, some odd
        del event["reading"]
        event["readings"] = [
            dict(_READING, tag=f"t{k}") if rng.random() < 0.8 else rng.choice(_ODD_READINGS)
            for k in range(rng.randint(1, 6))
        ]
    elif shape == 4:  # both sent: rejected, but its items are placed and checked too
        event["readings"] = [dict(_READING, tag=f"b{k}") for k in range(rng.randint(0, 3))]
    elif shape == 5:  # an empty, a null or an oversized list
        del event["reading"]
        event["readings"] = rng.choice([[], None, [_READING] * (MAX_READINGS + 1)])
    elif shape == 6:  # a single odd reading
        event["reading"] = rng.choice(_ODD_READINGS)
    return json.dumps(event).encode()


def _hostile_batch(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [_hostile_event(rng, i) for i in range(n)]


def _parsed(messages: list[bytes]) -> pa.Table:
    parsed = parse_batch(messages, _LIMITS.max_message_bytes, telemetry_module._PARSE_SCHEMA)
    assert parsed is not None
    return parsed.table


def _assert_body_as_before(table: pa.Table) -> Checked:
    checked = telemetry_module._fast_body(table)
    single = table["reading"].combine_chunks()
    many = table["readings"].combine_chunks()
    items, owners, sub = _reference_order(single, many)
    assert checked.owners.dtype == np.int64
    np.testing.assert_array_equal(checked.owners, owners)
    expected = {
        "reading_index": pa.array(sub.astype(np.int16)),
        "tag": items.field("tag"),
        "value": items.field("value"),
        "unit": items.field("unit"),
        "quality": pc.fill_null(items.field("quality"), "GOOD"),
    }
    assert list(checked.columns) == list(expected)
    for name, column in expected.items():
        assert checked.columns[name].type == column.type, name
        assert checked.columns[name].equals(column), name
    return checked


@pytest.mark.parametrize("seed", range(6))
def test_hostile_batches_place_every_reading_as_before(seed: int) -> None:
    checked = _assert_body_as_before(_parsed(_hostile_batch(seed, 400)))
    assert not checked.ok.all()  # the batch holds rejected shapes


@pytest.mark.parametrize(
    "bodies",
    [
        [{"reading": _READING}] * 5,  # singles only
        [{"readings": [_READING, _READING]}] * 5,  # lists only
        [{"reading": _READING, "readings": [_READING]}, {"readings": [_READING]}],  # both first
        [{"readings": [_READING]}, {"reading": _READING}],  # a single after the last list
        [{"readings": []}, {"reading": _READING}, {"readings": None}],  # no list item at all
    ],
)
def test_edge_orders_as_before(bodies: list[dict[str, Any]]) -> None:
    messages = []
    for i, body in enumerate(bodies):
        event = {k: v for k, v in telemetry(event_id=f"e-{i}").items() if k != "reading"}
        messages.append(json.dumps({**event, **body}).encode())
    _assert_body_as_before(_parsed(messages))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=60).map(sorted))
def test_positions_within_lists_as_a_binary_search_gave(parents: list[int]) -> None:
    array = np.array(parents, np.int64)
    expected = np.arange(len(array), dtype=np.int64) - np.searchsorted(array, array)
    got = telemetry_module._positions_within(array)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(3))
def test_hostile_batches_decode_as_the_exact_decoder(seed: int) -> None:
    """Rows (values and types), rejections (reason and detail) and event ids."""
    messages = _hostile_batch(100 + seed, FAST_MIN_BATCH + 200)
    fast = TELEMETRY._fast_decode(messages, "northwind-auto", NOW, _LIMITS)
    exact = EventSchema._decode_batch(TELEMETRY, messages, "northwind-auto", NOW, _LIMITS)
    assert fast is not None
    assert fast.rows.schema == exact.rows.schema
    assert fast.rows.equals(exact.rows)
    assert fast.rejections == exact.rejections
    assert fast.event_ids == exact.event_ids
    assert fast.rejections  # the hostile shapes were rejected, not all accepted
    assert fast.rows.num_rows
