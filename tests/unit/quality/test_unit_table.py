"""Every registry unit against the units plants plausibly send instead.

The expected values are written out by hand (from the definitions of the units, not from
pint), so a pint quirk such as its ``rpm`` being 2*pi rad/min cannot hide in both the code and
the test. ``None`` means the conversion must be refused (the reading goes to quarantine with
``unit_mismatch`` alone, never silently converted).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from quality import ValidationGateway
from schemas import Registry, load_registry
from tests.unit.quality.rows import T0, TELEMETRY

REFUSED = None
INCH_MM = 25.4
LBF_N = 4.4482216152605
PSI_PA = 6894.757293168361

# registry unit -> [(unit sent, value sent, value in the registry unit or REFUSED)]
TABLE: dict[str, list[tuple[str, float, float | None]]] = {
    "rpm": [
        ("rpm", 1200.0, 1200.0),
        ("rev/min", 1200.0, 1200.0),
        ("rev/s", 200.0, 12000.0),
        ("rps", 200.0, 12000.0),
        ("revolution/s", 200.0, 12000.0),
        ("cycle/s", 200.0, 12000.0),
        ("rad/s", 1256.6, 1256.6 * 60 / (2 * math.pi)),
        ("deg/s", 360.0, 60.0),
        ("Hz", 200.0, REFUSED),
        ("1/s", 200.0, REFUSED),
        ("1/min", 12000.0, REFUSED),
        ("count/min", 12000.0, REFUSED),
        ("RPM", 12000.0, REFUSED),
        ("m/s", 1.0, REFUSED),
    ],
    "degC": [
        ("degF", 212.0, 100.0),
        ("degF", 32.0, 0.0),
        ("K", 310.15, 37.0),
        ("degR", 491.67 + 180.0, 100.0),
        ("delta_degC", 5.0, REFUSED),
        ("delta_degF", 9.0, REFUSED),
        ("bar", 1.0, REFUSED),
        ("deg", 40.0, REFUSED),
    ],
    "mm/s": [
        ("m/s", 0.002, 2.0),
        ("um/s", 2000.0, 2.0),
        ("in/s", 1.0, INCH_MM),
        ("mm/min", 120.0, 2.0),
        ("Hz", 2.0, REFUSED),
        ("mm", 2.0, REFUSED),
    ],
    "l/min": [
        ("l/h", 1080.0, 18.0),
        ("m^3/h", 1.08, 18.0),
        ("ml/s", 300.0, 18.0),
        ("gal/min", 1.0, 3.785411784),
        ("kg/min", 18.0, REFUSED),
    ],
    "%": [
        ("percent", 35.0, 35.0),
        ("1", 0.35, 35.0),
        ("dimensionless", 0.35, 35.0),
        ("permille", 350.0, 35.0),
        ("ppm", 350000.0, 35.0),
        ("deg", 35.0, REFUSED),
        ("rad", 0.35, REFUSED),
        ("count", 35.0, REFUSED),
        ("g/kg", 350.0, REFUSED),
    ],
    "kN": [
        ("N", 18000.0, 18.0),
        ("MN", 18.0, 18000.0),
        ("lbf", 1000.0, LBF_N),
        ("kgf", 1000.0, 9.80665),
        ("t", 18.0, REFUSED),
        ("kN*m", 18.0, REFUSED),
    ],
    "m/s": [
        ("m/min", 690.0, 11.5),
        ("km/h", 41.4, 11.5),
        ("ft/s", 10.0, 3.048),
        ("rpm", 100.0, REFUSED),
        ("rad/s", 10.0, REFUSED),
    ],
    "A": [
        ("mA", 4200.0, 4.2),
        ("kA", 4.2, 4200.0),
        ("V", 4.2, REFUSED),
        ("Ah", 4.2, REFUSED),
    ],
    "V": [
        ("mV", 3700.0, 3.7),
        ("kV", 0.0037, 3.7),
        ("A", 3.7, REFUSED),
    ],
    "cm/min": [
        ("mm/s", 1.0, 6.0),
        ("m/min", 0.8, 80.0),
        ("in/min", 10.0, 25.4),
        ("rpm", 80.0, REFUSED),
    ],
    "ppm": [
        ("%", 0.08, 800.0),
        ("1", 0.0008, 800.0),
        ("permille", 0.8, 800.0),
        ("mg/kg", 800.0, REFUSED),
        ("ml/l", 0.8, REFUSED),
    ],
    "kPa": [
        ("bar", -0.65, -65.0),
        ("mbar", -650.0, -65.0),
        ("hPa", -650.0, -65.0),
        ("Pa", -65000.0, -65.0),
        ("psi", -1.0, -PSI_PA / 1000),
        ("mmHg", -100.0, -13.3322387415),
        ("barg", -0.65, REFUSED),
        ("psig", -1.0, REFUSED),
        ("kN", 65.0, REFUSED),
    ],
    "um": [
        ("mm", 0.015, 15.0),
        ("nm", 15000.0, 15.0),
        ("in", 0.001, INCH_MM),
        ("thou", 1.0, INCH_MM),
        ("mil", 1.0, REFUSED),
        ("deg", 15.0, REFUSED),
    ],
    "mm": [
        ("in", 1.0, INCH_MM),
        ("um", 82000.0, 82.0),
        ("m", 0.082, 82.0),
        ("Hz", 82.0, REFUSED),
    ],
    "Ah": [
        ("mAh", 50000.0, 50.0),
        ("A*h", 50.0, 50.0),
        ("C", 180000.0, 50.0),
        ("Wh", 185.0, REFUSED),
    ],
}

CASES = [
    pytest.param(target, sent, value, expected, id=f"{sent}->{target}@{value}")
    for target, rows in TABLE.items()
    for sent, value, expected in rows
]


def _registry_units(registry: Registry) -> set[str]:
    types = registry.machine_types.values()
    return {t.unit for mt in types for t in mt.tags} | {
        d.unit for mt in types for d in mt.dimensions
    }


def test_the_table_covers_every_unit_of_the_registry() -> None:
    """A unit added to the packaged registry needs its row here (and its traps checked)."""
    assert _registry_units(load_registry()) <= set(TABLE)


@pytest.mark.parametrize(("target", "sent", "value", "expected"), CASES)
def test_unit_system_converts_or_refuses(
    registry: Registry, target: str, sent: str, value: float, expected: float | None
) -> None:
    units = registry.unit_system()
    conversion = units.conversion(sent, target)
    if expected is REFUSED:
        assert conversion is None
        assert units.refusal(sent, target)
    else:
        assert conversion is not None, units.refusal(sent, target)
        assert units.refusal(sent, target) is None
        assert value * conversion.scale + conversion.offset == pytest.approx(expected, rel=1e-9)


def _tag_for_each_unit(registry: Registry) -> Iterator[tuple[str, dict[str, Any]]]:
    """(registry unit, envelope and tag of a machine reporting a tag in that unit)."""
    seen: set[str] = set()
    machines = registry.machines().to_pylist()
    for machine in machines:
        for spec in registry.machine_types[machine["machine_type"]].tags:
            if spec.unit not in seen:
                seen.add(spec.unit)
                envelope = {k: machine[k] for k in ("tenant", "plant", "line", "machine")}
                yield spec.unit, {**envelope, "tag": spec.tag}


def test_telemetry_in_every_plausible_unit_lands_converted_or_only_as_unit_mismatch(
    gateway: ValidationGateway, registry: Registry
) -> None:
    tags = dict(_tag_for_each_unit(registry))
    rows: list[dict[str, Any]] = []
    expected: list[tuple[str, str, float, float | None]] = []
    for target, cases in TABLE.items():
        if target not in tags:
            continue  # an inspection dimension unit only
        for sent, value, want in cases:
            i = len(rows)
            rows.append(
                {
                    **tags[target],
                    "event_id": f"e-{i}",
                    "schema_version": 1,
                    "event_time": T0,
                    "sent_time": T0,
                    "date": T0.date(),
                    "_msg": i,
                    "reading_index": 0,
                    "value": value,
                    "unit": sent,
                    "quality": "GOOD",
                }
            )
            expected.append((target, sent, value, want))
    converted = gateway.convert_units("telemetry", pa.Table.from_pylist(rows, schema=TELEMETRY))
    verdict = gateway.validate("telemetry", converted)
    out = converted.select(["value", "unit", "value_sent", "unit_sent"]).to_pylist()
    for i, ((target, sent, value, want), row) in enumerate(zip(expected, out, strict=True)):
        case = f"{value} {sent} for a {target} tag"
        if want is REFUSED:
            assert row == {"value": value, "unit": sent, "value_sent": None, "unit_sent": None}
            assert verdict.drop_reasons[i] == ("unit_matches_registry",), case
        else:
            assert row["unit"] == target, case
            assert row["value"] == pytest.approx(want, rel=1e-9), case
            if sent != target:
                assert (row["value_sent"], row["unit_sent"]) == (value, sent), case
            reasons = set(verdict.drop_reasons[i])
            assert "unit_matches_registry" not in reasons, case
