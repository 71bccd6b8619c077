"""anomaly_windows: resampling, bounded forward fill, sequences, train-only normalisation."""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lake.curation.jobs import JOBS, anomaly_windows
from lake.curation.jobs.anomaly_windows import NORMALIZATION_FILE
from tests.unit.lake.curation.conftest import MILL_1, OVEN_1, at, job_inputs, telemetry_frame

UTC_US = pl.Datetime("us", "UTC")
SMALL = {"rate": "10s", "sequence_length": 4, "fill_limit": 2}


def _mill_rows(missing: set[int], buckets: int = 24) -> list[tuple[str, float, str, float]]:
    rows: list[tuple[str, float, str, float]] = []
    for i in range(buckets):
        if i in missing:
            continue
        rows += [
            (MILL_1, i * 10 + 1, "vib", float(i)),
            (MILL_1, i * 10 + 2, "vib", float(i) + 1),
            (MILL_1, i * 10 + 3, "temp", 40.0 + i),
        ]
    return rows


def test_registered_under_its_name() -> None:
    assert JOBS["anomaly_windows"] is anomaly_windows


def test_resampled_filled_and_cut_into_sequences_hand_checked() -> None:
    # buckets 0..11; bucket 5 and 6 missing (filled, limit 2); 9 missing for vib only.
    rows = [r for r in _mill_rows({5, 6}, 12) if not (r[1] // 10 == 9 and r[2] == "vib")]
    rows.append((OVEN_1, 5, "zone_temp", 1.0))  # one bucket: no complete sequence
    out = anomaly_windows(
        job_inputs(
            telemetry=telemetry_frame(rows),
            params={**SMALL, "split": {"train": 1.0, "validation": 0.0, "test": 0.0}},
        )
    )
    train = out.splits["train"]
    vib = [0.5, 1.5, 2.5, 3.5, 4.5, 4.5, 4.5, 7.5, 8.5, 8.5, 10.5, 11.5]
    expected = pl.DataFrame(
        {
            "sequence_id": [0] * 4 + [1] * 4 + [2] * 4,
            "step": [0, 1, 2, 3] * 3,
            "tenant": ["acme"] * 12,
            "plant": ["p1"] * 12,
            "line": ["l1"] * 12,
            "machine": [MILL_1] * 12,
            "time": [at(10 * i) for i in range(12)],
            "machine_type": ["mill"] * 12,
            "temp": [40.0, 41, 42, 43, 44, 44, 44, 47, 48, 49, 50, 51],
            "temp__filled": [i in (5, 6) for i in range(12)],
            "vib": vib,
            "vib__filled": [i in (5, 6, 9) for i in range(12)],
            "zone_temp": [None] * 12,
            "zone_temp__filled": [False] * 12,
        },
        schema_overrides={
            "sequence_id": pl.Int64,
            "step": pl.Int64,
            "time": UTC_US,
            "zone_temp": pl.Float64,
        },
    )
    assert_frame_equal(train.drop("temp__z", "vib__z", "zone_temp__z"), expected)
    stats = json.loads(out.files[NORMALIZATION_FILE])["tags"]
    observed_vib = [v for i, v in enumerate(vib) if i not in (5, 6, 9)]
    assert stats["vib"]["count"] == 9
    assert stats["vib"]["mean"] == statistics.fmean(observed_vib)
    assert abs(stats["vib"]["std"] - statistics.stdev(observed_vib)) < 1e-12
    assert stats["zone_temp"] == {"count": 0, "mean": None, "std": None, "unit": "degC"}
    assert train["zone_temp__z"].null_count() == 12


def test_a_gap_longer_than_the_fill_limit_drops_its_sequences() -> None:
    out = anomaly_windows(
        job_inputs(
            telemetry=telemetry_frame(_mill_rows({12, 13, 14, 15, 16})),
            params={**SMALL, "split": {"train": 1.0, "validation": 0.0, "test": 0.0}},
        )
    )
    starts = out.splits["train"].filter(pl.col("step") == 0)["time"].to_list()
    # sequences start at buckets 0, 4, 8, 12, 16, 20: 12-15 has an unfillable gap, 16 too.
    assert starts == [at(0), at(40), at(80), at(200)]


def test_sequences_straddling_a_split_cut_are_dropped() -> None:
    out = anomaly_windows(
        job_inputs(
            telemetry=telemetry_frame(_mill_rows(set(), 30)),
            params={**SMALL, "split": {"train": 0.5, "validation": 0.25, "test": 0.25}},
        )
    )
    firsts = {
        name: [t.second + 60 * t.minute for t in f.filter(pl.col("step") == 0)["time"]]
        for name, f in out.splits.items()
    }
    # 7 sequences of 40 s from 0 to 280 s: cuts at 140 s and 210 s.
    assert firsts == {"train": [0, 40, 80], "validation": [160], "test": [240]}


readings_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=599),
        st.sampled_from(["vib", "temp"]),
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=40, deadline=None)
@given(rows=readings_strategy, fill_limit=st.integers(min_value=0, max_value=3))
def test_normalisation_equals_the_train_split_alone(
    rows: list[tuple[int, str, float]], fill_limit: int
) -> None:
    params = {**SMALL, "fill_limit": fill_limit}
    out = anomaly_windows(
        job_inputs(
            telemetry=telemetry_frame([(MILL_1, t, g, v) for t, g, v in rows]), params=params
        )
    )
    train = out.splits["train"].sort("machine", "time")
    stats = json.loads(out.files[NORMALIZATION_FILE])["tags"]
    for tag in ("vib", "temp"):
        values = train.filter(~pl.col(f"{tag}__filled"))[tag].drop_nulls().to_list()
        if not values:
            assert (stats[tag]["count"], stats[tag]["mean"]) == (0, None)
            continue
        assert stats[tag]["count"] == len(values)
        assert abs(stats[tag]["mean"] - statistics.fmean(values)) <= 1e-9 * (
            1 + abs(stats[tag]["mean"])
        )
        if len(values) >= 2:
            assert abs(stats[tag]["std"] - statistics.stdev(values)) <= 1e-9 * (
                1 + stats[tag]["std"]
            )
        std = stats[tag]["std"]
        for name, frame in out.splits.items():
            expected = (
                ((pl.col(tag) - stats[tag]["mean"]) / std) if std else pl.lit(None, pl.Float64)
            )
            z = frame.with_columns(expected.alias("_z"))["_z"]
            got = frame[f"{tag}__z"]
            assert got.null_count() == z.null_count(), name


