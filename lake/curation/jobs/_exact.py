"""Float statistics that do not depend on row order, from exact integer sums.

The content hash of a dataset covers every bit of every float, and a float sum depends on the
order of its terms (and polars' grouped sums add partial results in thread order). So the jobs
never sum floats. Each reading ``v`` of a tag is turned, once and on its own, into integers on a
fixed-point grid of that tag:

* ``q = trunc(v * scale)`` with ``scale = 2**(BITS - e)``, where ``2**e`` is the smallest power
  of two at or above the largest ``|min|``, ``|max|`` of the tag's registry ranges: a reading
  inside the range is at most ``2**BITS`` grid steps from zero;
* ``l = trunc((v * scale - q) * 2**53)``, the rest of ``v`` below one step (exact for every
  reading at least one step from zero).

Per group, ``sum(q)``, ``sum(l)``, ``sum(q * q)`` and, for a slope, ``sum(t)``, ``sum(t * t)``
and ``sum(t * q)`` of the integer time ``t`` (us) are exact Int128 sums, identical for any
order of the rows. Every statistic is then a fixed function of those sums:

* mean: ``(sum(q) * 2**53 + sum(l)) / n / scale / 2**53``: the exact sum of the readings,
  rounded once to a float (twice with the division), so within an ulp or two of the true mean,
  and exactly ``v`` for a window with one reading (one at least half a grid step from zero);
* sample standard deviation and least-squares slope: from the centred sums
  ``sum((q - a)**2)``, ``sum((t - b) * (q - a))``, ``sum((t - b)**2)``, with ``a``, ``b`` the
  floors of the group's mean ``q`` and ``t``, computed exactly in Int128, then corrected by
  ``r**2 / n`` terms (``r`` the remainder of the floor, less than ``n``) in float; no
  cancellation. The readings enter these two on the grid, that is each rounded toward zero to
  a step of ``2**-BITS`` times the tag's power-of-two range bound (3.0e-8 rpm for a 0-24,000
  rpm spindle, 1.2e-10 degC for a 10-90 degC probe);
* min, max, latest value and count are order-independent as they are (ties of the latest
  reading resolve to the largest value; ``-0.0`` is reported as ``0.0``).

Bounds: Int128 sums are exact while ``n * m**2 < 2**124``, ``n * m < 2**72`` and ``n * w**2 <
2**124`` for ``n`` readings of at most ``m`` steps in a window of ``w`` us; readings inside the
registry range satisfy them for any window of up to 4 billion readings. :func:`check_sums`
raises :class:`JobInputError` for a group beyond them (a reading far outside its tag's range:
silver quarantines readings outside the range), never a silently wrapped sum.
"""

from __future__ import annotations

import math
from typing import Final

import polars as pl

from lake.curation.jobs.errors import JobInputError

__all__ = [
    "BITS",
    "SCALE",
    "TIME_US",
    "check_sums",
    "exact_mean",
    "exact_slope",
    "exact_std",
    "fixed_point",
    "sums",
    "tag_scales",
    "unsigned_zero",
]

BITS: Final = 40
"""Grid steps between zero and the largest ``|min|``, ``|max|`` of a tag's range: ``2**40``."""
SCALE: Final = "_scale"
"""Column of a reading's grid scale (steps per unit of the value), from :func:`tag_scales`."""
TIME_US: Final = "_t"
"""Column of a reading's integer time offset (us) for :func:`exact_slope`."""
_Q: Final = "_q"
_L: Final = "_l"
_LOW: Final = 2.0**53
_BEYOND: Final = 2**63 - 1
_I128: Final = pl.Int128
_F64: Final = pl.Float64


def tag_scales(tags: pl.DataFrame) -> pl.DataFrame:
    """``tag`` -> :data:`SCALE` (Float64, a power of two) from the registry's tag specs
    (``tag``, ``min``, ``max``; a tag of several machine types takes its widest range, so
    readings pooled across machine types share one grid)."""
    bounds = tags.group_by("tag").agg(
        pl.max_horizontal(pl.col("min").abs(), pl.col("max").abs()).max().alias("bound")
    )
    rows = []
    for tag, bound in bounds.sort("tag").iter_rows():
        exponent = min(max(math.frexp(float(bound))[1], -900), 900) if bound else 0
        rows.append((tag, math.ldexp(1.0, BITS - exponent)))
    return pl.DataFrame(rows, schema={"tag": pl.String, SCALE: _F64}, orient="row")


def fixed_point(value: str) -> list[pl.Expr]:
    """Per row: the reading ``value`` on its tag's grid (needs :data:`SCALE`), as the
    integer columns the aggregations of :func:`sums` read. A reading beyond Int64 on the grid
    (or not a finite number) becomes the largest Int64 there, which :func:`check_sums`
    reports."""
    scaled = pl.col(value) * pl.col(SCALE)
    steps = scaled.cast(pl.Int64, strict=False)
    rest = ((scaled - steps) * _LOW).cast(pl.Int64, strict=False)
    return [steps.fill_null(_BEYOND).alias(_Q), rest.alias(_L)]


