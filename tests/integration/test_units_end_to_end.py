"""Units through a real broker and a worker of each engine: converted, assumed or quarantined.

A spindle speed in Hz is refused (pint alone would store it 2*pi too small), one in rev/s is
converted; a temperature in bar gets ``unit_mismatch`` only; a reading without a unit gets the
registry unit in silver; an inspection dimension in parsecs is quarantined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.simulator import SimEvent
from tests.integration.ingest_helpers import (
    IngestEnv,
    assert_invariant,
    produce,
    read_table,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

TENANT = "northwind-auto"


def _crafted(events: list[SimEvent]) -> list[SimEvent]:
    """Hand-made variants of one good cnc telemetry event and one good inspection."""
    telemetry = next(e for e in events if e.kind == "telemetry" and b'"spindle_speed"' in e.payload)
    inspection = next(e for e in events if e.kind == "inspection")
    base = json.loads(telemetry.payload)
    base.pop("readings", None)
    base.pop("reading", None)
    readings: dict[str, dict[str, Any]] = {
        "u-hz": {"tag": "spindle_speed", "value": 200.0, "unit": "Hz"},
        "u-revs": {"tag": "spindle_speed", "value": 200.0, "unit": "rev/s"},
        "u-bar": {"tag": "spindle_temp", "value": 1.0, "unit": "bar"},
        "u-none": {"tag": "spindle_temp", "value": 41.0},
    }
    out = []
    for event_id, reading in readings.items():
        body = {**base, "event_id": event_id, "reading": reading}
        out.append(SimEvent(TENANT, "telemetry", telemetry.key, json.dumps(body).encode()))
    part = json.loads(inspection.payload)
    part.update(
        event_id="u-parsec",
        result="PASS",
        defect_codes=[],
        dimensions=[{"name": "bore_diameter", "value": 1e300, "unit": "parsec"}],
    )
    out.append(SimEvent(TENANT, "inspection", inspection.key, json.dumps(part).encode()))
    return out


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_units_are_converted_assumed_or_quarantined_with_one_reason(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, engine: str
) -> None:
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, (TENANT,), engine=engine)
    env.create_topics()
    good = simulate((TENANT,), seed=5, duration_s=120, bad_rate=0.0)
    events = [*good, *_crafted(good)]
    produced = produce(env, events)

    with workers(env, "solo") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=150)
        code = worker.terminate()
    assert code == 0, worker.log_tail()
    assert_invariant(env)

    columns = ["event_id", "tag", "value", "unit", "value_sent", "unit_sent"]
    silver = read_table(env, "silver/telemetry", columns)
    mine = {r["event_id"]: r for r in silver.to_dicts() if r["event_id"].startswith("u-")}
    assert set(mine) == {"u-revs", "u-none"}
    assert mine["u-revs"]["value"] == pytest.approx(12000.0)
    assert (mine["u-revs"]["unit"], mine["u-revs"]["value_sent"]) == ("rpm", 200.0)
    assert mine["u-revs"]["unit_sent"] == "rev/s"
    assert (mine["u-none"]["unit"], mine["u-none"]["value"]) == ("degC", 41.0)
    assert (mine["u-none"]["value_sent"], mine["u-none"]["unit_sent"]) == (41.0, None)
    assert silver.filter(silver["unit"].is_null()).height == 0

    reasons: dict[str, tuple[list[str], list[str]]] = {}
    for kind in ("telemetry", "inspection"):
        quarantine = read_table(env, f"quarantine/{kind}", ["event_id", "reasons", "details"])
        for row in quarantine.to_dicts():
            reasons[row["event_id"]] = (row["reasons"], row["details"])
    assert set(reasons) == {"u-hz", "u-bar", "u-parsec"}
    assert reasons["u-hz"][0] == ["unit_mismatch"]
    assert "ambiguous" in reasons["u-hz"][1][0]
    assert reasons["u-bar"][0] == ["unit_mismatch"]
    assert reasons["u-parsec"][0] == ["dimension_out_of_range"]
    assert "'bore_diameter' 1e+300 parsec" in reasons["u-parsec"][1][0]
