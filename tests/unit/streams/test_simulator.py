"""The simulator is deterministic; its physics make wear, alarms, downtime and quality visible."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from maxlake.errors import ConfigError
from schemas.registry import Registry, load_registry
from streams.simulator import SimEvent, Simulator

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def day(registry: Registry) -> list[SimEvent]:
    """Twelve simulated hours of the automotive tenant (CNC mills on block-l1, among others)."""
    simulator = Simulator(registry, seed=11, start=START, tenants=["northwind-auto"])
    return list(simulator.events(12 * 3600))


def _decoded(events: list[SimEvent], kind: str) -> list[dict[str, Any]]:
    return [orjson.loads(e.payload) for e in events if e.kind == kind and e.bad_class is None]


def test_same_seed_and_options_give_the_same_bytes(registry: Registry) -> None:
    def run(seed: int) -> list[tuple[str, str, bytes, bytes, str | None]]:
        sim = Simulator(registry, seed=seed, start=START, bad_rate=0.1, scale=2)
        return [(e.tenant, e.kind, e.key, e.payload, e.bad_class) for e in sim.events(900)]

    first = run(5)
    assert first == run(5)
    assert first != run(6)


def test_a_run_started_later_sends_new_event_ids_for_its_new_events(registry: Registry) -> None:
    def ids(start: datetime) -> set[str]:
        sim = Simulator(registry, seed=0, start=start, tenants=["northwind-auto"], bad_rate=0.0)
        return {orjson.loads(e.payload)["event_id"] for e in sim.events(600)}

    first, again = ids(START), ids(START)
    later = ids(START.replace(hour=START.hour + 1))
    assert first == again
    assert len(later) > 100
    assert not first & later


def test_events_follow_the_envelope(day: list[SimEvent]) -> None:
    ids = set()
    for event in itertools.islice(day, 5000):
        body = orjson.loads(event.payload)
        assert body["schema_version"] == 1
        assert body["kind"] == event.kind
        assert body["tenant"] == event.tenant == "northwind-auto"
        assert event.key == body["machine"].encode()
        assert body["event_time"].endswith("Z")
        ids.add(body["event_id"])
    assert len(ids) == 5000


def test_telemetry_is_mostly_snapshots_within_physical_ranges(
    day: list[SimEvent], registry: Registry
) -> None:
    telemetry = _decoded(day, "telemetry")
    snapshots = sum("readings" in t for t in telemetry)
    assert 0.75 < snapshots / len(telemetry) < 0.95
    spec = registry.machine_types["cnc_mill"]
    for event in telemetry[:20000]:
        for reading in event.get("readings") or [event["reading"]]:
            tag = spec.tag(reading["tag"])
            if tag is not None:
                assert tag.min <= reading["value"] <= tag.max


def test_wear_leads_to_rising_alarms_then_down_then_maintenance(day: list[SimEvent]) -> None:
    per_machine: dict[str, list[tuple[str, Any]]] = {}
    for event in _decoded(day, "machine_event"):
        detail = event.get("state") or event["alarm"]["severity"]
        per_machine.setdefault(event["machine"], []).append((event["event_type"], detail))
    cycles = 0
    for history in per_machine.values():
        for i, (etype, detail) in enumerate(history):
            if (etype, detail) != ("STATE", "DOWN"):
                continue
            cycles += 1
            before = [d for t, d in history[:i] if t == "ALARM"][-2:]
            assert before, history[: i + 1]
            assert before == sorted(before), history[: i + 1]
            assert ("STATE", "MAINTENANCE") in history[i + 1 : i + 2] or i == len(history) - 1
    assert cycles >= 2
    states = Counter(d for history in per_machine.values() for t, d in history if t == "STATE")
    assert {"RUNNING", "IDLE", "SETUP", "DOWN", "MAINTENANCE"} <= set(states)


def test_a_failure_raises_the_most_severe_alarm_and_warnings_stay_below_it(
    day: list[SimEvent], registry: Registry
) -> None:
    types = {m["machine"]: m["machine_type"] for m in registry.machines().to_pylist()}
    events = _decoded(day, "machine_event")
    downs = 0
    for i, event in enumerate(events):
        if (event["event_type"], event.get("state")) != ("STATE", "DOWN"):
            continue
        downs += 1
        alarms = registry.machine_types[types[event["machine"]]].alarms
        worst = max(a.severity for a in alarms)
        before = [e for e in events[:i] if e["machine"] == event["machine"]]
        assert before[-1]["event_type"] == "ALARM"
        assert before[-1]["alarm"]["severity"] == worst
        codes = {a.code for a in alarms if a.severity == worst}
        assert before[-1]["alarm"]["code"] in codes
    assert downs >= 2
    cnc_codes = {e["alarm"]["code"] for e in events if e["event_type"] == "ALARM"}
    assert "CNC-1002" in cnc_codes  # tool breakage, as documented


def test_failing_parts_come_with_high_vibration(day: list[SimEvent]) -> None:
    vibration: dict[str, float] = {}
    by_result: dict[str, list[float]] = {"PASS": [], "NOT_PASS": []}
    for event in day:
        if event.bad_class is not None or event.kind == "machine_event":
            continue
        body = orjson.loads(event.payload)
        if event.kind == "telemetry":
            for reading in body.get("readings") or [body["reading"]]:
                if reading["tag"] == "vibration_rms":
                    vibration[body["machine"]] = reading["value"]
        elif body["line"] == "block-l1":
            worst = max(vibration.get(m, 0.0) for m in body["machines"])
            by_result["PASS" if body["result"] == "PASS" else "NOT_PASS"].append(worst)
    assert len(by_result["NOT_PASS"]) > 20
    assert statistics.mean(by_result["NOT_PASS"]) > 1.2 * statistics.mean(by_result["PASS"])


def test_inspections_describe_the_part_and_its_window(day: list[SimEvent]) -> None:
    inspections = _decoded(day, "inspection")
    assert inspections
    results = Counter(i["result"] for i in inspections)
    assert results["PASS"] > results["FAIL"] > 0
    assert results["REWORK"] > 0
    for part in inspections[:200]:
        assert part["process_start"] < part["process_end"]
        assert part["machines"]
        assert part["dimensions"]
        assert (part["result"] == "PASS") == (part["defect_codes"] == [])


def test_scale_multiplies_machines_and_tenants_filter(registry: Registry) -> None:
    one = Simulator(registry, start=START, tenants=["ironbridge-steel"])
    three = Simulator(registry, start=START, tenants=["ironbridge-steel"], scale=3)
    assert three.machine_count == 3 * one.machine_count
    assert {e.tenant for e in one.events(60)} == {"ironbridge-steel"}


def test_invalid_options_are_config_errors(registry: Registry) -> None:
    with pytest.raises(ConfigError, match="unknown tenants"):
        Simulator(registry, start=START, tenants=["nobody"])
    with pytest.raises(ConfigError, match="bad_rate"):
        Simulator(registry, start=START, bad_rate=1.0)
    with pytest.raises(ConfigError, match="timezone"):
        Simulator(registry, start=datetime(2026, 1, 1))


def test_measured_magnitudes_are_never_negative(registry: Registry) -> None:
    sim = Simulator(registry, seed=3, start=START, bad_rate=0.0, tenants=["northwind-auto"])
    values = [
        (d["name"], d["value"])
        for e in sim.events(6 * 3600)
        if e.kind == "inspection"
        for d in orjson.loads(e.payload).get("dimensions", [])
    ]
    flatness = [v for name, v in values if name == "face_flatness"]
    assert len(flatness) > 100
    assert min(v for name, v in values if name != "placement_x_offset") >= 0.0
