"""Linkage protection of one tenant's rows: noise on telemetry values (a share of the tag's
registry range) and inspection dimensions, and the time grid."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from lake.sharing.contract import Contract, parse_contract
from lake.sharing.deid import Pseudonymiser, perturb, tag_spans

T0 = datetime(2026, 11, 26, 23, 59, 31, 250_000, tzinfo=UTC)
DIMS = pl.List(pl.Struct({"name": pl.String, "value": pl.Float64, "unit": pl.String}))


def _contract(deid: str, kind: str = "inspection") -> Contract:
    return parse_contract(
        (
            'id = "nw-q"\ntenant = "northwind-auto"\npurposes = ["quality"]\n'
            f'[share]\nkinds = ["{kind}"]\n[deidentify]\n{deid}'
        ).encode(),
        source="test",
    )


N = 2000
SPANS = tag_spans(
    pl.DataFrame(
        {
            "tenant": ["northwind-auto"],
            "plant": ["stuttgart"],
            "line": ["l1"],
            "machine": ["furnace-1"],
            "machine_type": ["furnace"],
        }
    ),
    pl.DataFrame(
        {
            "machine_type": ["furnace", "furnace"],
            "tag": ["gas_temp", "vibration_rms"],
            "min": [250.0, 0.0],
            "max": [350.0, 25.0],
        }
    ),
)


def _telemetry(tag: str, value: float) -> pl.LazyFrame:
    times = [T0 + timedelta(seconds=i) for i in range(N)]
    return pl.LazyFrame(
        {
            "event_id": [f"e-{i}" for i in range(N)],
            "tenant": ["northwind-auto"] * N,
            "plant": ["stuttgart"] * N,
            "line": ["l1"] * N,
            "machine": ["furnace-1"] * N,
            "event_time": times,
            "date": [t.date() for t in times],
            "reading_index": pl.Series([0] * N, dtype=pl.Int16),
            "tag": [tag] * N,
            "value": [value] * N,
        }
    )


def test_telemetry_noise_is_a_share_of_the_tags_range_not_of_its_value() -> None:
    contract = _contract("time_shift_days = 0\nvalue_noise = 0.01\n", "telemetry")
    key = Pseudonymiser(contract.id, b"k" * 32)

    for tag, value, span in (("gas_temp", 300.0, 100.0), ("vibration_rms", 0.5, 25.0)):
        out = perturb(_telemetry(tag, value), "telemetry", contract, key, SPANS).collect()
        error = (pl.col("value") - value) / span
        sd, worst, bias = out.select(
            error.std().alias("sd"), error.abs().max().alias("worst"), error.mean().alias("bias")
        ).row(0)

        assert out.height == N
        assert out.drop("value").equals(_telemetry(tag, value).collect().drop("value"))
        assert 0.009 < sd < 0.011, f"{tag}: noise sd is 1 % of the range, not of the value"
        assert worst < 0.05, f"{tag}: the noise stays within a few % of the range"
        assert abs(bias) < 0.001
    same = perturb(_telemetry("vibration_rms", 0.5), "telemetry", contract, key, SPANS)
    assert_frame_equal(same.collect(), out)
    other = Pseudonymiser(contract.id, b"o" * 32)
    unrelated = perturb(_telemetry("vibration_rms", 0.5), "telemetry", contract, other, SPANS)
    assert not unrelated.collect()["value"].equals(out["value"])
    unknown = perturb(_telemetry("oil_level", 3.0), "telemetry", contract, key, SPANS).collect()
    assert unknown["value"].null_count() == N, "no registry range, no value"


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
