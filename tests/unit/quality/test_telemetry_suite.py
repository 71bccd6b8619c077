"""The telemetry suite quarantines exactly the wrong readings, each with its reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quality import ValidationGateway
from tests.unit.quality.rows import T0, telemetry


def test_valid_readings_are_all_kept(gateway: ValidationGateway) -> None:
    verdict = gateway.validate(
        "telemetry", telemetry({}, {"tag": "spindle_temp", "value": 38.0, "unit": "degC"})
    )
    assert verdict.drop.tolist() == [False, False]
    assert verdict.drop_reasons == [(), ()]
    assert verdict.failed_expectations == ()
    assert verdict.kind == "telemetry"
    assert verdict.suite_name == "maxlake.telemetry"


def test_unknown_machine_is_dropped_with_machine_known(gateway: ValidationGateway) -> None:
    rows = telemetry(
        {}, {"machine": "cnc-999"}, {"line": "other-line"}, {"tenant": "ironbridge-steel"}
    )
    verdict = gateway.validate("telemetry", rows)
    assert verdict.drop.tolist() == [False, True, True, True]
    assert verdict.drop_reasons[1:] == [("machine_known",)] * 3
    assert "machine_known" in verdict.failed_expectations


def test_tag_of_another_machine_type_is_dropped(gateway: ValidationGateway) -> None:
    rows = telemetry({}, {"tag": "roll_force", "value": 10.0, "unit": "kN"}, {"tag": "no_such_tag"})
    verdict = gateway.validate("telemetry", rows)
    assert verdict.drop.tolist() == [False, True, True]
    assert verdict.drop_reasons[1] == ("tag_known_for_machine_type",)
    assert verdict.drop_reasons[2] == ("tag_known_for_machine_type",)


@pytest.mark.parametrize(
    ("tag", "value", "reason"),
    [
        ("spindle_speed", 24000.5, "tag_value_not_above_physical_max"),
        ("spindle_speed", -0.1, "tag_value_not_below_physical_min"),
        ("spindle_temp", 9.0, "tag_value_not_below_physical_min"),
        ("spindle_temp", 1e9, "tag_value_not_above_physical_max"),
    ],
)
def test_value_outside_the_tags_physical_range_is_dropped(
    gateway: ValidationGateway, tag: str, value: float, reason: str
) -> None:
    unit = "rpm" if tag == "spindle_speed" else "degC"
    reading = {"tag": tag, "value": value, "unit": unit}
    verdict = gateway.validate("telemetry", telemetry({}, reading, {}))
    assert verdict.drop.tolist() == [False, True, False]
    assert verdict.drop_reasons[1] == (reason,)


def test_range_limits_are_inclusive_and_per_tag(gateway: ValidationGateway) -> None:
    rows = telemetry(
        {"value": 0.0},
        {"value": 24000.0},
        {"tag": "spindle_temp", "value": 10.0, "unit": "degC"},
        {"tag": "spindle_temp", "value": 90.0, "unit": "degC"},
        # 100 rpm is fine for the spindle speed but far too hot for the spindle temperature
        {"tag": "spindle_temp", "value": 100.0, "unit": "degC"},
    )
    verdict = gateway.validate("telemetry", rows)
    assert verdict.drop.tolist() == [False, False, False, False, True]


def test_convertible_units_are_converted_and_the_rest_dropped(gateway: ValidationGateway) -> None:
    rows = telemetry({}, {"unit": "rad/s", "value": 1000.0}, {"unit": None}, {"unit": "RPM"})
    assert gateway.validate("telemetry", rows).drop.tolist() == [False, True, False, True]
    converted = gateway.convert_units("telemetry", rows)
    assert converted.column("unit").to_pylist() == ["rpm", "rpm", "rpm", "RPM"]
    assert converted.column("unit_sent").to_pylist() == [None, "rad/s", None, None]
    assert converted.column("value").to_pylist()[1] == pytest.approx(9549.2966)
    verdict = gateway.validate("telemetry", converted)
    assert verdict.drop.tolist() == [False, False, False, True]
    assert verdict.drop_explained is not None
    ((reason, detail),) = verdict.drop_explained[3]
    assert reason == "unit_mismatch"
    assert detail.startswith(
        "tag 'spindle_speed': unit 'RPM' does not convert to the registry unit 'rpm': "
        "'RPM' is not a unit pint knows"
    )


def test_hz_for_an_rpm_tag_is_refused_naming_the_ambiguity(gateway: ValidationGateway) -> None:
    rows = telemetry({"unit": "Hz", "value": 200.0}, {"unit": "rev/s", "value": 200.0})
    converted = gateway.convert_units("telemetry", rows)
    assert converted.column("value").to_pylist() == [200.0, 12000.0]
    assert converted.column("unit").to_pylist() == ["Hz", "rpm"]
    verdict = gateway.validate("telemetry", converted)
    assert verdict.drop.tolist() == [True, False]
    assert verdict.drop_explained is not None
    ((reason, detail),) = verdict.drop_explained[0]
    assert reason == "unit_mismatch"
    assert "'Hz' counts neither angles nor items but 'rpm' counts an angle" in detail
    assert "ambiguous" in detail


def test_a_unit_that_does_not_convert_gets_unit_mismatch_and_no_range_reason(
    gateway: ValidationGateway,
) -> None:
    rows = telemetry(
        {"tag": "spindle_temp", "value": 1.0, "unit": "bar"},
        {"tag": "spindle_temp", "value": 1e9, "unit": "Pa"},
        {"tag": "spindle_speed", "value": -5.0, "unit": "Hz"},
    )
    verdict = gateway.validate("telemetry", gateway.convert_units("telemetry", rows))
    assert verdict.drop_reasons == [("unit_matches_registry",)] * 3
    assert verdict.drop_explained is not None
    assert [r for row in verdict.drop_explained for r, _ in row] == ["unit_mismatch"] * 3
    assert "degC" not in verdict.drop_explained[0][0][1].split("registry unit")[0]


def test_a_bad_quality_placeholder_out_of_range_is_kept_and_not_range_checked(
    gateway: ValidationGateway,
) -> None:
    rows = telemetry(
        {"tag": "spindle_temp", "value": -9999.0, "unit": "degC", "quality": "BAD"},
        {"tag": "spindle_temp", "value": 1e9, "unit": "degC", "quality": "BAD"},
        {"tag": "spindle_temp", "value": -9999.0, "unit": "degC", "quality": "UNCERTAIN"},
        {"tag": "spindle_temp", "value": 40.0, "unit": "degC", "quality": "GOOD"},
    )
    verdict = gateway.validate("telemetry", gateway.convert_units("telemetry", rows))
    assert verdict.drop_reasons[:2] == [(), ()]
    assert verdict.drop_reasons[2] != ()
    assert verdict.drop_reasons[3] == ()


def test_a_reading_without_a_unit_gets_the_registry_unit_marked_as_assumed(
    gateway: ValidationGateway,
) -> None:
    rows = telemetry(
        {"unit": None, "value": 12000.0},
        {"tag": "spindle_temp", "unit": None, "value": 95.0},
        {"tag": "no_such_tag", "unit": None},
    )
    converted = gateway.convert_units("telemetry", rows)
    out = converted.select(["unit", "value", "value_sent", "unit_sent"]).to_pylist()
    assert out == [
        {"unit": "rpm", "value": 12000.0, "value_sent": 12000.0, "unit_sent": None},
        {"unit": "degC", "value": 95.0, "value_sent": 95.0, "unit_sent": None},
        {"unit": None, "value": 12000.0, "value_sent": None, "unit_sent": None},
    ]
    verdict = gateway.validate("telemetry", converted)
    assert verdict.drop_reasons == [
        (),
        ("tag_value_not_above_physical_max",),
        ("tag_known_for_machine_type",),
    ]
    assert verdict.drop_explained is not None
    assert verdict.drop_explained[1][0][1] == (
        "tag 'spindle_temp': value 95 degC (sent without a unit) is above the registry "
        "maximum 90.0 degC"
    )


def test_latency_over_one_hour_warns_and_keeps_the_row(gateway: ValidationGateway) -> None:
    rows = telemetry(
        {"sent_time": T0 + timedelta(hours=1)},
        {"sent_time": T0 + timedelta(hours=1, seconds=1)},
        {"sent_time": None},
        {"sent_time": T0 + timedelta(days=3)},
    )
    verdict = gateway.validate("telemetry", rows)
    assert not verdict.drop.any()
    assert verdict.warn_counts == {"event_latency_within_1h": 2}
    assert verdict.failed_expectations == ("event_latency_within_1h",)


def test_bad_quality_share_is_judged_for_the_whole_batch(gateway: ValidationGateway) -> None:
    five_pct = gateway.validate("telemetry", telemetry({"quality": "BAD"}, *[{}] * 19))
    check = five_pct.batch_results["bad_quality_share_at_most_5pct"]
    assert check.success
    assert check.observed_value == pytest.approx(0.05)
    ten_pct = gateway.validate("telemetry", telemetry(*[{"quality": "BAD"}] * 2, *[{}] * 18))
    check = ten_pct.batch_results["bad_quality_share_at_most_5pct"]
    assert not check.success
    assert check.observed_value == pytest.approx(0.1)
    assert ten_pct.failed_expectations == ("bad_quality_share_at_most_5pct",)
    assert not ten_pct.drop.any()


def test_a_row_failing_several_drop_expectations_lists_them_in_suite_order(
    gateway: ValidationGateway,
) -> None:
    rows = telemetry({"value": -5.0, "machine": "cnc-102"}, {"value": -5.0, "machine": "nope"})
    verdict = gateway.validate("telemetry", rows)
    assert verdict.drop_reasons == [("tag_value_not_below_physical_min",), ("machine_known",)]
