"""The inspection suite checks list columns (machines, defect codes) against the tenant."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quality import ValidationGateway
from quality.suites import default_suites_dir
from schemas import Registry
from tests.unit.quality.rows import T0, inspections


def test_valid_inspections_are_kept(gateway: ValidationGateway) -> None:
    rows = inspections({}, {"result": "FAIL", "defect_codes": ["BURR"]}, {"machines": ["cnc-201"]})
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop.tolist() == [False, False, False]
    assert verdict.failed_expectations == ()


def test_machine_unknown_for_the_tenant_is_dropped(gateway: ValidationGateway) -> None:
    rows = inspections(
        {"machines": ["cnc-101", "f1"]},  # f1 is a rolling stand of another tenant
        {"machines": ["ghost"]},
        {},
    )
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop.tolist() == [True, True, False]
    assert verdict.drop_reasons[:2] == [("machines_known_for_tenant",)] * 2


def test_unknown_defect_code_is_dropped(gateway: ValidationGateway) -> None:
    rows = inspections(
        {"result": "FAIL", "defect_codes": ["BURR", "SOLDER-BALL"]},  # SOLDER-BALL: electronics
        {"result": "FAIL", "defect_codes": ["NOT-A-CODE"]},
        {"result": "REWORK", "defect_codes": ["CHATTER-MARK"]},
    )
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop.tolist() == [True, True, False]
    assert verdict.drop_reasons[:2] == [("defect_codes_known_for_tenant",)] * 2


def test_both_list_checks_are_reported_for_one_row(gateway: ValidationGateway) -> None:
    rows = inspections({"machines": ["ghost"], "result": "FAIL", "defect_codes": ["NOPE"]})
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop_reasons == [("machines_known_for_tenant", "defect_codes_known_for_tenant")]


def test_a_fail_without_defect_code_warns(gateway: ValidationGateway) -> None:
    rows = inspections(
        {"process_start": T0 - timedelta(hours=24)},  # exactly the maximum: kept
        {"result": "FAIL", "defect_codes": []},
        {"result": "PASS", "defect_codes": []},
    )
    verdict = gateway.validate("inspection", rows)
    assert not verdict.drop.any()
    assert verdict.warn_counts == {"fail_has_defect_code": 1}


def test_an_over_long_process_window_is_quarantined(gateway: ValidationGateway) -> None:
    """A bad station clock (process_start 1970, process_end 2199) once passed with a warning
    and made the part-quality build list 229 years of buckets."""
    rows = inspections(
        {"process_start": T0 - timedelta(hours=25)},
        {
            "process_start": datetime(1970, 1, 1, tzinfo=UTC),
            "process_end": datetime(2199, 1, 1, tzinfo=UTC),
        },
        {},
    )
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop.tolist() == [True, True, False]
    assert verdict.drop_reasons[:2] == [("process_window_within_24h",)] * 2
    assert verdict.drop_explained is not None
    reason, detail = verdict.drop_explained[1][0]
    assert reason == "process_window_too_long"
    assert "is longer than the maximum 86400 s; check the station's clock" in detail
    assert "1970-01-01" in detail
    assert "2199-01-01" in detail


def test_the_maximum_process_window_is_the_suites_setting_and_its_detail_says_so(
    registry: Registry, tmp_path: Path
) -> None:
    """A plant with 1 h cycles sets ``max_value`` 3600 in its copy of the suite; the stored
    detail names the limit that applied, not the packaged 24 h."""
    suites = tmp_path / "suites"
    shutil.copytree(default_suites_dir(), suites)
    path = suites / "inspection.json"
    suite = json.loads(path.read_text())
    (entry,) = [e for e in suite["expectations"] if e["name"] == "process_window_within_24h"]
    entry["kwargs"]["max_value"] = 3600
    path.write_text(json.dumps(suite))
    gateway = ValidationGateway(registry, suites_dir=suites)
    rows = inspections({"process_start": T0 - timedelta(hours=2)}, {})
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop.tolist() == [True, False]
    assert verdict.drop_explained is not None
    reason, detail = verdict.drop_explained[0][0]
    assert reason == "process_window_too_long"
    assert "process window of 7200.0 s" in detail
    assert "is longer than the maximum 3600 s;" in detail


def _dims(*items: tuple[str, float, str | None]) -> dict[str, object]:
    return {"dimensions": [{"name": n, "value": v, "unit": u} for n, v, u in items]}


def test_declared_dimensions_are_checked_for_unit_and_range(gateway: ValidationGateway) -> None:
    """cnc_mill declares bore_diameter in mm, 0..1000 (schemas/registry/alliance.toml)."""
    rows = inspections(
        _dims(("bore_diameter", 82.01, "mm"), ("face_flatness", 0.01, None)),
        _dims(("bore_diameter", 3.2285, "in")),  # 82.0 mm
        _dims(("bore_diameter", 1e300, "parsec")),
        _dims(("bore_diameter", 82.0, "Hz")),
        _dims(("bore_diameter", -1.0, "mm")),
        _dims(("face_flatness", 20.0, None)),
        _dims(("roundness", 0.02, "furlongz")),  # undeclared: only the unit is checked
        _dims(("roundness", 1e300, "parsec")),  # undeclared, known unit: kept
    )
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop_reasons == [
        (),
        (),
        ("dimensions_within_registry_range",),
        ("dimension_units_convert",),
        ("dimensions_within_registry_range",),
        ("dimensions_within_registry_range",),
        ("dimension_units_convert",),
        (),
    ]
    explained = verdict.drop_explained
    assert explained is not None
    assert explained[2] == (
        (
            "dimension_out_of_range",
            "field dimensions: 'bore_diameter' 1e+300 parsec (= inf mm) is outside the "
            "registry range 0.0..1000.0 mm",
        ),
    )
    assert explained[3][0][0] == "dimension_unit_mismatch"
    assert explained[3][0][1].startswith(
        "field dimensions: 'bore_diameter' in 'Hz' does not convert to the registry unit 'mm'"
    )
    assert explained[5][0][1] == (
        "field dimensions: 'face_flatness' 20 mm is outside the registry range 0.0..10.0 mm"
    )
    assert explained[6][0][1] == (
        "field dimensions: 'roundness' in 'furlongz', which is not a unit pint knows"
    )


def test_dimensions_are_looked_up_among_the_tenants_machine_types(
    gateway: ValidationGateway,
) -> None:
    """joint_height is a reflow_oven dimension: northwind-auto runs no reflow oven."""
    other_tenant = {
        "tenant": "circuitry-electronics",
        "plant": "penang",
        "line": "smt-1",
        "machine": "reflow-1",
        "machines": ["pnp-11", "reflow-1"],
    }
    rows = inspections(
        {
            **other_tenant,
            **_dims(("joint_height", 80.0, "um"), ("placement_x_offset", -12.0, "um")),
        },
        {**other_tenant, **_dims(("joint_height", 80.0, "mm"))},
        _dims(("joint_height", 80.0, "mm")),
    )
    verdict = gateway.validate("inspection", rows)
    assert verdict.drop_reasons == [(), ("dimensions_within_registry_range",), ()]
