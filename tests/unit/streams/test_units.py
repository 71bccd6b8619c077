"""Readings in a unit that converts to the registry unit are converted (what was sent is kept in
silver); a unit that does not convert, or only ambiguously (Hz for rpm), is quarantined as
``unit_mismatch`` alone, naming both units; range checks run on converted values; a reading
without a unit is stored in the registry unit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from lake import DeltaStore
from tests.unit.lake.batches import messages, pipeline

TOPIC = "maxlake.northwind-auto.telemetry"


def _event(i: int, value: float, unit: str | None, tag: str = "spindle_temp") -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    reading: dict[str, Any] = {"tag": tag, "value": value}
    if unit is not None:
        reading["unit"] = unit
    return orjson.dumps(
        {
            "event_id": f"units-{i}",
            "schema_version": 1,
            "kind": "telemetry",
            "tenant": "northwind-auto",
            "plant": "stuttgart",
            "line": "block-l1",
            "machine": "cnc-101",
            "event_time": now,
            "readings": [reading],
        }
    )


def _table(root: Path, name: str, columns: list[str]) -> pl.DataFrame:
    frame = DeltaStore(root).read_frame(name, columns=columns)
    assert frame is not None
    return frame


def test_degf_is_converted_and_kept_and_inconvertible_units_are_quarantined(
    tmp_path: Path,
) -> None:
    payloads = [
        _event(0, 38.0, "degC"),
        _event(1, 86.0, "degF"),
        _event(2, 88.0, "degF"),
        _event(3, 37.0, None),
        _event(4, 300.0, "K"),
        _event(5, 40.0, "bar"),
        _event(6, 200.0, "degF"),
    ]
    result = pipeline(tmp_path).process("telemetry", messages(payloads, topic=TOPIC))
    assert (result.silver_events, result.quarantined) == (5, 2)
    silver = _table(
        tmp_path, "silver/telemetry", ["event_id", "value", "unit", "value_sent", "unit_sent"]
    ).sort("event_id")
    rows = {r["event_id"]: r for r in silver.iter_rows(named=True)}
    assert rows["units-0"] == {
        "event_id": "units-0",
        "value": 38.0,
        "unit": "degC",
        "value_sent": None,
        "unit_sent": None,
    }
    assert rows["units-1"]["value"] == pytest.approx(30.0)
    assert (
        rows["units-1"]["unit"],
        rows["units-1"]["value_sent"],
        rows["units-1"]["unit_sent"],
    ) == ("degC", 86.0, "degF")
    assert rows["units-2"]["value"] == pytest.approx(31.111, abs=1e-3)
    assert (rows["units-3"]["value"], rows["units-3"]["unit"]) == (37.0, "degC")
    assert (rows["units-3"]["value_sent"], rows["units-3"]["unit_sent"]) == (37.0, None)
    assert rows["units-4"]["value"] == pytest.approx(26.85)
    assert set(silver["unit"].to_list()) == {"degC"}

    quarantine = _table(tmp_path, "quarantine/telemetry", ["event_id", "reasons", "details"])
    found = {r["event_id"]: (r["reasons"], r["details"]) for r in quarantine.iter_rows(named=True)}
    assert found["units-5"] == (
        ["unit_mismatch"],
        [
            "tag 'spindle_temp': unit 'bar' does not convert to the registry unit 'degC': "
            "their dimensions differ"
        ],
    )
    reasons, details = found["units-6"]
    assert reasons == ["tag_value_not_above_physical_max"]
    assert details == [
        "tag 'spindle_temp': value 93.3333 degC (sent as 200.0 degF) is above the "
        "registry maximum 90.0 degC"
    ]


def test_hz_for_rpm_is_quarantined_and_a_wrong_unit_gets_no_range_reason(tmp_path: Path) -> None:
    payloads = [
        _event(0, 200.0, "Hz", tag="spindle_speed"),
        _event(1, 200.0, "rev/s", tag="spindle_speed"),
        _event(2, 1.0, "bar"),  # 1 is below spindle_temp's minimum 10 degC, but it is no degC
        _event(3, 1256.6, "rad/s", tag="spindle_speed"),
    ]
    result = pipeline(tmp_path).process("telemetry", messages(payloads, topic=TOPIC))
    assert (result.silver_events, result.quarantined) == (2, 2)
    silver = _table(tmp_path, "silver/telemetry", ["event_id", "value", "unit"])
    values = {r["event_id"]: (r["value"], r["unit"]) for r in silver.iter_rows(named=True)}
    assert values["units-1"] == (pytest.approx(12000.0), "rpm")
    assert values["units-3"] == (pytest.approx(11999.646, abs=1e-3), "rpm")
    quarantine = _table(tmp_path, "quarantine/telemetry", ["event_id", "reasons", "details"])
    found = {r["event_id"]: (r["reasons"], r["details"]) for r in quarantine.iter_rows(named=True)}
    assert found["units-0"][0] == ["unit_mismatch"]
    assert "ambiguous" in found["units-0"][1][0]
    assert found["units-2"][0] == ["unit_mismatch"]