def sums(*, time: bool) -> list[pl.Expr]:
    """In a ``group_by().agg()``: the exact sums of :func:`fixed_point` (and of :data:`TIME_US`
    with ``time``), the count and the largest ``|q|`` :func:`check_sums` needs. The group's
    grid scale is not among them: join :data:`SCALE` to the result by tag."""
    q = pl.col(_Q).cast(_I128)
    out = [
        pl.len().alias("_n"),
        pl.col(_Q).abs().max().alias("_qabs"),
        q.sum().alias("_s1"),
        pl.col(_L).cast(_I128).sum().alias("_sl"),
        (q * q).sum().alias("_s2"),
    ]
    if time:
        t = pl.col(TIME_US).cast(_I128)
        out += [
            t.sum().alias("_st"),
            (t * t).sum().alias("_stt"),
            (t * q).sum().alias("_stq"),
        ]
    return out


def check_sums(frame: pl.DataFrame, job: str, span_us: int | None = None) -> None:
    """Raise :class:`JobInputError` when a group's sums could exceed Int128 (see the module
    docstring's bounds); ``span_us`` bounds :data:`TIME_US` when the sums include time.
    ``frame`` holds :func:`sums`' columns, ``tag`` and :data:`SCALE`."""
    n = pl.col("_n").cast(_F64)
    steps = pl.col("_qabs").cast(_F64)
    ok = (pl.col("_qabs") < _BEYOND) & (n * steps * steps < 2.0**124) & (n * steps < 2.0**72)
    if span_us is not None:
        ok = ok & (n * float(span_us) ** 2 < 2.0**124)
    bad = frame.filter(~ok.fill_null(False))
    if bad.height:
        row = bad.row(0, named=True)
        count = row["_n"]
        steps = min(2.0**62 / math.sqrt(count), 2.0**72 / count, 2.0**63)
        raise JobInputError(
            job,
            f"tag {row['tag']!r}: a group of {count:,} readings holds a reading beyond "
            f"+-{steps / row[SCALE]:.3g} (or not a finite number), more than exact "
            "order-independent sums allow for the tag's registry range; silver quarantines "
            "readings outside the range, so check the tag's min and max in the registry",
        )


def exact_mean() -> pl.Expr:
    """Mean of the readings from :func:`sums` (see the module docstring for its rounding)."""
    total = pl.col("_s1") * pl.lit(int(_LOW), _I128) + pl.col("_sl")
    return total.cast(_F64) / pl.col("_n").cast(_F64) * (1.0 / _LOW / pl.col(SCALE))


def _centred() -> tuple[pl.Expr, pl.Expr]:
    """(floor of the mean grid step ``a``, remainder ``r = sum(q) - n * a``), Int128."""
    n = pl.col("_n").cast(_I128)
    a = pl.col("_s1") // n
    return a, pl.col("_s1") - a * n


def exact_std() -> pl.Expr:
    """Sample standard deviation (ddof 1) of the grid readings; null for fewer than two."""
    n = pl.col("_n").cast(_F64)
    a, r = _centred()
    squares = (pl.col("_s2") - a * (pl.col("_s1") + r)).cast(_F64) - r.cast(_F64) ** 2 / n
    var = pl.max_horizontal(squares, pl.lit(0.0)) / (n - 1.0)
    return pl.when(pl.col("_n") >= 2).then(var.sqrt() / pl.col(SCALE))


def exact_slope(per_us: float) -> pl.Expr:
    """Least-squares slope of the grid readings over :data:`TIME_US`, in value units per
    ``per_us`` microseconds; null when the times are all equal."""
    n_int = pl.col("_n").cast(_I128)
    n = pl.col("_n").cast(_F64)
    a, r = _centred()
    b = pl.col("_st") // n_int
    s = pl.col("_st") - b * n_int
    times = (pl.col("_stt") - b * (pl.col("_st") + s)).cast(_F64) - s.cast(_F64) ** 2 / n
    cross = (pl.col("_stq") - a * pl.col("_st") - b * r).cast(_F64) - (
        s.cast(_F64) * r.cast(_F64) / n
    )
    return pl.when(times > 0).then(cross / times * (per_us / pl.col(SCALE)))


def unsigned_zero(column: str) -> pl.Expr:
    """``column`` with ``-0.0`` as ``0.0`` (min, max and ties pick either in row order)."""
    return pl.when(pl.col(column) == 0.0).then(pl.lit(0.0)).otherwise(pl.col(column))
