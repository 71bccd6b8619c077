"""Frame helpers the three jobs share: machine keys, registry tags and units, ordered
statistics, time cut points and deterministic JSON.

Floating-point sums depend on the order of their terms, and the content hash of a dataset
depends on every bit of every float. ``predictive_maintenance`` and ``part_quality`` therefore
sum readings as exact integers (:mod:`._exact`); ``anomaly_windows`` and
``remaining_useful_life`` compute their float statistics from the group's values collected as
a list in a total order (time, then value; :func:`value_list`), never in whatever order the
scan or a parallel engine delivered the rows.

Those lists hold every value of a group at once; the exact sums hold a few integers per
group, whatever its size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import polars as pl

from lake.curation.job import FeatureInfo
from lake.curation.jobs._params import cut_meta, iso_us
from lake.curation.jobs.errors import JobInputError

MACHINE_KEYS = ("tenant", "plant", "line", "machine")
"""Columns that identify a machine (machine ids are unique within a line)."""

TIME = pl.Datetime("us", "UTC")
"""The lake's timestamp type."""

MACHINE_TYPE_FEATURE = FeatureInfo(
    "machine_type", "category", "registry machine type of the row's machine"
)
"""The ``machine_type`` column every reference set carries after its keys."""


def with_machine_type(rows: pl.DataFrame, machines: pl.DataFrame, at: int) -> pl.DataFrame:
    """``rows`` with the registry's ``machine_type`` of each row's machine as column ``at``
    (matched on :data:`MACHINE_KEYS`; null for a machine the registry does not list)."""
    types = machines.select(*MACHINE_KEYS, "machine_type").unique(subset=list(MACHINE_KEYS))
    joined = rows.join(types, on=list(MACHINE_KEYS), how="left", maintain_order="left")
    order = [*rows.columns[:at], "machine_type", *rows.columns[at:]]
    return joined.select(order)


def machine_tags(
    job: str,
    machines: pl.DataFrame,
    tags: pl.DataFrame,
    only: Sequence[str] | None,
) -> pl.DataFrame:
    """One row per (machine, tag) the registry says the machine reports, with the tag's unit.

    Args:
        job: job name for error messages.
        machines: the registry's machines (tenant, plant, line, machine, machine_type).
        tags: the registry's tag specs (machine_type, tag, unit, ...).
        only: restrict to these tags (None keeps all).

    Raises:
        JobInputError: when one tag name has two units across machine types, because a
            feature column must have one unit.
    """
    tag_units(job, tags, only)
    pairs = machines.select(*MACHINE_KEYS, "machine_type").join(
        tags.select("machine_type", "tag", "unit"), on="machine_type", how="inner"
    )
    if only is not None:
        pairs = pairs.filter(pl.col("tag").is_in(list(only)))
    return pairs.select(*MACHINE_KEYS, "tag", "unit").sort(*MACHINE_KEYS, "tag")


def tag_units(job: str, tags: pl.DataFrame, only: Sequence[str] | None) -> dict[str, str]:
    """tag -> unit of every tag in ``tags`` (the registry machine types the spec selects),
    restricted to ``only``, in tag order: a job's feature columns.

    Taken from the registry's tag specs, never from the machines that happen to contribute
    rows: under sharing contracts the machines are only those of the companies included, and a
    column set that followed them would tell a partner, from the manifest and schema alone,
    which machine types a set holds and whose columns vanished when a company withdrew.

    Raises:
        JobInputError: when one tag name has two units across machine types, because a
            feature column must have one unit, or when ``only`` names a tag that is not a tag
            of the machine types in ``tags`` (a pinned column that would silently vanish).
    """
    rows = tags.select("tag", "unit")
    if only is not None:
        known = set(rows.get_column("tag").to_list())
        missing = sorted(set(only) - known)
        if missing:
            raise JobInputError(
                job,
                f"[job] tags {missing} are not tags of the registry's machine types (the "
                f"spec's filters.machine_types, when set); known: {sorted(known)}",
            )
        rows = rows.filter(pl.col("tag").is_in(list(only)))
    units = rows.unique().group_by("tag").agg(pl.col("unit").sort()).sort("tag")
    clash = units.filter(pl.col("unit").list.len() > 1)
    if clash.height:
        row = clash.row(0, named=True)
        raise JobInputError(job, f"tag {row['tag']!r} has several units {row['unit']}")
    return {str(tag): str(unit[0]) for tag, unit in units.iter_rows()}


