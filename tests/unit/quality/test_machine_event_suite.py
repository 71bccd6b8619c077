"""The machine event suite: unknown machines and alarm codes are dropped, severities warned."""

from __future__ import annotations

from quality import ValidationGateway
from tests.unit.quality.rows import alarm, machine_events


def test_state_events_of_known_machines_are_kept(gateway: ValidationGateway) -> None:
    verdict = gateway.validate("machine_event", machine_events({}, {"state": "IDLE"}))
    assert verdict.drop.tolist() == [False, False]
    assert verdict.failed_expectations == ()
    assert verdict.suite_name == "maxlake.machine_event"


def test_unknown_machine_is_dropped(gateway: ValidationGateway) -> None:
    verdict = gateway.validate("machine_event", machine_events({}, {"machine": "cnc-404"}))
    assert verdict.drop.tolist() == [False, True]
    assert verdict.drop_reasons[1] == ("machine_known",)


def test_alarm_code_unknown_for_the_machine_type_is_dropped(gateway: ValidationGateway) -> None:
    rows = machine_events(
        alarm("CNC-1001", 700),
        alarm("RS-100", 800),  # a rolling stand alarm raised by a CNC mill
        alarm("CNC-9999", 700),
        {},
    )
    verdict = gateway.validate("machine_event", rows)
    assert verdict.drop.tolist() == [False, True, True, False]
    assert verdict.drop_reasons[1] == ("alarm_code_known_for_machine_type",)
    assert verdict.drop_reasons[2] == ("alarm_code_known_for_machine_type",)


def test_alarm_of_unknown_machine_names_only_the_machine(gateway: ValidationGateway) -> None:
    verdict = gateway.validate("machine_event", machine_events(alarm("CNC-1001", 700, machine="x")))
    assert verdict.drop_reasons == [("machine_known",)]


def test_state_rows_ignore_stray_alarm_codes(gateway: ValidationGateway) -> None:
    verdict = gateway.validate("machine_event", machine_events({"alarm_code": "junk"}))
    assert not verdict.drop.any()


def test_severity_differing_from_the_registry_warns_and_keeps(gateway: ValidationGateway) -> None:
    rows = machine_events(alarm("CNC-1001", 700), alarm("CNC-1001", 100), alarm("CNC-1002", 1), {})
    verdict = gateway.validate("machine_event", rows)
    assert not verdict.drop.any()
    assert verdict.warn_counts == {"alarm_severity_matches_registry": 2}
    assert verdict.failed_expectations == ("alarm_severity_matches_registry",)
