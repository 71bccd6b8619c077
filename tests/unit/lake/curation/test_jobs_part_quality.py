"""part_quality: hand-checked features and labels, process-window bounds, lot-pure splits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lake.curation.job import JobOutput
from lake.curation.jobs import JOBS, JobParamError, part_quality
from lake.curation.jobs.part_quality import lot_share, part_buckets
from tests.unit.lake.curation.conftest import (
    MILL_1,
    MILL_2,
    OVEN_1,
    at,
    inspection_frame,
    job_inputs,
    registry_machines,
    telemetry_frame,
)

ALL_TRAIN = {"train": 1.0, "validation": 0.0, "test": 0.0}
UTC_US = pl.Datetime("us", "UTC")


def _all_rows(out: JobOutput) -> pl.DataFrame:
    return pl.concat([out.splits[s] for s in ("train", "validation", "test")]).sort(out.key_columns)


def test_registered_under_its_name() -> None:
    assert JOBS["part_quality"] is part_quality


def test_features_pool_the_part_machines_inside_the_process_window() -> None:
    telemetry = telemetry_frame(
        [
            (MILL_1, 59, "vib", 1000.0),  # before process_start
            (MILL_1, 60, "vib", 1.0),  # == process_start: inside
            (MILL_1, 120, "vib", 3.0),  # == process_end: inside
            (MILL_2, 90, "vib", 5.0),  # second machine of the part: pooled
            (MILL_1, 121, "vib", 1000.0),  # after process_end
            (MILL_1, 100, "temp", 40.0),
            (OVEN_1, 100, "zone_temp", 999.0),  # not one of the part's machines
        ]
    )
    inspections = inspection_frame(
        [
            ("s1", "lotA", [MILL_1, MILL_2], 60, 120, "FAIL", ["DIM-OOT", "BURR"]),
            ("s2", "lotA", [MILL_1], 300, 600, "PASS", []),
        ]
    )
    out = part_quality(
        job_inputs(telemetry=telemetry, inspections=inspections, params={"split": ALL_TRAIN})
    )
    expected = pl.DataFrame(
        {
            "tenant": ["acme"] * 2,
            "plant": ["p1"] * 2,
            "line": ["l1"] * 2,
            "part_serial": ["s1", "s2"],
            "event_id": ["inspection-000000", "inspection-000001"],
            "lot": ["lotA", "lotA"],
            "process_start": [at(60), at(300)],
            "process_end": [at(120), at(600)],
            "machine_type": ["mill", "mill"],
            "temp__mean": [40.0, None],
            "temp__max": [40.0, None],
            "temp__std": [None, None],
            "vib__mean": [3.0, None],
            "vib__max": [5.0, None],
            "vib__std": [2.0, None],
            "zone_temp__mean": [None, None],
            "zone_temp__max": [None, None],
            "zone_temp__std": [None, None],
            "result": ["FAIL", "PASS"],
            "defect_code": ["DIM-OOT", None],
        },
        schema_overrides={
            "process_start": UTC_US,
            "process_end": UTC_US,
            **{f"zone_temp__{s}": pl.Float64 for s in ("mean", "max", "std")},
            "temp__std": pl.Float64,
        },
    )
    assert_frame_equal(out.splits["train"], expected)
    assert out.label_columns == ["result", "defect_code"]
    assert {f.name: f.unit for f in out.features}["vib__max"] == "mm/s"


def test_lot_hash_is_pinned() -> None:
    # The split of a lot must not change between machines, runs or library versions.
    assert lot_share("", "acme", "p1", "lotA") == pytest.approx(0.7611516311300736, abs=1e-15)
    assert lot_share("seed-2", "acme", "p1", "lotA") != lot_share("", "acme", "p1", "lotA")


parts_strategy = st.lists(
    st.tuples(
        st.sampled_from(["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"]),
        st.lists(st.sampled_from([MILL_1, MILL_2, OVEN_1]), min_size=1, max_size=3, unique=True),
        st.integers(min_value=0, max_value=20_000),
        st.integers(min_value=0, max_value=900),
        st.sampled_from(["PASS", "FAIL", "REWORK"]),
    ),
    min_size=1,
    max_size=12,
)
readings_strategy = st.lists(
    st.tuples(
        st.sampled_from([MILL_1, MILL_2, OVEN_1]),
        st.integers(min_value=0, max_value=21_000),
        st.floats(min_value=-100, max_value=100, allow_nan=False),
    ),
    max_size=60,
)
_TAG = {MILL_1: "vib", MILL_2: "vib", OVEN_1: "zone_temp"}


def _inspections(parts: list[tuple[str, list[str], int, int, str]]) -> pl.DataFrame:
    return inspection_frame(
        [
            (f"s{i:03d}", lot, machines, start, start + length, result, [])
            for i, (lot, machines, start, length, result) in enumerate(parts)
        ]
    )


def _telemetry(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return telemetry_frame([(m, t, _TAG[m], v) for m, t, v in rows])


@settings(max_examples=40, deadline=None)
@given(
    parts=parts_strategy,
    base=readings_strategy,
    victim=st.integers(min_value=0),
    offsets=st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=4),
)
def test_readings_after_process_end_never_reach_the_part(
    parts: list[tuple[str, list[str], int, int, str]],
    base: list[tuple[str, int, float]],
    victim: int,
    offsets: list[int],
) -> None:
    _, machines, start, length, _ = parts[victim % len(parts)]
    end = start + length
    # 2,000x the largest vib reading of the registry range; silver never holds such values
    injected = [(m, end + o, 1e5) for m in machines for o in offsets]
    params = {"split": ALL_TRAIN}
    inspections = _inspections(parts)
    before = _all_rows(
        part_quality(job_inputs(telemetry=_telemetry(base), inspections=inspections, params=params))
    )
    after = _all_rows(
        part_quality(
            job_inputs(
                telemetry=_telemetry([*base, *injected]), inspections=inspections, params=params
            )
        )
    )
    first_injection = at(end + min(offsets))
    untouched = pl.col("process_end") < first_injection
    assert_frame_equal(before.filter(untouched), after.filter(untouched))
    assert before.select("result", "defect_code").equals(after.select("result", "defect_code"))


@settings(max_examples=40, deadline=None)
@given(
    parts=parts_strategy,
    split_by=st.sampled_from(["lot", "time", "line_time"]),
    seed=st.text(max_size=4),
)
def test_a_lot_is_never_in_two_splits(
    parts: list[tuple[str, list[str], int, int, str]], split_by: str, seed: str
) -> None:
    out = part_quality(
        job_inputs(inspections=_inspections(parts), params={"split_by": split_by, "seed": seed})
    )
    lots = {name: set(frame["lot"].to_list()) for name, frame in out.splits.items()}
    assert not lots["train"] & lots["validation"]
    assert not lots["train"] & lots["test"]
    assert not lots["validation"] & lots["test"]
    assert sum(f.height for f in out.splits.values()) == len(parts)


def test_time_split_orders_lots_by_first_process_start() -> None:
    parts = [
        ("L1", [MILL_1], 0, 60, "PASS"),
        ("L2", [MILL_1], 1_000, 60, "PASS"),
        ("L1", [MILL_1], 9_000, 60, "PASS"),  # late part of an early lot stays with its lot
        ("L3", [MILL_1], 8_000, 60, "PASS"),
        ("L4", [MILL_1], 10_000, 60, "PASS"),
    ]
    out = part_quality(job_inputs(inspections=_inspections(parts), params={"split_by": "time"}))
    lots = {name: sorted(set(frame["lot"].to_list())) for name, frame in out.splits.items()}
    # lot starts 0, 1000, 8000, 10000: cuts at 7000 and 8500
    assert lots == {"train": ["L1", "L2"], "validation": ["L3"], "test": ["L4"]}


def test_the_default_split_is_by_time_per_line_with_cuts_recorded() -> None:
    parts = [
        ("L1", [MILL_1], 0, 60, "PASS"),
        ("L2", [MILL_1], 1_000, 60, "FAIL"),
        ("L1", [MILL_1], 9_000, 60, "PASS"),  # late part of an early lot stays with its lot
        ("L3", [MILL_1], 8_000, 60, "PASS"),
        ("L4", [MILL_1], 10_000, 60, "PASS"),
    ]
    out = part_quality(job_inputs(inspections=_inspections(parts)))
    lots = {name: sorted(set(frame["lot"].to_list())) for name, frame in out.splits.items()}
    assert lots == {"train": ["L1", "L2"], "validation": ["L3"], "test": ["L4"]}
    assert out.meta["split_by"] == "line_time"
    assert out.meta["cuts_by_line"] == [
        {
            "tenant": "acme",
            "plant": "p1",
            "line": "l1",
            "validation": "2026-01-05T01:56:40Z",
            "test": "2026-01-05T02:21:40Z",
        }
    ]
    assert set(out.splits["train"]["machine_type"].to_list()) == {"mill"}

    pinned = part_quality(
        job_inputs(
            inspections=_inspections(parts),
            params={"cuts": {"validation": at(500), "test": at(9_500)}},
        )
    )
    lots = {name: sorted(set(frame["lot"].to_list())) for name, frame in pinned.splits.items()}
    assert lots == {"train": ["L1"], "validation": ["L2", "L3"], "test": ["L4"]}


@settings(max_examples=15, deadline=None)
@given(parts=parts_strategy, base=readings_strategy, rnd=st.randoms(use_true_random=False))
def test_same_rows_in_any_order_give_identical_output(
    parts: list[tuple[str, list[str], int, int, str]], base: list[tuple[str, int, float]], rnd: Any
) -> None:
    shuffled = list(base)
    rnd.shuffle(shuffled)
    inspections = _inspections(parts)
    first = part_quality(job_inputs(telemetry=_telemetry(base), inspections=inspections))
    second = part_quality(
        job_inputs(
            telemetry=_telemetry(shuffled),
            inspections=inspections.sample(fraction=1.0, shuffle=True, seed=rnd.randint(0, 99)),
        )
    )
    for name in first.splits:
        assert_frame_equal(first.splits[name], second.splits[name], check_exact=True)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"split_by": "machine"}, "split_by"),
        ({"seed": 3}, "seed"),
        ({"join_bucket": "0s"}, "join_bucket"),
    ],
)
def test_bad_parameters_name_the_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(JobParamError, match=repr(key)):
        part_quality(job_inputs(params=params))


def test_join_bucket_does_not_change_the_result() -> None:
    parts = [("L1", [MILL_1, MILL_2], 50, 700, "PASS"), ("L2", [MILL_1], 3000, 30, "FAIL")]
    readings = [(MILL_1, t, float(t % 7)) for t in range(0, 4000, 13)]
    readings += [(MILL_2, t, float(t % 5)) for t in range(0, 4000, 17)]
    results = [
        part_quality(
            job_inputs(
                telemetry=_telemetry(readings),
                inspections=_inspections(parts),
                params={"join_bucket": bucket, "split": ALL_TRAIN},
            )
        ).splits["train"]
        for bucket in ("10s", "5m", "1h")
    ]
    assert_frame_equal(results[0], results[1], check_exact=True)
    assert_frame_equal(results[0], results[2], check_exact=True)


def test_plants_sharing_machine_ids_keep_their_own_readings() -> None:
    """The job joins readings plant by plant: mill-1 of plant p1 and mill-1 of plant p2 (same
    machine id and line name) each feed only their own plant's part, and a reading of mill-1
    on a line the registry does not list for it feeds none."""
    machines = registry_machines()
    machines = pl.concat([machines, machines.with_columns(pl.lit("p2").alias("plant"))])
    readings = [(MILL_1, t, 1.0 + t / 100) for t in range(0, 60, 7)]
    telemetry = pl.concat(
        [
            _telemetry(readings),
            _telemetry([(m, t, v + 10.0) for m, t, v in readings]).with_columns(
                pl.lit("p2").alias("plant")
            ),
            _telemetry([(MILL_1, 30, 40.0)]).with_columns(pl.lit("l9").alias("line")),
        ]
    )
    parts = _inspections([("L1", [MILL_1], 0, 60, "PASS")])
    parts = pl.concat([parts, parts.with_columns(pl.lit("p2").alias("plant"))])
    inputs = job_inputs(telemetry=telemetry, inspections=parts, params={"split": ALL_TRAIN})
    rows = _all_rows(part_quality(replace(inputs, machines=machines))).sort("plant")
    mean = sum(v for _, _, v in readings) / len(readings)
    assert rows["plant"].to_list() == ["p1", "p2"]
    assert rows["vib__mean"].to_list() == pytest.approx([mean, mean + 10.0], rel=1e-12)
    assert rows["vib__max"].to_list() == [readings[-1][2], readings[-1][2] + 10.0]


def test_a_window_of_centuries_costs_only_the_buckets_of_the_data() -> None:
    """A bad clock (process_start 1970, process_end 2199) used to make the range join list
    every 5-minute bucket of 229 years per part (2 GB, a minute for two parts); windows are
    clipped to the readings' time range first, and the features are the same."""
    epoch = (at(0) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    absurd = (-epoch, 229 * 365 * 86_400.0)
    telemetry = telemetry_frame(
        [(MILL_1, 60 * i, "vib", float(i)) for i in range(120)]  # two hours of readings
    )
    inspections = inspection_frame(
        [
            ("s1", "lotA", [MILL_1, MILL_2], *absurd, "FAIL", ["BURR"]),
            ("s2", "lotA", [MILL_1], 0, 3600, "PASS", []),
        ]
    )
    out = part_quality(
        job_inputs(telemetry=telemetry, inspections=inspections, params={"split": ALL_TRAIN})
    )
    rows = _all_rows(out)
    assert rows["vib__mean"].to_list() == [59.5, 30.0]
    assert rows["vib__max"].to_list() == [119.0, 60.0]

    parts = inspections.select(
        "tenant",
        "plant",
        "line",
        "part_serial",
        "event_id",
        "process_start",
        "process_end",
        "machines",
    )
    span = (at(0), at(60 * 119))
    buckets = part_buckets(parts, 300_000_000, span)
    assert buckets.height == 2 * 24 + 13  # s1: 2 machines x 24 buckets; s2: 13 buckets