def accepted(telemetry: pl.LazyFrame, qualities: Sequence[str]) -> pl.LazyFrame:
    """Telemetry rows with an accepted quality flag: machine keys, event_time, tag, value."""
    return telemetry.filter(pl.col("quality").is_in(list(qualities))).select(
        *MACHINE_KEYS, "event_time", "tag", "value"
    )


def readings(
    telemetry: pl.LazyFrame,
    pairs: pl.DataFrame,
    qualities: Sequence[str],
    carry: Sequence[str] = (),
) -> pl.LazyFrame:
    """Telemetry rows of the registered (machine, tag) pairs with an accepted quality flag,
    with the ``carry`` columns of their pair (``pairs`` holds each pair once)."""
    rows = accepted(telemetry, qualities)
    keys = [*MACHINE_KEYS, "tag"]
    how: Literal["inner", "semi"] = "inner" if carry else "semi"
    return rows.join(pairs.lazy().select(*keys, *carry), on=keys, how=how)


def value_list(column: str, *order: str) -> pl.Expr:
    """In an aggregation: the group's ``column`` as a list sorted by ``order`` then by itself.

    A total order makes float reductions bit-reproducible. It has to be a list: polars drops
    a ``sort_by`` placed directly before a reduction (``mean``, ``std``) as order-irrelevant,
    and its grouped reductions combine partial results in thread order.
    """
    return pl.col(column).sort_by([*order, column])


def list_mean(column: str) -> pl.Expr:
    """Mean of a list column, summed in list order."""
    return pl.col(column).list.mean()


def list_std(column: str) -> pl.Expr:
    """Sample standard deviation (ddof=1) of a list column; null for fewer than two values."""
    values = pl.col(column)
    return pl.when(values.list.len() >= 2).then(values.list.std(ddof=1))


def list_slope(x: str, y: str) -> pl.Expr:
    """Least-squares slope of list ``y`` over list ``x``, centred for accuracy; null when x is
    constant."""
    dx = pl.col(x) - pl.col(x).list.mean()
    dy = pl.col(y) - pl.col(y).list.mean()
    denominator = (dx * dx).list.sum()
    return pl.when(denominator > 0).then((dx * dy).list.sum() / denominator)


