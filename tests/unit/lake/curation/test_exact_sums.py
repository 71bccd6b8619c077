"""Order-independent statistics from exact integer sums: bits, accuracy, bounds.

The accuracy checks recompute each statistic by hand with exact rational arithmetic
(``fractions.Fraction``) from the raw readings. Tolerances are the documented rounding: the mean
within 2 ulp of the exact mean (one rounding of the exact sum, one of the division; readings
below half a grid step keep 53 bits below the step only), standard
deviation and slope within 4 grid steps' worth (each reading enters them rounded toward zero to
a step of ``2**-BITS`` times its tag's range bound).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lake.curation.jobs import JobInputError
from lake.curation.jobs._exact import (
    BITS,
    TIME_US,
    check_sums,
    exact_mean,
    exact_slope,
    exact_std,
    fixed_point,
    sums,
    tag_scales,
    unsigned_zero,
)

BOUND = 50.0
"""The test tag's range is [0, 50]: its grid step is 2**-BITS * 64."""
STEP = 2.0 ** (6 - BITS)


def _stats(values: list[float], times: list[int] | None = None) -> tuple[float, ...]:
    """(mean, std, slope per time unit) of one group through fixed_point, sums, exact_*."""
    times = times if times is not None else list(range(len(values)))
    scales = tag_scales(pl.DataFrame({"tag": ["x"], "min": [0.0], "max": [BOUND]}))
    frame = pl.DataFrame({"tag": ["x"] * len(values), "value": values, TIME_US: times})
    sums_of = (
        frame.join(scales, on="tag")
        .lazy()
        .with_columns(*fixed_point("value"))
        .group_by("tag")
        .agg(*sums(time=True))
        .join(scales.lazy(), on="tag")
        .collect(engine="streaming")
    )
    check_sums(sums_of, "test", span_us=max(times) + 1)
    row = sums_of.select(exact_mean(), exact_std(), exact_slope(1.0)).row(0)
    return tuple(row)


def _exact_std(values: list[float]) -> float:
    xs = [Fraction(v) for v in values]
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def _exact_slope(values: list[float], times: list[int]) -> float:
    xs, ts = [Fraction(v) for v in values], [Fraction(t) for t in times]
    mx, mt = sum(xs) / len(xs), sum(ts) / len(ts)
    num = sum((t - mt) * (x - mx) for t, x in zip(ts, xs, strict=True))
    return float(num / sum((t - mt) ** 2 for t in ts))


def test_any_order_gives_the_same_bits_where_float_sums_do_not() -> None:
    rnd = random.Random(5)
    values = [rnd.random() * 10.0 ** rnd.randint(-8, 1) for _ in range(2000)]
    times = [rnd.randrange(3_600_000_000) for _ in values]
    orders = [list(range(len(values)))]
    for seed in range(4):
        order = list(orders[0])
        random.Random(seed).shuffle(order)
        orders.append(order)
    plain = {sum(values[i] for i in order) for order in orders}
    assert len(plain) > 1, "the data must make plain float sums depend on the order"
    results = {_stats([values[i] for i in order], [times[i] for i in order]) for order in orders}
    assert len(results) == 1


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-2 * BOUND, max_value=2 * BOUND, allow_nan=False), min_size=2
    ).filter(lambda v: len(set(v)) > 1),
    seed=st.randoms(use_true_random=False),
)
def test_hand_recomputed_statistics_agree_within_the_documented_rounding(
    values: list[float], seed: random.Random
) -> None:
    times = [seed.randrange(3_600_000_000) for _ in values]
    mean, std, slope = _stats(values, times)
    exact_mean_value = float(sum(Fraction(v) for v in values) / len(values))
    assert abs(mean - exact_mean_value) <= 2 * math.ulp(exact_mean_value) + 2.0**-53 * STEP
    assert abs(std - _exact_std(values)) <= 4 * STEP
    if len(set(times)) > 1:
        expected = _exact_slope(values, times)
        spread = math.sqrt(sum((t - sum(times) / len(times)) ** 2 for t in times))
        assert abs(slope - expected) <= 4 * STEP * math.sqrt(len(values)) / spread + 1e-12 * abs(
            expected
        )


@pytest.mark.parametrize("value", [0.1, 1e-7, 49.99, 3.0, -0.25, 0.0, 2e4])
def test_one_reading_has_itself_as_mean_and_a_constant_window_has_std_zero(
    value: float,
) -> None:
    assert _stats([value])[0] == value
    mean, std, slope = _stats([value] * 5)
    assert (mean, std, slope) == (value, 0.0, 0.0)


def test_negative_zero_is_reported_as_zero() -> None:
    frame = pl.DataFrame({"v": [-0.0, 0.0, 1.0]})
    assert [math.copysign(1.0, v) for v in frame.select(unsigned_zero("v").alias("v"))["v"]] == [
        1,
        1,
        1,
    ]


@pytest.mark.parametrize("value", [1e9, -1e12, float("nan"), float("inf")])
def test_far_out_of_range_or_not_finite_readings_fail_with_the_tag(value: float) -> None:
    with pytest.raises(JobInputError, match=r"tag 'x'.*registry"):
        _stats([1.0, value, 2.0])


def test_scales_are_powers_of_two_from_the_widest_range_of_a_tag() -> None:
    tags = pl.DataFrame(
        {"tag": ["a", "a", "b", "c"], "min": [0.0, -100.0, 0.0, 0.0], "max": [50.0, 0.0, 0.0, 1e-3]}
    )
    scales = dict(tag_scales(tags).iter_rows())
    assert scales == {"a": 2.0 ** (BITS - 7), "b": 2.0**BITS, "c": 2.0 ** (BITS + 9)}
