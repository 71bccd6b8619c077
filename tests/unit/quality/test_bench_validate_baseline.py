"""bench/bench_validate.py's pure-Arrow baseline judges rows as the telemetry suite does: it
stopped the bench with "disagreement on 1 rows" at its default 2 % bad rows because it
checked the physical range of a reading of quality BAD, which the suite (QUALITY.md) does not:
the GX verdict was right, the baseline wrong."""

from __future__ import annotations

import random

import numpy as np

from bench.bench_validate import ArrowBaseline, check_agreement, make_rows
from quality import ValidationGateway
from schemas import Registry


def test_the_baseline_agrees_with_the_suite_row_for_row_on_the_bench_rows(
    gateway: ValidationGateway, registry: Registry
) -> None:
    rows = make_rows(20_000, 0.02, random.Random(7), registry)  # the bench's first batch
    baseline = ArrowBaseline(registry).validate(rows)
    check_agreement(gateway.validate("telemetry", rows), baseline)


def test_a_bad_quality_reading_out_of_range_is_kept_by_both(
    gateway: ValidationGateway, registry: Registry
) -> None:
    rows = make_rows(4, 0.0, random.Random(1), registry)
    value = rows.column("value").to_pylist()
    quality = ["BAD", "GOOD", "BAD", "GOOD"]
    value[0] = value[1] = 1e9  # far above any tag's physical maximum
    rows = rows.set_column(rows.schema.get_field_index("value"), "value", [value])
    rows = rows.set_column(rows.schema.get_field_index("quality"), "quality", [quality])
    drop, _, _ = ArrowBaseline(registry).validate(rows)
    assert drop.tolist() == [False, True, False, False]
    assert np.array_equal(gateway.validate("telemetry", rows).drop, drop)
