"""The dedupe state against the previous code (2026-12-02, before the sixteenth pass, kept in
:mod:`tests.unit.streams.previous_prepare`): ids hashed to the same 128 bits, levels holding the
same arrays, the same answers."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import sightings
from streams.sightings import Sightings, _hashes, _Level, id_array
from tests.unit.streams.previous_prepare import (
    ReferenceLevel,
    previous_code,
    reference_hashes,
)

_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["e1", "e2", "é", "\U0001f600", "", "a" * 200, "\ud800x"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXT, max_size=60))
def test_hashes_equal_the_previous_hashes(ids: list[str]) -> None:
    got = _hashes(id_array(ids))
    want = reference_hashes(id_array(ids))
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype == np.uint64
        np.testing.assert_array_equal(a, b)


def test_hashes_of_bytes_and_mixed_ids_equal_the_previous_hashes() -> None:
    ids = np.array([b"e1", "e1", b"\xff\xfe", "\u00e9", b"", ""], object)
    for a, b in zip(_hashes(ids), reference_hashes(ids), strict=True):
        np.testing.assert_array_equal(a, b)


_U64 = st.integers(0, 2**64 - 1)


@settings(max_examples=300, deadline=None)
@given(
    held=st.lists(
        st.tuples(st.sampled_from([0, 1, 5, 2**63, 2**64 - 1]) | _U64, _U64), max_size=40
    ),
    new=st.lists(st.tuples(st.sampled_from([0, 1, 5, 2**63, 2**64 - 1]) | _U64, _U64), max_size=40),
    ordered=st.booleans(),
)
def test_level_insert_equals_np_insert(
    held: list[tuple[int, int]], new: list[tuple[int, int]], ordered: bool
) -> None:
    """Equal high bits in both the level and the batch (ties), batches in any order."""
    level, reference = _Level(), ReferenceLevel()
    for target in (level, reference):
        hi = np.array([h for h, _ in held], np.uint64)
        lo = np.array([low for _, low in held], np.uint64)
        target.insert(
            hi, lo, np.arange(len(hi), dtype=np.int64), np.arange(len(hi), dtype=np.int32)
        )
    if ordered:
        new = sorted(new, key=lambda p: p[0])
    hi = np.array([h for h, _ in new], np.uint64)
    lo = np.array([low for _, low in new], np.uint64)
    offset = np.arange(100, 100 + len(hi), dtype=np.int64)
    slot = np.arange(7, 7 + len(hi), dtype=np.int32)
    digest = np.arange(-3, -3 + len(hi), dtype=np.int64)
    level.insert(hi, lo, offset, slot, digest, ordered=ordered)
    reference.insert(hi, lo, offset, slot, digest)
    for name in _Level.__slots__:
        got, want = getattr(level, name), getattr(reference, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["first", "first", "first", "set"]),
        st.lists(
            st.tuples(
                st.integers(0, 300).map(lambda i: f"e{i}") | _TEXT,
                st.integers(0, 5),
                st.integers(0, 2**45),
                st.sampled_from([0, 1, 2, -1, 2**62]),
            ),
            max_size=80,
        ),
    ),
    max_size=14,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_sightings_decide_as_the_previous_code(ops: list[tuple[str, list[Any]]]) -> None:
    """Random batches of sightings and overrides (repeats within and across batches, levels
    merging): every answer and the whole state equal the previous code's."""
    new, old = Sightings(), Sightings()
    for op, batch in ops:
        ids = id_array([b[0] for b in batch])
        slots = np.array([b[1] for b in batch], np.int32)
        offsets = np.array([b[2] for b in batch], np.int64)
        digests = np.array([b[3] for b in batch], np.int64)
        if op == "set":
            new.set_many(ids, slots, offsets, digests)
            with previous_code():
                old.set_many(ids, slots, offsets, digests)
            continue
        got = new.first_copies(ids, slots, offsets, digests)
        with previous_code():
            want = old.first_copies(ids, slots, offsets, digests)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert [len(level) for level in new._levels] == [len(level) for level in old._levels]
    for mine, previous in zip(new._levels, old._levels, strict=True):
        for name in _Level.__slots__:
            np.testing.assert_array_equal(
                getattr(mine, name), getattr(previous, name), err_msg=name
            )


@settings(max_examples=100, deadline=None)
@given(st.lists(_TEXT, max_size=60))
def test_hashes_without_the_native_module_equal_the_previous_hashes(ids: list[str]) -> None:
    saved = sightings._native_id_hashes
    sightings._native_id_hashes = None
    try:
        got = _hashes(id_array(ids))
    finally:
        sightings._native_id_hashes = saved
    for a, b in zip(got, reference_hashes(id_array(ids)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_native_module_hashes_ids() -> None:
    """The native path is taken where it is built (an older build falls back to pandas)."""
    if sightings._native_id_hashes is None:
        return
    ids = id_array(["e1", "\u00e9t\u00e9", "\U0001f600", ""])
    native = sightings._native_id_hashes(ids.tolist(), *sightings._KEY_BYTES)
    assert native is not None
    assert sightings._native_id_hashes(["\ud800"], *sightings._KEY_BYTES) is None
    assert sightings._native_id_hashes([b"e1"], *sightings._KEY_BYTES) is None