def time_cuts(
    lo_us: int | None, hi_us: int | None, fractions: Sequence[float], grid_us: int
) -> list[int]:
    """Cut instants (us since epoch) at ``fractions`` of [lo, hi], floored to ``grid_us``.

    A fraction of 1 (nothing after it) gives an instant past ``hi``. Flooring keeps boundaries
    on the window grid (on the hour for hourly windows), which makes them readable and
    independent of sub-grid jitter in the data range.
    """
    if lo_us is None or hi_us is None:
        return [0 for _ in fractions]
    span = hi_us - lo_us
    return [
        hi_us + grid_us if f >= 1.0 else ((lo_us + int(span * f)) // grid_us) * grid_us
        for f in fractions
    ]


PLANT_KEYS = ("tenant", "plant")
"""A plant: the unit of a sharing contract's keyed time shift, and of the default time split."""


def plant_shifts(plants: pl.DataFrame, shifts: pl.DataFrame | None) -> pl.DataFrame:
    """``plants`` (with :data:`PLANT_KEYS`) with ``shift_us`` (Int64): each plant's sharing
    time shift from :attr:`JobInputs.time_shifts <lake.curation.job.JobInputs>` (0 when not
    listed or None)."""
    if shifts is None or shifts.height == 0:
        return plants.with_columns(pl.lit(0, pl.Int64).alias("shift_us"))
    table = shifts.select(*PLANT_KEYS, pl.col("shift_us").cast(pl.Int64)).unique(
        subset=list(PLANT_KEYS)
    )
    joined = plants.join(table, on=list(PLANT_KEYS), how="left", maintain_order="left")
    return joined.with_columns(pl.col("shift_us").fill_null(0))


def plant_cuts(
    ranges: pl.DataFrame,
    fractions: Sequence[float],
    grid_us: int,
    pinned: tuple[int, int] | None,
    *,
    per_plant: bool,
    shifts: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The (validation, test) cut instants ``t1``, ``t2`` (us, Int64) of each plant, in the
    sources' clock.

    Args:
        ranges: one row per row-to-split with :data:`PLANT_KEYS` and ``lo``, ``hi`` (us):
            the instants whose range the shares cut.
        fractions: the cumulative shares where validation and test start.
        grid_us: cuts are floored to this grid.
        pinned: the spec's pinned cuts, in lake time: each plant's are these plus its time
            shift (``shifts``), so every plant is cut at the same real instant whatever its
            contract did to its clock; the shares are not used.
        per_plant: cut each plant's own range (a sharing contract shifts each plant's clock
            by its own keyed offset, so one cut over all plants would split by plant, not by
            time); False: one cut over every plant's range.
        shifts: :attr:`JobInputs.time_shifts <lake.curation.job.JobInputs>`.

    Returns:
        :data:`PLANT_KEYS`, ``t1``, ``t2``, one row per plant, sorted.
    """
    plants = ranges.select(*PLANT_KEYS).unique()
    if pinned is not None:
        shift = pl.col("shift_us")
        return (
            plant_shifts(plants, shifts)
            .select(
                *PLANT_KEYS,
                (pl.lit(pinned[0], pl.Int64) + shift).alias("t1"),
                (pl.lit(pinned[1], pl.Int64) + shift).alias("t2"),
            )
            .sort(*PLANT_KEYS)
        )
    group = list(PLANT_KEYS) if per_plant else []
    bounds = ranges.group_by(group or pl.lit(0)).agg(
        pl.col("lo").min().alias("lo"), pl.col("hi").max().alias("hi")
    )
    rows = []
    for row in bounds.iter_rows(named=True):
        t1, t2 = time_cuts(row["lo"], row["hi"], fractions, grid_us)
        rows.append({**{k: row[k] for k in group}, "t1": t1, "t2": t2})
    cuts = pl.DataFrame(
        rows, schema={**dict.fromkeys(group, pl.String), "t1": pl.Int64, "t2": pl.Int64}
    )
    table = plants.join(cuts, on=group, how="left") if group else plants.join(cuts, how="cross")
    return table.sort(*PLANT_KEYS)


def plant_cut_meta(
    cuts: pl.DataFrame, *, per_plant: bool, pinned: tuple[int, int] | None
) -> dict[str, Any]:
    """The manifest's ``job_meta`` for :func:`plant_cuts`: pinned cuts as the spec gave them
    (lake time, ``cuts_clock = "lake"``; never a plant's shifted instants, which would give
    its time shift away); else ``cuts`` when every plant has the same instants, or
    ``cuts_by_plant`` (one entry per plant), in the set's own clock (``cuts_clock =
    "set"``); and ``split_by``, ``cuts_pinned``."""
    split_by = "plant_time" if per_plant else "time"
    if pinned is not None:
        return {**cut_meta(pinned, pinned=True), "cuts_clock": "lake", "split_by": split_by}
    pairs = {(int(t1), int(t2)) for t1, t2 in cuts.select("t1", "t2").iter_rows()}
    if len(pairs) <= 1:
        only = next(iter(pairs)) if pairs else None
        return {**cut_meta(only, pinned=False), "cuts_clock": "set", "split_by": split_by}
    by_plant = [
        {"tenant": tenant, "plant": plant, **cut_meta((t1, t2), pinned=False)["cuts"]}
        for tenant, plant, t1, t2 in cuts.select(*PLANT_KEYS, "t1", "t2").iter_rows()
    ]
    return {
        "cuts_by_plant": by_plant,
        "cuts_pinned": False,
        "cuts_clock": "set",
        "split_by": split_by,
    }


def span_text(us: int) -> str:
    """A data span for people: ``33.5 h``, ``45 min``, ``20 s``."""
    hours = us / 3_600_000_000
    if us >= 2 * 3_600_000_000 or (us and us % 3_600_000_000 == 0):
        return f"{hours:.0f} h" if us % 3_600_000_000 == 0 else f"{hours:.1f} h"
    if us >= 120_000_000:
        return f"{us / 60_000_000:.0f} min"
    return f"{us / 1_000_000:.0f} s"


def data_gap(
    begins_us: Sequence[int], ends_us: Sequence[int], lo_us: int, hi_us: int
) -> tuple[int, int] | None:
    """The longest stretch of ``[lo_us, hi_us)`` that no interval ``[begin, end)`` covers
    (the intervals need not be sorted), or None when they cover all of it."""
    best: tuple[int, int] | None = None
    covered = lo_us
    for begin, end in sorted(zip(begins_us, ends_us, strict=True)):
        if begin > covered:
            gap = (covered, min(begin, hi_us))
            if gap[1] > gap[0] and (best is None or gap[1] - gap[0] > best[1] - best[0]):
                best = gap
        covered = max(covered, end)
        if covered >= hi_us:
            return best
    if hi_us > covered and (best is None or hi_us - covered > best[1] - best[0]):
        best = (covered, hi_us)
    return best


def split_gap(
    frame: pl.DataFrame, split: str, begin: str, end_us: str, *, per_plant: bool
) -> tuple[int, int, int, int] | None:
    """Where ``split`` lies and the longest gap of the data inside it: ``(from, to, gap from,
    gap to)`` in us (the whole gap, which may reach beyond the split), for the plant (or the
    set) with the longest range; None when the data covers the split's stretch. ``frame``
    holds one row per candidate row of the job with ``begin`` (a time column), ``end_us``
    (us) and the cuts ``t1``, ``t2``."""
    group = list(PLANT_KEYS) if per_plant else []
    framed = frame.with_columns(as_us(begin).alias("_b"), pl.lit(0).alias("_all"))
    spans = framed.group_by(group or "_all").agg(
        (pl.col(end_us).max() - pl.col("_b").min()).alias("_span")
    )
    if spans.height == 0:
        return None
    top = spans.sort("_span", descending=True).row(0, named=True)
    rows = framed.filter(*[pl.col(k) == top[k] for k in group]) if group else framed
    lo, hi = int(rows["_b"].min()), int(rows[end_us].max())  # type: ignore[arg-type]
    t1, t2 = int(rows["t1"][0]), int(rows["t2"][0])
    start, stop = {"train": (lo, t1), "validation": (t1, t2), "test": (t2, hi)}[split]
    if stop <= start:
        return None
    begins, ends = rows["_b"].to_list(), rows[end_us].to_list()
    gap = data_gap(begins, ends, start, stop)
    if gap is None:
        return None
    before = max((e for e in ends if e <= gap[0]), default=gap[0])
    after = min((b for b in begins if b >= gap[1]), default=gap[1])
    return start, stop, before, after


def share_hint(
    split: str,
    share: float,
    need_us: int,
    grid_us: int,
    spans_us: Sequence[int],
    what: str,
    need: str,
    *,
    gap: tuple[int, int, int, int] | None = None,
) -> str:
    """Why ``split`` came out empty under share cuts, and what to change: too short a range,
    or (``gap``, from :func:`split_gap`, when the range is long enough) a gap in the data
    where the split's share falls.

    Args:
        split: the split's name.
        share: its share in ``split``.
        need_us: the range one row of the split needs (the rows the job drops next to its
            cuts); one grid step more is counted for the cuts' flooring.
        grid_us: the grid the cuts are floored to.
        spans_us: the range each plant (or the whole set, one value) spans.
        what: what the range is of (``"each plant's window_end range"``).
        need: what ``need_us`` is (``"a whole window and its horizon"``).
    """
    longest = max(spans_us, default=0)
    total = need_us + grid_us
    needed = total / share if share > 0 else float("inf")
    if gap is not None and needed <= longest:
        start, stop, hole_from, hole_to = gap
        return (
            f"split.{split} = {share:g} of {what} is {iso_us(start)} .. {iso_us(stop)}, and "
            f"the data has a gap there, from {iso_us(hole_from)} to {iso_us(hole_to)} "
            f"({span_text(hole_to - hole_from)}), so it cannot hold {need}; the range itself is "
            f"long enough ({span_text(longest)}; {span_text(int(needed))} needed): the share "
            "cuts fall in the gap. Pin the cuts in the spec's [job] at instants with data on "
            'both sides (cuts = {validation = "<time>", test = "<time>"}, lake time), or add '
            "data for the gap"
        )
    raise_to = total / longest if longest else float("inf")
    change = (
        f"raise split.{split} to at least {raise_to:.2f} (the shares sum to 1)"
        if raise_to < 1.0
        else "no share of this span is large enough"
    )
    return (
        f"split.{split} = {share:g} of {what} must hold {need} ({span_text(need_us)}, plus up "
        f"to {span_text(grid_us)} the cuts lose to flooring to the grid), so about "
        f"{span_text(int(needed))} of data are needed; the longest spans {span_text(longest)}: "
        f"add data, or {change}"
    )


def pinned_hint(split: str, pinned: tuple[int, int], need: str, lake_range: str) -> str:
    """Why ``split`` came out empty under pinned cuts (``need``: its rule), and the data's
    range in lake time."""
    return (
        f"the pinned cuts (lake time) are validation {iso_us(pinned[0])}, test "
        f"{iso_us(pinned[1])}; "
        f"{split} {need}; the data spans {lake_range} (lake time): move the cuts into the "
        "data or add data"
    )


def lake_range(frame: pl.DataFrame, start: str, end: str, shift: str) -> str:
    """``first .. last`` of ``frame``'s ``start``/``end`` instants minus each row's ``shift``
    (us), in lake time, or ``no rows``."""
    if frame.height == 0:
        return "no rows"
    row = frame.select(
        (as_us(start) - pl.col(shift)).min().alias("lo"),
        (as_us(end) - pl.col(shift)).max().alias("hi"),
    ).row(0)
    return f"{iso_us(int(row[0]))} .. {iso_us(int(row[1]))}"


STREAM_MORSEL_ROWS = 25_000
"""Rows per morsel of the jobs' streaming aggregations (polars' default is ~100,000).

