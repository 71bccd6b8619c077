"""predictive_maintenance: hand-checked windows and labels, leak-proof features, determinism."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lake.curation.job import JobOutput
from lake.curation.jobs import JOBS, JobParamError, predictive_maintenance
from lake.curation.jobs.predictive_maintenance import LABEL
from tests.unit.lake.curation.conftest import (
    MILL_1,
    OVEN_1,
    T0,
    at,
    job_inputs,
    machine_event_frame,
    registry_machines,
    telemetry_frame,
)

HOUR = 3600
ALL_TRAIN = {"train": 1.0, "validation": 0.0, "test": 0.0}
UTC_US = pl.Datetime("us", "UTC")


def _all_rows(out: JobOutput) -> pl.DataFrame:
    return pl.concat([out.splits[s] for s in ("train", "validation", "test")]).sort(out.key_columns)


def test_registered_under_its_name() -> None:
    assert JOBS["predictive_maintenance"] is predictive_maintenance


def test_window_statistics_and_labels_hand_checked() -> None:
    telemetry = telemetry_frame(
        [
            (MILL_1, 60, "vib", 1.0),
            (MILL_1, 1800, "vib", 3.0),
            (MILL_1, 3540, "vib", 5.0),
            (MILL_1, 3600, "vib", 7.0),  # exactly the first window's end: next window
            (MILL_1, 3 * HOUR + 1, "vib", 2.0),
            (MILL_1, 2 * HOUR, "vib", 9.0, "BAD"),  # quality BAD: ignored
        ]
    )
    events = machine_event_frame(
        [
            (MILL_1, HOUR, "ALARM", 900),  # at window_end 1h: not after it
            (MILL_1, 2 * HOUR + 5, "STATE", "DOWN"),  # labels the window ending at 2h
            (MILL_1, 3 * HOUR + 30, "ALARM", 699),  # below min_severity
            (OVEN_1, HOUR + 5, "STATE", "DOWN"),  # another machine
        ]
    )
    params = {"tags": ["vib"], "horizon_h": 1, "split": ALL_TRAIN}
    out = predictive_maintenance(
        job_inputs(telemetry=telemetry, machine_events=events, params=params)
    )
    starts = [at(h * HOUR) for h in range(4)]
    # window 0: x = 1/60, 1/2, 59/60 h; y = 1, 3, 5 -> slope 1.9333.. / 0.46722.. = 4.1379..
    dx = [1 / 60 - 0.5, 0.0, 59 / 60 - 0.5]
    slope = (dx[0] * -2 + dx[2] * 2) / (dx[0] ** 2 + dx[2] ** 2)
    expected = pl.DataFrame(
        {
            "tenant": ["acme"] * 4,
            "plant": ["p1"] * 4,
            "line": ["l1"] * 4,
            "machine": [MILL_1] * 4,
            "window_start": starts,
            "window_end": [s + timedelta(hours=1) for s in starts],
            "machine_type": ["mill"] * 4,
            "vib__mean": [3.0, 7.0, None, 2.0],
            "vib__std": [2.0, None, None, None],
            "vib__min": [1.0, 7.0, None, 2.0],
            "vib__max": [5.0, 7.0, None, 2.0],
            "vib__last": [5.0, 7.0, None, 2.0],
            "vib__slope": [slope, None, None, None],
            "vib__count": [3, 1, 0, 1],
            LABEL: [0, 1, 0, 0],
        },
        schema_overrides={
            "window_start": UTC_US,
            "window_end": UTC_US,
            "vib__count": pl.UInt32,
            LABEL: pl.Int8,
        },
    )
    # drop_unobserved_horizon: the last reading is at 3h+1s, so window_end + 1h <= 3h+1s
    # keeps the windows ending at 1h and 2h.
    assert_frame_equal(_all_rows(out), expected.head(2), check_exact=False, rel_tol=1e-12)
    unfiltered = predictive_maintenance(
        job_inputs(
            telemetry=telemetry,
            machine_events=events,
            params={**params, "drop_unobserved_horizon": False, "horizon_h": 1 / 3600},
        )
    )
    expected_h0 = expected.with_columns(pl.lit(0, pl.Int8).alias(LABEL))
    assert_frame_equal(_all_rows(unfiltered), expected_h0, check_exact=False, rel_tol=1e-12)


def test_label_window_is_open_at_the_end_and_closed_at_the_horizon() -> None:
    readings = [(MILL_1, h * HOUR, "vib", 1.0) for h in range(12)]
    events = machine_event_frame(
        [
            (MILL_1, 2 * HOUR, "STATE", "DOWN"),  # == end of window 1h-2h: not its label
            (MILL_1, 6 * HOUR, "ALARM", 700),  # == end 4h + horizon 2h: labels window 3h-4h
        ]
    )
    out = predictive_maintenance(
        job_inputs(
            telemetry=telemetry_frame(readings),
            machine_events=events,
            params={
                "tags": ["vib"],
                "horizon_h": 2,
                "min_severity": 700,
                "split": ALL_TRAIN,
                "drop_unobserved_horizon": False,
            },
        )
    )
    rows = _all_rows(out)
    labels = dict(zip(rows["window_end"].dt.hour(), rows[LABEL], strict=True))
    # (end, end + 2h] contains 2h for ends 0h (no such window) and 1h; contains 6h for 4h, 5h.
    assert {h for h, v in labels.items() if v == 1} == {1, 4, 5}


def test_time_split_leaves_a_gap_of_horizon_plus_window_before_each_cut() -> None:
    readings = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(21)]
    out = predictive_maintenance(
        job_inputs(
            telemetry=telemetry_frame(readings),
            params={
                "tags": ["vib"],
                "horizon_h": 2,
                "drop_unobserved_horizon": False,
                "split": {"train": 0.5, "validation": 0.25, "test": 0.25},
            },
        )
    )
    ends = {s: sorted(out.splits[s]["window_end"].dt.hour().to_list()) for s in out.splits}
    # window ends 1h..21h: t1 = 1 + 10 = 11h, t2 = 1 + 15 = 16h. A train label's horizon ends
    # by t1 and validation features start at t1 or later: window ends <= 9h, then >= 12h.
    assert ends == {
        "train": list(range(1, 10)),
        "validation": list(range(12, 15)),
        "test": list(range(17, 22)),
    }
    assert out.meta == {
        "cuts": {"validation": "2026-01-05T11:00:00Z", "test": "2026-01-05T16:00:00Z"},
        "cuts_pinned": False,
        "split_by": "plant_time",
        "row_unit": "machine windows of 1 h",
    }
    train_horizon_end = out.splits["train"]["window_end"].max() + timedelta(hours=2)  # type: ignore[operator]
    assert train_horizon_end <= out.splits["validation"]["window_start"].min()  # type: ignore[operator]


def test_each_plant_is_cut_in_its_own_time_range() -> None:
    """A sharing contract shifts each plant's clock by its own offset (days): one cut over
    all plants would put whole plants in one split and leave validation empty."""
    hours = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(21)]
    p1 = telemetry_frame(hours)
    p2 = p1.with_columns(
        pl.lit("p2").alias("plant"), pl.col("event_time") + timedelta(days=9)
    )  # same readings, 9 days later, in plant p2
    machines = pl.concat(
        [registry_machines(), registry_machines().with_columns(pl.lit("p2").alias("plant"))]
    )
    params = {
        "tags": ["vib"],
        "horizon_h": 2,
        "drop_unobserved_horizon": False,
        "split": {"train": 0.5, "validation": 0.25, "test": 0.25},
    }
    base = job_inputs(telemetry=pl.concat([p1, p2]), params=params)
    per_plant = predictive_maintenance(replace(base, machines=machines))
    for name in per_plant.splits:
        plants = per_plant.splits[name].group_by("plant").len().sort("plant")
        assert plants["plant"].to_list() == ["p1", "p2"], name
        assert plants["len"].to_list()[0] == plants["len"].to_list()[1], name
    assert [c["plant"] for c in per_plant.meta["cuts_by_plant"]] == ["p1", "p2"]
    assert per_plant.meta["cuts_by_plant"][1]["validation"] == "2026-01-14T11:00:00Z"

    one_cut = predictive_maintenance(
        replace(base, machines=machines, params={**params, "split_by": "time"})
    )
    assert one_cut.splits["validation"].height == 0  # the cut falls in the 9-day gap
    assert set(one_cut.splits["train"]["plant"]) == {"p1"}
    assert set(one_cut.meta) >= {"cuts", "split_by"}


def test_plants_sharing_machine_ids_keep_their_own_readings() -> None:
    """The job aggregates plant by plant: mill-1 of p1 and mill-1 of p2 (same machine id and
    line name, same hours) get their own statistics, and a reading of mill-1 on a line the
    registry does not list for it counts nowhere."""
    readings = [(MILL_1, 60 + 100 * i, "vib", 1.0 + i) for i in range(5)]
    telemetry = pl.concat(
        [
            telemetry_frame(readings),
            telemetry_frame([(m, t, g, v + 10) for m, t, g, v in readings]).with_columns(
                pl.lit("p2").alias("plant")
            ),
            telemetry_frame([(MILL_1, 200, "vib", 40.0)]).with_columns(pl.lit("l9").alias("line")),
        ]
    )
    machines = pl.concat(
        [registry_machines(), registry_machines().with_columns(pl.lit("p2").alias("plant"))]
    )
    params = {
        "tags": ["vib"],
        "horizon_h": 1 / 3600,
        "drop_unobserved_horizon": False,
        "split": ALL_TRAIN,
    }
    inputs = replace(job_inputs(telemetry=telemetry, params=params), machines=machines)
    rows = _all_rows(predictive_maintenance(inputs)).filter(pl.col("vib__count") > 0)
    assert rows.sort("plant")["plant"].to_list() == ["p1", "p2"]
    assert rows.sort("plant")["vib__mean"].to_list() == [3.0, 13.0]
    assert rows.sort("plant")["vib__count"].to_list() == [5, 5]


def test_pinned_cuts_keep_earlier_splits_when_data_is_added() -> None:
    params = {
        "tags": ["vib"],
        "horizon_h": 1,
        "cuts": {"validation": "2026-01-05T06:00:00Z", "test": at(10 * HOUR)},
    }
    early = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(16)]
    later = [*early, *[(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(16, 24)]]
    first = predictive_maintenance(job_inputs(telemetry=telemetry_frame(early), params=params))
    second = predictive_maintenance(job_inputs(telemetry=telemetry_frame(later), params=params))
    for name in ("train", "validation"):
        assert_frame_equal(first.splits[name], second.splits[name], check_exact=True)
    assert second.splits["test"].height > first.splits["test"].height
    assert second.meta["cuts_pinned"] is True
    assert second.meta["cuts"]["test"] == "2026-01-05T10:00:00Z"


def test_a_zero_horizon_is_refused_before_any_data_is_read() -> None:
    with pytest.raises(JobParamError, match=r"'horizon_h'.*must be > 0 \(got 0\).*every label"):
        predictive_maintenance(job_inputs(params={"horizon_h": 0}))


@pytest.mark.parametrize(
    ("cuts", "message"),
    [
        ({"validation": "2026-01-05T06:00:00Z"}, "exactly the keys"),
        ({"validation": "2026-01-05T06:00:00", "test": at(0)}, "cuts.validation"),
        ({"validation": at(HOUR), "test": at(0)}, "cuts.test"),
    ],
)
def test_bad_pinned_cuts_name_the_key(cuts: dict[str, Any], message: str) -> None:
    with pytest.raises(JobParamError, match=message):
        predictive_maintenance(job_inputs(params={"cuts": cuts}))
    with pytest.raises(JobParamError, match="not both"):
        predictive_maintenance(job_inputs(params={"cuts": cuts, "split": ALL_TRAIN}))


readings_strategy = st.lists(
    st.tuples(
        st.sampled_from([MILL_1, OVEN_1]),
        st.integers(min_value=0, max_value=8 * HOUR - 1),
        st.sampled_from(["vib", "temp", "zone_temp"]),
        st.floats(min_value=-50, max_value=50, allow_nan=False),
    ),
    max_size=40,
)
events_strategy = st.lists(
    st.tuples(
        st.sampled_from([MILL_1, OVEN_1]),
        st.integers(min_value=0, max_value=8 * HOUR),
        st.sampled_from(["DOWN", "RUNNING", 300, 700, 950]),
    ),
    max_size=6,
)


def _events(rows: list[tuple[str, int, str | int]]) -> pl.DataFrame:
    return machine_event_frame(
        [(m, t, "STATE" if isinstance(w, str) else "ALARM", w) for m, t, w in rows]
    )


def _valid(rows: list[tuple[str, int, str, float]]) -> list[tuple[str, int, str, float]]:
    """Keep the machine's own tags and pin every machine's range to [0, 8h]."""
    own = {MILL_1: {"vib", "temp"}, OVEN_1: {"zone_temp"}}
    kept = [r for r in rows if r[2] in own[r[0]]]
    return [
        *kept,
        (MILL_1, 0, "vib", 0.0),
        (MILL_1, 8 * HOUR, "vib", 0.0),
        (OVEN_1, 0, "zone_temp", 0.0),
        (OVEN_1, 8 * HOUR, "zone_temp", 0.0),
    ]


@settings(max_examples=40, deadline=None)
@given(
    base=readings_strategy,
    base_events=events_strategy,
    cut_hour=st.integers(min_value=1, max_value=7),
    injected=st.lists(st.integers(min_value=0, max_value=HOUR - 1), min_size=1, max_size=5),
    injected_events=events_strategy,
    horizon_h=st.sampled_from([1, 2, 3]),
)
def test_nothing_after_a_window_end_changes_its_features(
    base: list[tuple[str, int, str, float]],
    base_events: list[tuple[str, int, str | int]],
    cut_hour: int,
    injected: list[int],
    injected_events: list[tuple[str, int, str | int]],
    horizon_h: int,
) -> None:
    cut = cut_hour * HOUR
    rows = _valid(base)
    # 2,000x and 250x outside the tags' registry ranges (silver never holds such readings;
    # a billion would exceed the exact sums and fail the build: test_far_out_of_range_...)
    extreme = [(MILL_1, cut + s, "vib", 1e5) for s in injected]
    extreme += [(OVEN_1, cut + s, "zone_temp", -1e5) for s in injected]
    future_events = [(m, cut + 1 + t % (8 * HOUR - cut), w) for m, t, w in injected_events]
    params = {
        "horizon_h": horizon_h,
        "min_severity": 700,
        "split": ALL_TRAIN,
        "drop_unobserved_horizon": False,
    }

    before = _all_rows(
        predictive_maintenance(
            job_inputs(
                telemetry=telemetry_frame(rows), machine_events=_events(base_events), params=params
            )
        )
    )
    all_events = [*base_events, *future_events]
    after = _all_rows(
        predictive_maintenance(
            job_inputs(
                telemetry=telemetry_frame([*rows, *extreme]),
                machine_events=_events(all_events),
                params=params,
            )
        )
    )

    assert before.select(out_keys := ["machine", "window_end"]).equals(after.select(out_keys))
    past = pl.col("window_end") <= at(cut)
    assert_frame_equal(before.filter(past).drop(LABEL), after.filter(past).drop(LABEL))
    failures = [
        (m, at(t)) for m, t, w in all_events if w == "DOWN" or (isinstance(w, int) and w >= 700)
    ]
    horizon = timedelta(hours=horizon_h)
    expected = [
        int(any(m == machine and end < t <= end + horizon for m, t in failures))
        for machine, end in after.select("machine", "window_end").iter_rows()
    ]
    assert after[LABEL].to_list() == expected


@settings(max_examples=15, deadline=None)
@given(base=readings_strategy, seed=st.randoms(use_true_random=False))
def test_same_rows_in_any_order_give_identical_output(
    base: list[tuple[str, int, str, float]], seed: Any
) -> None:
    rows = _valid(base)
    shuffled = list(rows)
    seed.shuffle(shuffled)
    first = predictive_maintenance(job_inputs(telemetry=telemetry_frame(rows)))
    second = predictive_maintenance(job_inputs(telemetry=telemetry_frame(shuffled)))
    for name in first.splits:
        assert_frame_equal(first.splits[name], second.splits[name], check_exact=True)
    assert first.features == second.features


def test_features_carry_registry_units() -> None:
    out = predictive_maintenance(job_inputs(telemetry=telemetry_frame([(MILL_1, 0, "vib", 1)])))
    units = {f.name: f.unit for f in out.features}
    assert units["vib__mean"] == "mm/s"
    assert units["vib__slope"] == "mm/s/h"
    assert units["temp__count"] == "1"
    assert units["zone_temp__last"] == "degC"
    assert units["machine_type"] == "category"
    assert [c for c in out.splits["train"].columns if "__" in c] == list(units)[1:]


def test_empty_inputs_give_empty_splits(empty_inputs: Any) -> None:
    out = predictive_maintenance(empty_inputs)
    assert all(frame.height == 0 for frame in out.splits.values())
    assert out.splits["train"].columns == out.splits["test"].columns


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"windw": "1h"}, "windw"),
        ({"window": "1 hour"}, "window"),
        ({"split": {"train": 0.8, "validation": 0.1}}, "split"),
        ({"split": {"train": 0.8, "validation": 0.1, "test": 0.2}}, "split"),
        ({"min_severity": "high"}, "min_severity"),
    ],
)
def test_bad_parameters_name_the_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(JobParamError, match=repr(key)):
        predictive_maintenance(job_inputs(params=params))


def test_windows_are_hour_aligned_from_the_first_reading() -> None:
    telemetry = telemetry_frame([(MILL_1, 90, "vib", 1.0), (MILL_1, 10 * HOUR + 7, "vib", 1.0)])
    out = predictive_maintenance(
        job_inputs(telemetry=telemetry, params={"horizon_h": 1 / 3600, "split": ALL_TRAIN})
    )
    starts = _all_rows(out)["window_start"]
    assert starts.min() == T0
    assert starts.to_list() == [at(h * HOUR) for h in range(10)]  # 10h-11h: horizon not observed


def test_a_wear_warning_is_not_a_failure_unless_min_severity_asks() -> None:
    readings = [(MILL_1, h * HOUR + 60, "vib", float(h)) for h in range(6)]
    warning = machine_event_frame([(MILL_1, 1.5 * HOUR, "ALARM", 800)])
    base = {"tags": ["vib"], "horizon_h": 1, "split": ALL_TRAIN, "drop_unobserved_horizon": False}

    def labels(params: dict[str, Any]) -> list[int]:
        out = predictive_maintenance(
            job_inputs(telemetry=telemetry_frame(readings), machine_events=warning, params=params)
        )
        return out.splits["train"][LABEL].to_list()

    assert labels(base) == [0] * 6
    assert labels({**base, "min_severity": 700}) == [1, 0, 0, 0, 0, 0]
