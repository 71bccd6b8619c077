"""Split rules every time-split job shares: pinned cuts are in lake time whatever a sharing
contract did to each plant's clock, and a split that comes out empty says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import polars as pl

from lake.curation.job import JobInputs, LabelInfo
from lake.curation.jobs import anomaly_windows, part_quality, predictive_maintenance
from lake.curation.output_checks import check_output
from tests.unit.lake.curation.conftest import (
    MILL_1,
    T0,
    at,
    inspection_frame,
    job_inputs,
    registry_machines,
    telemetry_frame,
)

HOUR = 3600
SHIFT = timedelta(days=-9, hours=5)
"""What a contract's keyed time shift did to plant p2's clock in these tests (whole hours,
so its windows fall on the same lake instants as p1's)."""


def _two_plants(frame: pl.DataFrame, *time_columns: str) -> pl.DataFrame:
    """``frame`` (plant p1) and the same rows as plant p2, its clock moved by :data:`SHIFT`."""
    moved = frame.with_columns(
        pl.lit("p2").alias("plant"), *(pl.col(c) + SHIFT for c in time_columns)
    )
    return pl.concat([frame, moved])


def _shifted(inputs: JobInputs) -> JobInputs:
    """``inputs`` with the p2 machines in the registry and p2's shift declared."""
    machines = pl.concat(
        [registry_machines(), registry_machines().with_columns(pl.lit("p2").alias("plant"))]
    )
    shifts = pl.DataFrame(
        {"tenant": ["acme"], "plant": ["p2"], "shift_us": [SHIFT // timedelta(microseconds=1)]}
    )
    return replace(inputs, machines=machines, time_shifts=shifts)


def _per_plant(out_splits: dict[str, pl.DataFrame], column: str) -> dict[str, dict[str, list[Any]]]:
    """split -> plant -> sorted ``column`` values, with p2's moved back to lake time."""
    result: dict[str, dict[str, list[Any]]] = {}
    for name, frame in out_splits.items():
        back = frame.with_columns(
            pl.when(pl.col("plant") == "p2")
            .then(pl.col(column) - SHIFT)
            .otherwise(pl.col(column))
            .alias(column)
        )
        result[name] = {
            plant: sorted(back.filter(pl.col("plant") == plant)[column].to_list())
            for plant in ("p1", "p2")
        }
    return result


def test_predictive_maintenance_cuts_every_plant_at_the_pinned_lake_instant() -> None:
    hours = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(21)]
    params = {
        "tags": ["vib"],
        "horizon_h": 2,
        "drop_unobserved_horizon": False,
        "cuts": {"validation": at(11 * HOUR), "test": at(16 * HOUR)},
    }
    telemetry = _two_plants(telemetry_frame(hours), "event_time")
    out = predictive_maintenance(_shifted(job_inputs(telemetry=telemetry, params=params)))

    ends = _per_plant(out.splits, "window_end")
    for name, plants in ends.items():
        assert plants["p1"] == plants["p2"], name
        assert plants["p1"], name
    hours_of = {name: [t.hour for t in plants["p1"]] for name, plants in ends.items()}
    assert hours_of == {
        "train": list(range(1, 10)),
        "validation": list(range(12, 15)),
        "test": list(range(17, 22)),
    }
    assert out.meta["cuts"] == {
        "validation": "2026-01-05T11:00:00Z",
        "test": "2026-01-05T16:00:00Z",
    }
    assert out.meta["cuts_clock"] == "lake"
    assert "cuts_by_plant" not in out.meta


def test_anomaly_windows_cuts_every_plant_at_the_pinned_lake_instant() -> None:
    rows = [(MILL_1, i * 10 + 1, tag, float(i)) for i in range(28) for tag in ("vib", "temp")]
    params = {
        "rate": "10s",
        "sequence_length": 4,
        "fill_limit": 2,
        "cuts": {"validation": at(140), "test": at(210)},
    }
    telemetry = _two_plants(telemetry_frame(rows), "event_time")
    out = anomaly_windows(_shifted(job_inputs(telemetry=telemetry, params=params)))

    firsts = _per_plant({n: f.filter(pl.col("step") == 0) for n, f in out.splits.items()}, "time")
    for name, plants in firsts.items():
        assert plants["p1"] == plants["p2"], name
    assert [len(firsts[n]["p1"]) for n in ("train", "validation", "test")] == [3, 1, 1]
    assert out.meta["cuts_clock"] == "lake"
    assert "cuts_by_plant" not in out.meta


def test_part_quality_cuts_every_line_at_the_pinned_lake_instant() -> None:
    parts: list[tuple[str, str, list[str], float, float, str, list[str]]] = [
        ("s1", "L1", [MILL_1], 0, 60, "PASS", []),
        ("s2", "L2", [MILL_1], 1_000, 1_060, "FAIL", []),
        ("s3", "L3", [MILL_1], 8_000, 8_060, "PASS", []),
        ("s4", "L4", [MILL_1], 10_000, 10_060, "PASS", []),
    ]
    inspections = _two_plants(inspection_frame(parts), "event_time", "process_start", "process_end")
    for split_by in ("line_time", "time"):
        params = {"cuts": {"validation": at(500), "test": at(9_500)}, "split_by": split_by}
        out = part_quality(_shifted(job_inputs(inspections=inspections, params=params)))
        lots = {
            name: {p: sorted(set(f.filter(pl.col("plant") == p)["lot"])) for p in ("p1", "p2")}
            for name, f in out.splits.items()
        }
        assert lots == {
            "train": {"p1": ["L1"], "p2": ["L1"]},
            "validation": {"p1": ["L2", "L3"], "p2": ["L2", "L3"]},
            "test": {"p1": ["L4"], "p2": ["L4"]},
        }, split_by
        assert out.meta["cuts_clock"] == "lake"


def test_an_empty_validation_split_blocks_and_says_what_span_it_needs() -> None:
    """The reference spec (1 h windows, 4 h horizon) on 16 h of data: validation cannot fit
    a window and its horizon between the cuts."""
    hours = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(16)]
    params = {"tags": ["vib"], "window": "1h", "horizon_h": 4, "drop_unobserved_horizon": False}
    out = predictive_maintenance(job_inputs(telemetry=telemetry_frame(hours), params=params))
    assert out.splits["validation"].height == 0
    hint = out.split_hints["validation"]
    assert "split.validation" in hint
    assert "a whole window and its horizon (5 h" in hint
    assert "about 40 h of data are needed; the longest spans 15 h" in hint  # (5 + 1) / 0.15
    assert "raise split.validation to at least 0.40" in hint

    report = check_output(
        out.splits,
        key_columns=out.key_columns,
        labels=out.all_labels(),
        feature_columns=[f.name for f in out.features],
        required_splits=out.splits_required(),
        split_hints=out.split_hints,
    )
    assert not report.success
    assert "split_rows:validation" in report.failed
    assert any(
        d.startswith("split_rows:validation: split 'validation' is empty") for d in report.details
    )


def test_a_pinned_cut_outside_the_data_says_where_the_data_is() -> None:
    hours = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(16)]
    params = {
        "tags": ["vib"],
        "cuts": {"validation": at(10 * HOUR), "test": at(40 * HOUR)},
    }
    out = predictive_maintenance(job_inputs(telemetry=telemetry_frame(hours), params=params))
    assert out.splits["test"].height == 0
    assert out.splits_required() == ("train", "validation", "test")
    hint = out.split_hints["test"]
    assert "2026-01-06T16:00:00Z" in hint
    assert f"{T0:%Y-%m-%d}T00:00:00Z .. " in hint


