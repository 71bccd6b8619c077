"""Linkage protection of one tenant's rows: noise on inspection dimensions and the time grid."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from lake.sharing.contract import Contract, parse_contract
from lake.sharing.deid import Pseudonymiser, perturb

T0 = datetime(2026, 11, 26, 23, 59, 31, 250_000, tzinfo=UTC)
DIMS = pl.List(pl.Struct({"name": pl.String, "value": pl.Float64, "unit": pl.String}))


def _contract(deid: str) -> Contract:
    return parse_contract(
        (
            'id = "nw-q"\ntenant = "northwind-auto"\npurposes = ["quality"]\n'
            f'[share]\nkinds = ["inspection"]\n[deidentify]\n{deid}'
        ).encode(),
        source="test",
    )


def _inspections() -> pl.LazyFrame:
    dims = [
        [
            {"name": "bore", "value": 12.5, "unit": "mm"},
            {"name": "depth", "value": 40.0, "unit": "mm"},
        ],
        [],
        [{"name": "bore", "value": 12.5, "unit": "mm"}],
    ]
    times = [T0 + timedelta(seconds=37 * i) for i in range(3)]
    return pl.LazyFrame(
        {
            "event_id": ["e-1", "e-2", "e-3"],
            "tenant": ["northwind-auto"] * 3,
            "plant": ["stuttgart"] * 3,
            "event_time": times,
            "process_start": times,
            "date": [t.date() for t in times],
            "dimensions": dims,
        },
        schema_overrides={"dimensions": DIMS},
    )


def _values(frame: pl.DataFrame) -> list[list[float]]:
    return [[d["value"] for d in row] for row in frame["dimensions"].to_list()]


def test_inspection_dimensions_get_keyed_noise_and_keep_their_shape() -> None:
    contract = _contract("time_shift_days = 0\nvalue_noise = 0.01\n")
    key = Pseudonymiser(contract.id, b"k" * 32)

    out = perturb(_inspections(), "inspection", contract, key).collect()

    raw = _inspections().collect()
    assert out.columns == raw.columns
    assert out.drop("dimensions").equals(raw.drop("dimensions"))
    assert [[(d["name"], d["unit"]) for d in r] for r in out["dimensions"].to_list()] == [
        [("bore", "mm"), ("depth", "mm")],
        [],
        [("bore", "mm")],
    ]
    noisy, clear = _values(out), _values(raw)
    pairs = [
        (a, b)
        for row_a, row_b in zip(noisy, clear, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    ]
    assert all(a != b and abs(a - b) <= 0.06 * b for a, b in pairs)
    assert noisy[0][0] != noisy[2][0], "the same value of two parts gets unrelated noise"
    assert_frame_equal(out, perturb(_inspections(), "inspection", contract, key).collect())
    other = perturb(_inspections(), "inspection", contract, Pseudonymiser("nw-q", b"o" * 32))
    assert _values(other.collect()) != noisy
    off = _contract("time_shift_days = 0\nvalue_noise = 0\n")
    assert_frame_equal(perturb(_inspections(), "inspection", off, key).collect(), raw)


def test_the_time_grid_floors_every_time_and_the_date_follows() -> None:
    contract = _contract("time_shift_days = 0\nvalue_noise = 0\ntime_grid_s = 3600\n")

    out = perturb(
        _inspections(), "inspection", contract, Pseudonymiser(contract.id, b"k" * 32)
    ).collect()

    for column in ("event_time", "process_start"):
        assert out[column].to_list() == [
            datetime(2026, 11, 26, 23, tzinfo=UTC),
            datetime(2026, 11, 27, 0, tzinfo=UTC),
            datetime(2026, 11, 27, 0, tzinfo=UTC),
        ]
    assert out["date"].to_list() == [date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 27)]
