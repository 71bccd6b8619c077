"""Registry key columns: each row keyed by its own envelope and tag, however the rows arrive."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from quality import ValidationGateway, enrich
from quality.enrich import RegistryIndex, derive_columns
from schemas import EventKind, Registry
from tests.unit.quality.rows import telemetry

KEYS = ("machine_key", "machine_type", "machine_type_tag", "registry_unit")


def _snapshots(first_msg: int = 0) -> pa.Table:
    """Three snapshot messages of 3, 1 and 2 readings: cnc-101, an unknown machine, cnc-102."""
    readings: list[dict[str, Any]] = []
    for msg, machine, tags in (
        (0, "cnc-101", ("spindle_speed", "spindle_temp", "no_such_tag")),
        (1, "not-registered", ("spindle_speed",)),
        (2, "cnc-102", ("vibration_rms", "spindle_speed")),
    ):
        for i, tag in enumerate(tags):
            readings.append(
                {"_msg": first_msg + msg, "machine": machine, "tag": tag, "reading_index": i}
            )
    return telemetry(*readings)


def _expected(rows: pa.Table, registry: Registry) -> dict[str, list[str | None]]:
    machine_type = {
        f"{m['tenant']}/{m['plant']}/{m['line']}/{m['machine']}": m["machine_type"]
        for m in registry.machines().to_pylist()
    }
    unit = {f"{r['machine_type']}/{r['tag']}": r["unit"] for r in registry.tag_ranges().to_pylist()}
    out: dict[str, list[str | None]] = {k: [] for k in KEYS}
    for row in rows.to_pylist():
        key = f"{row['tenant']}/{row['plant']}/{row['line']}/{row['machine']}"
        mtype = machine_type.get(key)
        type_tag = None if mtype is None else f"{mtype}/{row['tag']}"
        out["machine_key"].append(key)
        out["machine_type"].append(mtype)
        out["machine_type_tag"].append(type_tag)
        out["registry_unit"].append(unit.get(type_tag) if type_tag else None)
    return out


def _derived(rows: pa.Table, registry: Registry) -> dict[str, list[str | None]]:
    table = derive_columns(EventKind.TELEMETRY, rows, KEYS, RegistryIndex(registry))
    return {name: table.column(name).to_pylist() for name in KEYS}


@pytest.mark.parametrize(
    "arrangement", ["one decode", "two decodes concatenated", "without _msg", "reversed"]
)
def test_key_columns_follow_each_rows_own_envelope_and_tag(
    registry: Registry, arrangement: str
) -> None:
    rows = _snapshots()
    if arrangement == "two decodes concatenated":
        # the second decode's message numbers start again at 0 with other machines
        later = _snapshots().take([3, 4, 5, 0, 1, 2])
        rows = pa.concat_tables([rows, later])
    elif arrangement == "without _msg":
        rows = rows.drop_columns(["_msg"])
    elif arrangement == "reversed":
        rows = rows.take(list(range(rows.num_rows))[::-1])
    expected = _expected(rows, registry)
    assert _derived(rows, registry) == expected
    assert expected["machine_type"].count(None) >= 1  # the unknown machine stays unknown


def test_key_columns_are_the_same_when_combined_codes_are_hashed(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = pa.concat_tables([_snapshots(), _snapshots(first_msg=3)])
    dense = _derived(rows, registry)
    monkeypatch.setattr(enrich, "_DENSE_GROUPS", 0)
    assert _derived(rows, registry) == dense == _expected(rows, registry)


def test_an_unknown_machine_inside_a_run_of_messages_is_dropped_alone(
    gateway: ValidationGateway,
) -> None:
    rows = _snapshots()
    verdict = gateway.validate("telemetry", gateway.convert_units("telemetry", rows))
    assert ["machine_known" in r for r in verdict.drop_reasons] == [
        False,
        False,
        False,
        True,
        False,
        False,
    ]
    assert ["tag_known_for_machine_type" in r for r in verdict.drop_reasons][:3] == [
        False,
        False,
        True,
    ]