Fewer rows in flight between the scan, the joins and the group-by: part_quality at 20M rows
peaked at 373-409 MiB against 442-453 MiB with the default (three alternating runs each, same
CPU). Memory only: the results do not depend on it."""

STREAM_CONCURRENT_FILES = 1
"""Parquet files a streaming scan of the jobs decodes at once (``POLARS_MAX_CONCURRENT_SCANS``;
polars' default is the thread count). One file of the lake holds up to a partition's day, so a
scan still decodes it on every thread; at 20M rows part_quality then peaked at 396-409 MiB
against 442-452 MiB, in the same time within the noise (three runs each, one run). Memory
only: the results do not depend on it."""


@contextmanager
def streaming_morsels() -> Iterator[None]:
    """Context in which streaming queries use :data:`STREAM_MORSEL_ROWS` and
    :data:`STREAM_CONCURRENT_FILES`. polars reads both from the process environment when a
    query starts, so a query another thread starts meanwhile uses them too; that changes its
    memory, never its result."""
    saved = os.environ.get(_CONCURRENT_SCANS)
    os.environ[_CONCURRENT_SCANS] = str(STREAM_CONCURRENT_FILES)
    try:
        with pl.Config(streaming_chunk_size=STREAM_MORSEL_ROWS):
            yield
    finally:
        if saved is None:
            os.environ.pop(_CONCURRENT_SCANS, None)
        else:
            os.environ[_CONCURRENT_SCANS] = saved


_CONCURRENT_SCANS = "POLARS_MAX_CONCURRENT_SCANS"


def as_us(column: str) -> pl.Expr:
    """A timestamp column as integer microseconds since the epoch."""
    return pl.col(column).dt.epoch("us")


def min_max_us(frame: pl.DataFrame, start: str, end: str) -> tuple[int | None, int | None]:
    """(min of ``start``, max of ``end``) in microseconds, None for an empty frame."""
    if frame.height == 0:
        return None, None
    row = frame.select(as_us(start).min().alias("lo"), as_us(end).max().alias("hi")).row(0)
    return int(row[0]), int(row[1])


def wide_by_tag(
    base: pl.DataFrame,
    long: pl.DataFrame,
    keys: Sequence[str],
    tags: Sequence[str],
    stats: Sequence[str],
) -> pl.DataFrame:
    """Pivot ``long`` (keys, tag, *stats) onto ``base`` as ``<tag>__<stat>`` columns.

    Done as one left join per tag rather than ``pivot`` so the column set and order come from
    ``tags`` (the registry), not from the values that happen to be present.
    """
    out = base
    for tag in tags:
        part = long.filter(pl.col("tag") == tag).select(
            *keys, *(pl.col(s).alias(f"{tag}__{s}") for s in stats)
        )
        out = out.join(part, on=list(keys), how="left")
    return out


def json_bytes(document: Mapping[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, no NaN; the same bytes on every run."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"
