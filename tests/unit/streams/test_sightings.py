"""The compact dedupe state: same answers as a dict of coordinate tuples."""

from __future__ import annotations

import random

from streams.sightings import Sightings


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
    for _ in range(5000):
        eid = f"e{rng.randrange(800)}"
        coords = (f"t.{rng.choice('ab')}.telemetry", rng.randrange(12), rng.randrange(2**45))
        if rng.random() < 0.1:
            seen.set(eid, *coords)
            plain[eid] = coords
            continue
        first = plain.setdefault(eid, coords)
        assert seen.first_elsewhere(eid, *coords) == (None if first == coords else first)
    assert {e: seen.get(e) for e in plain} == plain
