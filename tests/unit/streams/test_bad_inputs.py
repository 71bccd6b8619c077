"""Bad-input injection: each class breaks the event the way its name says, in the right share."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.registry import load_registry
from streams.simulator import BAD_CLASSES, Simulator, make_bad

GOOD: dict[str, dict[str, Any]] = {
    "telemetry": {
        "event_id": "e-1",
        "schema_version": 1,
        "kind": "telemetry",
        "tenant": "acme",
        "plant": "p1",
        "line": "l1",
        "machine": "m-1",
        "event_time": "2026-11-26T10:00:00.000000Z",
        "readings": [{"tag": "spindle_temp", "value": 38.5, "unit": "degC", "quality": "GOOD"}],
    },
    "machine_event": {
        "event_id": "e-2",
        "schema_version": 1,
        "kind": "machine_event",
        "tenant": "acme",
        "plant": "p1",
        "line": "l1",
        "machine": "m-1",
        "event_time": "2026-11-26T10:00:00.000000Z",
        "event_type": "STATE",
        "state": "RUNNING",
    },
    "inspection": {
        "event_id": "e-3",
        "schema_version": 1,
        "kind": "inspection",
        "tenant": "acme",
        "plant": "p1",
        "line": "l1",
        "machine": "m-1",
        "event_time": "2026-11-26T10:00:00.000000Z",
        "part_serial": "s-1",
        "lot": "lot-1",
        "machines": ["m-1"],
        "process_start": "2026-11-26T09:59:00.000000Z",
        "process_end": "2026-11-26T10:00:00.000000Z",
        "result": "PASS",
        "defect_codes": [],
        "dimensions": [{"name": "bore_diameter", "value": 82.0, "unit": "mm"}],
    },
}


def _all_classes(kind: str) -> dict[str, bytes]:
    """One payload per class for ``kind``, drawing until every class appeared."""
    rng = random.Random(3)
    previous = orjson.dumps(GOOD[kind])
    found: dict[str, bytes] = {}
    while len(found) < len(BAD_CLASSES):
        name, payload = make_bad(kind, rng, GOOD[kind], previous=previous)
        found.setdefault(name, payload)
    return found


def _loose(payload: bytes) -> Any:
    """Parse like a lenient consumer (Python's json accepts NaN and Infinity)."""
    return json.loads(payload)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_every_class_breaks_the_event_as_named(kind: str) -> None:
    good = GOOD[kind]
    bad = _all_classes(kind)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad["malformed_json"])
    with pytest.raises(UnicodeDecodeError):
        bad["not_utf8"].decode()
    assert bad["empty"] == b""
    assert set(good) - set(_loose(bad["missing_field"]))
    assert _loose(bad["wrong_type"]) != good
    assert bad["duplicate_resend"] == orjson.dumps(good)
    assert len(bad["oversized"]) > 256 * 1024
    assert _loose(bad["tenant_mismatch"])["tenant"] != good["tenant"]
    assert _loose(bad["unknown_schema_version"])["schema_version"] not in (1, "1")
    future = datetime.fromisoformat(_loose(bad["future_time"])["event_time"])
    past = datetime.fromisoformat(_loose(bad["past_time"])["event_time"])
    at = datetime.fromisoformat(good["event_time"])
    assert (future - at).days >= 30
    assert (at - past).days >= 730
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad["nan_or_infinity"])
    assert any(
        isinstance(v, float) and not math.isfinite(v)
        for v in _numbers(_loose(bad["nan_or_infinity"]))
    )
    assert "unknown" in bad["unknown_tag"].decode().lower()
    assert _loose(bad["out_of_range"]) != good


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []


def test_good_event_is_not_modified() -> None:
    snapshot = orjson.dumps(GOOD["telemetry"])
    _all_classes("telemetry")
    assert orjson.dumps(GOOD["telemetry"]) == snapshot


def test_duplicate_resend_needs_an_earlier_event() -> None:
    rng = random.Random(1)
    names = {make_bad("telemetry", rng, GOOD["telemetry"])[0] for _ in range(2000)}
    assert names == set(BAD_CLASSES) - {"duplicate_resend"}


def test_simulator_injects_the_requested_share_uniformly_over_classes() -> None:
    sim = Simulator(
        load_registry(),
        seed=2,
        start=datetime(2026, 11, 26, tzinfo=UTC),
        bad_rate=0.2,
        tenants=["circuitry-electronics"],
    )
    events = list(sim.events(3 * 3600))
    bad = Counter(e.bad_class for e in events if e.bad_class is not None)
    share = sum(bad.values()) / len(events)
    assert 0.19 < share < 0.21
    assert set(bad) == set(BAD_CLASSES)
    expected = sum(bad.values()) / len(BAD_CLASSES)
    assert all(0.85 * expected < n < 1.15 * expected for n in bad.values()), bad
    good_payloads = {e.payload for e in events if e.bad_class is None}
    duplicates = [e.payload for e in events if e.bad_class == "duplicate_resend"]
    assert all(p in good_payloads for p in duplicates)
