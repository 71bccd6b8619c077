"""The compact dedupe state: same answers as a dict of coordinate tuples."""

from __future__ import annotations

import random

import numpy as np

from streams.sightings import Sightings, _groups, _Level, id_array


def test_first_sighting_wins_and_reports_where() -> None:
    seen = Sightings()
    assert seen.first_elsewhere("e1", "t.a.telemetry", 3, 10) is None
    assert seen.first_elsewhere("e1", "t.a.telemetry", 3, 10) is None  # a retry, same place
    assert seen.first_elsewhere("e1", "t.a.telemetry", 3, 11) == ("t.a.telemetry", 3, 10)
    assert seen.first_elsewhere("e1", "t.b.telemetry", 0, 2) == ("t.a.telemetry", 3, 10)
    seen.set("e1", "t.b.telemetry", 0, 2)
    assert seen.get("e1") == ("t.b.telemetry", 0, 2)
    assert seen.get("e2") is None
    assert "e1" in seen
    assert "e2" not in seen
    assert len(seen) == 1


def test_matches_a_dict_of_tuples_on_random_sightings() -> None:
    rng = random.Random(7)
    seen, plain = Sightings(), dict[str, tuple[str, int, int]]()
    for _ in range(600):
        eid = f"e{rng.randrange(150)}"
        coords = (f"t.{rng.choice('ab')}.telemetry", rng.randrange(12), rng.randrange(2**45))
        if rng.random() < 0.1:
            seen.set(eid, *coords)
            plain[eid] = coords
            continue
        first = plain.setdefault(eid, coords)
        assert seen.first_elsewhere(eid, *coords) == (None if first == coords else first)
    assert {e: seen.get(e) for e in plain} == plain


def test_batches_of_sightings_match_one_by_one_sightings_in_order() -> None:
    rng = random.Random(11)
    seen, plain = Sightings(), dict[str, tuple[int, int]]()
    for _ in range(30):
        n = rng.randrange(0, 1000)
        ids = [f"e{rng.randrange(6_000)}" for _ in range(n)]
        slots = np.array(
            [seen.slot(f"t.{rng.choice('ab')}.telemetry", rng.randrange(4)) for _ in ids]
        )
        offsets = np.array([rng.randrange(2**45) for _ in ids], np.int64)
        if rng.random() < 0.2:
            seen.set_many(id_array(ids), slots, offsets)
            plain.update(zip(ids, zip(slots.tolist(), offsets.tolist(), strict=True), strict=True))
            continue
        coords = zip(slots.tolist(), offsets.tolist(), strict=True)
        want = [plain.setdefault(e, c) for e, c in zip(ids, coords, strict=True)]
        first_slot, first_offset = seen.first_sightings(id_array(ids), slots, offsets)
        assert list(zip(first_slot.tolist(), first_offset.tolist(), strict=True)) == want
    assert len(seen) == len(plain)
    stored = list(plain.values())
    first_slot, first_offset = seen.first_sightings(
        id_array(list(plain)), np.array([c[0] for c in stored]), np.array([c[1] for c in stored])
    )
    assert list(zip(first_slot.tolist(), first_offset.tolist(), strict=True)) == stored
    assert len(seen) == len(plain)


def test_ids_whose_high_hash_bits_collide_are_told_apart_by_the_low_bits() -> None:
    level = _Level()
    hi = np.array([5, 5, 5, 9], np.uint64)
    level.insert(hi, np.array([3, 1, 2, 1], np.uint64), np.arange(4), np.zeros(4, np.int32))
    found = level.find(
        np.array([5, 5, 5, 5, 9, 7], np.uint64), np.array([1, 2, 3, 4, 1, 1], np.uint64)
    )
    assert level.offset[found[:3]].tolist() == [1, 2, 0]
    assert found[3:].tolist() == [-1, level.hi.tolist().index(9), -1]


def test_ids_that_are_not_valid_utf8_text_still_hash() -> None:
    seen = Sightings()
    assert seen.first_elsewhere("a\ud800", "t.a.telemetry", 0, 1) is None
    assert seen.first_elsewhere("a\ud800", "t.a.telemetry", 0, 2) == ("t.a.telemetry", 0, 1)
    assert seen.get("a\udc00") is None


def test_repeats_group_together_when_other_ids_share_their_high_bits() -> None:
    hi = np.array([5, 5, 5, 7], np.uint64)
    lo = np.array([1, 2, 1, 1], np.uint64)
    order, starts = _groups(np.arange(4), hi, lo)
    groups = np.split(order, np.flatnonzero(starts)[1:])
    assert sorted(g.tolist() for g in groups) == [[0, 2], [1], [3]]
