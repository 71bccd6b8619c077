"""The inspection suite checks list columns (machines, defect codes) against the tenant."""

from __future__ import annotations

from datetime import timedelta

from quality import ValidationGateway
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


def test_long_process_window_and_fail_without_defect_warn(gateway: ValidationGateway) -> None:
    rows = inspections(
        {"process_start": T0 - timedelta(hours=24)},
        {"process_start": T0 - timedelta(hours=25)},
        {"result": "FAIL", "defect_codes": []},
        {"result": "PASS", "defect_codes": []},
    )
    verdict = gateway.validate("inspection", rows)
    assert not verdict.drop.any()
    assert verdict.warn_counts == {"process_window_within_24h": 1, "fail_has_defect_code": 1}