def test_a_split_with_one_label_class_is_a_warning_not_a_failure() -> None:
    frame = pl.DataFrame({"k": [1, 2, 3, 4], "y": [0, 1, 0, 0], "f": [1.0, 2.0, 3.0, 4.0]})
    splits = {"train": frame[:2], "validation": frame[2:3], "test": frame[3:]}
    report = check_output(
        splits,
        key_columns=["k"],
        labels=[LabelInfo("y", values=(0, 1), min_classes=2)],
        feature_columns=["f"],
        required_splits=("train", "validation", "test"),
    )
    assert report.success
    assert report.warnings == [
        "split_label_classes:validation:y",
        "split_label_classes:test:y",
    ]
    assert "holds 1 class(es) of y {'0': 1}" in report.details[0]


def test_a_split_with_a_share_of_zero_is_not_required() -> None:
    hours = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(16)]
    params = {"tags": ["vib"], "split": {"train": 1.0, "validation": 0.0, "test": 0.0}}
    out = predictive_maintenance(job_inputs(telemetry=telemetry_frame(hours), params=params))
    assert out.splits_required() == ("train",)
    assert out.split_hints == {}


def test_an_empty_split_whose_share_falls_in_a_gap_of_the_data_says_so() -> None:
    """100 s of data, a gap of 800 s, 100 s more: the range (1,000 s) is long enough for a
    validation sequence, but the 70 % / 85 % cuts fall in the gap. The hint names the gap and
    the fix (pinned cuts), not "add data" or a larger share."""
    rows = [
        (MILL_1, s + offset, tag, float(s))
        for s in [*range(0, 100, 10), *range(900, 1000, 10)]
        for offset, tag in ((1, "vib"), (3, "temp"))
    ]
    params = {"rate": "10s", "sequence_length": 4, "fill_limit": 2}
    out = anomaly_windows(job_inputs(telemetry=telemetry_frame(rows), params=params))
    assert out.splits["validation"].height == 0
    assert out.splits["train"].height > 0
    hint = out.split_hints["validation"]
    assert hint.startswith("split.validation = 0.15 of each plant's sequence range is ")
    gap = "and the data has a gap there, from 2026-01-05T00:02:00Z to 2026-01-05T00:15:20Z (13 min)"
    assert gap in hint  # the sequences: the first one after the gap starts at 920 s
    assert "so it cannot hold a whole sequence" in hint
    assert "the share cuts fall in the gap" in hint
    assert "Pin the cuts in the spec's [job]" in hint
    assert "raise split.validation" not in hint
    assert "add data, or" not in hint