@settings(max_examples=30, deadline=None)
@given(rows=readings_strategy, extreme=st.floats(min_value=-1e9, max_value=1e9))
def test_values_after_the_train_period_do_not_move_the_statistics(
    rows: list[tuple[int, str, float]], extreme: float
) -> None:
    base = [(MILL_1, t, g, v) for t, g, v in rows]
    first = anomaly_windows(job_inputs(telemetry=telemetry_frame(base), params=SMALL))
    train = first.splits["train"]
    if train.height == 0:
        return
    train_end = train["time"].max()
    assert isinstance(train_end, datetime)
    # train_end is the start of the last train bucket; readings inside that bucket are train data
    bucket_end = train_end + timedelta(seconds=10)
    later = [(m, t, g, extreme if at(t) >= bucket_end else v) for m, t, g, v in base]
    second = anomaly_windows(job_inputs(telemetry=telemetry_frame(later), params=SMALL))
    assert second.files[NORMALIZATION_FILE] == first.files[NORMALIZATION_FILE]
    assert_frame_equal(second.splits["train"], train, check_exact=True)


@settings(max_examples=15, deadline=None)
@given(rows=readings_strategy, rnd=st.randoms(use_true_random=False))
def test_same_rows_in_any_order_give_identical_output(
    rows: list[tuple[int, str, float]], rnd: Any
) -> None:
    base = [(MILL_1, t, g, v) for t, g, v in rows]
    shuffled = list(base)
    rnd.shuffle(shuffled)
    first = anomaly_windows(job_inputs(telemetry=telemetry_frame(base), params=SMALL))
    second = anomaly_windows(job_inputs(telemetry=telemetry_frame(shuffled), params=SMALL))
    assert first.files == second.files
    for name in first.splits:
        assert_frame_equal(first.splits[name], second.splits[name], check_exact=True)


def test_normalization_file_is_canonical_json() -> None:
    out = anomaly_windows(
        job_inputs(telemetry=telemetry_frame(_mill_rows(set(), 30)), params=SMALL)
    )
    raw = out.files[NORMALIZATION_FILE]
    document = json.loads(raw)
    assert raw == (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()
    assert document["split"] == "train"
    assert set(document["tags"]) == {"temp", "vib", "zone_temp"}, "every registry tag"
