"""Predictive maintenance: hourly per-machine telemetry statistics, labelled with "does the
machine fail within the next ``horizon_h`` hours".

Rows: one per (machine, window) on an explicit grid of fixed windows ``[window_start,
window_end)`` aligned to the epoch (to the hour for ``window = "1h"``), from the machine's first
to its last reading, so a window without readings is a row with ``<tag>__count = 0`` and null
statistics instead of silently missing.

Features (per registry tag of the machine, ``<tag>__<stat>``): mean, std (sample), min, max,
last (latest reading), slope (least-squares, unit per hour) and count, computed only from
readings with ``event_time < window_end``.

Label ``failure_within_h``: 1 when a ``DOWN`` state (or, only when ``min_severity`` is set, an
alarm with severity >= ``min_severity``) has ``window_end < event_time <= window_end +
horizon_h``, else 0. Wear warnings therefore do not count as failures by default. Only events
strictly after the window end count, so the label never describes what the features saw.
Windows whose horizon reaches past the last telemetry reading are dropped
(``drop_unobserved_horizon``) because "no failure seen" there means "not observed yet".

Split by time at two cut instants ``t1`` (validation starts) and ``t2`` (test starts): the
``train`` and ``train + validation`` fractions of each plant's window_end range, floored to the
window grid (``split_by = "plant_time"``, the default: a sharing contract shifts each plant's
clock by its own keyed offset of up to days, so one cut over all plants would split by plant;
``"time"`` cuts the range of all plants at once), or the spec's pinned ``cuts = {validation =
T1, test = T2}`` for every plant (then data added later lands only in test). train:
``window_end + horizon <= t1``; validation: ``window_start >= t1`` and ``window_end + horizon
<= t2``; test: ``window_start >= t2``. So between the last label horizon of one split and the
first features of the next there is nothing shared: the windows in the gap of ``horizon +
window`` before each cut are dropped. The cuts are recorded in the manifest (``job_meta.cuts``,
or ``job_meta.cuts_by_plant`` when plants differ).

Every row carries its ``machine_type`` (from the registry), after the key columns.

Float statistics come from exact integer sums (:mod:`._exact`): the same rows in any order
give the same bits. One streaming aggregation holds per group only its sums, so memory grows
with the number of (machine, tag, window) groups, not with the readings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import polars as pl

from lake.curation.job import FeatureInfo, JobInputs, JobOutput, LabelInfo
from lake.curation.jobs._exact import (
    SCALE,
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
from lake.curation.jobs._frames import (
    MACHINE_KEYS,
    MACHINE_TYPE_FEATURE,
    PLANT_KEYS,
    TIME,
    accepted,
    as_us,
    lake_range,
    machine_tags,
    pinned_hint,
    plant_cut_meta,
    plant_cuts,
    share_hint,
    span_text,
    split_gap,
    streaming_morsels,
    tag_units,
    wide_by_tag,
    with_machine_type,
)
from lake.curation.jobs._params import (
    SPLIT_NAMES,
    Params,
    cut_points,
    duration_text,
    required_splits,
)
from schemas import EventKind

__all__ = [
    "LABEL",
    "PARAMETERS",
    "STATS",
    "PredictiveMaintenanceParams",
    "predictive_maintenance",
]

JOB: Final = "predictive_maintenance"
LABEL: Final = "failure_within_h"
STATS: Final = ("mean", "std", "min", "max", "last", "slope", "count")
"""Statistics per tag, in column order."""
LABEL_INFO: Final = LabelInfo(LABEL, values=(0, 1), min_classes=2, min_class_share=0.01)
"""0/1, never null, both classes present; a positive share under 1 % is flagged (advisory)."""
KEYS: Final = (*MACHINE_KEYS, "window_start", "window_end")
PARAMETERS: Final = (
    "window",
    "horizon_h",
    "min_severity",
    "split",
    "tags",
    "qualities",
    "drop_unobserved_horizon",
    "cuts",
    "split_by",
)
SPLIT_BY: Final = ("plant_time", "time")
_HOUR_US: Final = 3_600_000_000
_PAIR: Final = "_pair"
_ENGINE: Final[Literal["streaming"]] = "streaming"


@dataclass(frozen=True)
class PredictiveMaintenanceParams:
    """The ``[job]`` table of a predictive maintenance spec, with defaults applied.

    Attributes:
        window_us: window length (``window``, default ``"1h"``).
        horizon_us: label horizon (``horizon_h`` hours, default 4).
        min_severity: alarms at or above this severity count as failures too (default None:
            only ``DOWN`` states do, because the simulator's and many plants' wear *warnings*
            reach severities of 600-900 while the machine still runs).
        split: split shares (default 0.7 / 0.15 / 0.15).
        tags: restrict features to these tags (default: every registry tag).
        qualities: reading quality flags used (default ``["GOOD"]``).
        drop_unobserved_horizon: drop windows whose horizon ends after the data (default true).
        cuts: pinned (validation, test) cut instants in us (``cuts``), None: from ``split``.
        split_by: ``"plant_time"`` (default: each plant's window range is cut at the shares)
            or ``"time"`` (one cut over all plants).
    """

    window_us: int
    horizon_us: int
    min_severity: int | None
    split: Mapping[str, float]
    tags: tuple[str, ...] | None
    qualities: tuple[str, ...]
    drop_unobserved_horizon: bool
    cuts: tuple[int, int] | None = None
    split_by: str = "plant_time"

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> PredictiveMaintenanceParams:
        """Validate the ``[job]`` table (one ``JobParamError`` names every bad key)."""
        p = Params(JOB, values)
        p.check_keys(PARAMETERS)
        parsed = cls(
            window_us=p.duration_us("window", "1h"),
            horizon_us=round(
                p.number(
                    "horizon_h",
                    4,
                    why_positive="no failure can fall inside a zero horizon, so every label "
                    "would be 0",
                )
                * _HOUR_US
            ),
            min_severity=(
                p.integer("min_severity", 1, minimum=1) if "min_severity" in values else None
            ),
            split=p.split(),
            tags=p.strings("tags", None),
            qualities=p.strings("qualities", ["GOOD"]) or ("GOOD",),
            drop_unobserved_horizon=p.boolean("drop_unobserved_horizon", True),
            cuts=p.cuts(),
            split_by=p.choice("split_by", "plant_time", SPLIT_BY),
        )
        p.done()
        return parsed


def predictive_maintenance(inputs: JobInputs) -> JobOutput:
    """Build the predictive maintenance splits (the module docstring specifies them)."""
    params = PredictiveMaintenanceParams.parse(inputs.params)
    pairs = machine_tags(JOB, inputs.machines, inputs.tags, params.tags)
    units = tag_units(JOB, inputs.tags, params.tags)
    stats = _window_stats(inputs.source(EventKind.TELEMETRY), pairs, inputs.tags, params)
    data_end = stats.select(pl.col("last_time").max()).item()
    grid = _grid(stats, params.window_us)
    long = (
        grid.join(pairs.select(*MACHINE_KEYS, "tag"), on=list(MACHINE_KEYS), how="inner")
        .join(stats.drop("last_time"), on=[*MACHINE_KEYS, "tag", "window_start"], how="left")
        .with_columns(pl.col("count").fill_null(0))
    )
    rows = wide_by_tag(grid, long, KEYS, list(units), STATS)
    rows = _label(rows, inputs.source(EventKind.MACHINE_EVENT), params)
    if params.drop_unobserved_horizon and data_end is not None:
        rows = rows.filter(
            pl.col("window_end") + pl.duration(microseconds=params.horizon_us) <= data_end
        )
    rows = with_machine_type(rows.sort(KEYS), inputs.machines, len(KEYS))
    splits, meta, hints = _split(rows, params, inputs.time_shifts)
    return JobOutput(
        splits=splits,
        features=[MACHINE_TYPE_FEATURE, *_features(units)],
        label_columns=[LABEL],
        key_columns=list(KEYS),
        labels=[LABEL_INFO],
        meta={**meta, "row_unit": f"machine windows of {duration_text(params.window_us)}"},
        required_splits=required_splits(params.split, params.cuts),
        split_hints=hints,
    )


def _window_stats(
    telemetry: pl.LazyFrame,
    pairs: pl.DataFrame,
    tags: pl.DataFrame,
    params: PredictiveMaintenanceParams,
) -> pl.DataFrame:
    """(machine, tag, window_start) -> statistics, from readings inside each window only.

    One streaming pass per plant (a filter on the partition columns tenant and plant, so each
    pass reads only its plant's files): a reading joins its plant's registered (line, machine,
    tag) triples, which keeps only registered pairs and gives it the pair's row number and its
    tag's grid scale; the groups are (pair, window), integers, instead of five key strings.
    """
    keys = [*MACHINE_KEYS, "tag"]
    registered = (
        pairs.select(keys)
        .unique()
        .sort(keys)
        .with_row_index(_PAIR)
        .join(tag_scales(tags), on="tag", how="inner")
    )
    plants = registered.select(PLANT_KEYS).unique().sort(PLANT_KEYS).rows()
    here = [(pl.col("tenant") == t) & (pl.col("plant") == p) for t, p in plants]
    with streaming_morsels():
        sums_of = pl.concat(
            [_aggregate(telemetry, registered, plant, params) for plant in here]
            or [_aggregate(telemetry, registered, pl.lit(False), params)]
        )
    sums_of = sums_of.join(registered.select(_PAIR, *keys, SCALE), on=_PAIR, how="inner")
    check_sums(sums_of, JOB, params.window_us)
    return sums_of.with_columns(
        pl.col("window_start").cast(TIME),
        exact_mean().alias("mean"),
        exact_std().alias("std"),
        exact_slope(_HOUR_US).alias("slope"),
        *(unsigned_zero(c).alias(c) for c in ("min", "max", "last")),
    ).select(*MACHINE_KEYS, "tag", "window_start", *STATS, "last_time")


def _aggregate(
    telemetry: pl.LazyFrame,
    registered: pl.DataFrame,
    plant: pl.Expr,
    params: PredictiveMaintenanceParams,
) -> pl.DataFrame:
    """The order-independent aggregates of one plant's (pair, window) groups: exact sums, min,
    max, latest, count.

    Windows are epoch-aligned, so a reading's offset in its window is its time modulo the
    window (floored, also before 1970) and ``window_start`` (us here) the difference.
    """
    rows = (
        accepted(telemetry, params.qualities)
        .filter(plant)
        .select("line", "machine", "tag", "event_time", "value")
    )
    return (
        registered.filter(plant)
        .drop(PLANT_KEYS)
        .lazy()
        .join(rows, on=["line", "machine", "tag"], how="inner")
        .with_columns((as_us("event_time") % params.window_us).alias(TIME_US))
        .with_columns(
            (as_us("event_time") - pl.col(TIME_US)).alias("window_start"), *fixed_point("value")
        )
        .group_by(_PAIR, "window_start")
        .agg(
            *sums(time=True),
            pl.col("value").min().alias("min"),
            pl.col("value").max().alias("max"),
            pl.col("value").sort_by("event_time", "value").last().alias("last"),
            pl.len().cast(pl.UInt32).alias("count"),
            pl.col("event_time").max().alias("last_time"),
        )
        .collect(engine=_ENGINE)
    )


def _grid(stats: pl.DataFrame, window_us: int) -> pl.DataFrame:
    """Every window of every machine from its first to its last window with a reading."""
    step = f"{window_us}us"
    return (
        stats.group_by(*MACHINE_KEYS)
        .agg(
            pl.col("window_start").min().alias("first"),
            pl.col("window_start").max().alias("last"),
        )
        .select(
            *MACHINE_KEYS,
            pl.datetime_ranges("first", "last", step, closed="both").alias("window_start"),
        )
        .explode("window_start")
        .with_columns(
            (pl.col("window_start") + pl.duration(microseconds=window_us)).alias("window_end")
        )
        .sort(KEYS)
    )


def _label(
    rows: pl.DataFrame, machine_events: pl.LazyFrame, params: PredictiveMaintenanceParams
) -> pl.DataFrame:
    """Add the label from the first failure event strictly after each window end."""
    failure = (pl.col("event_type") == "STATE") & (pl.col("state") == "DOWN")
    if params.min_severity is not None:
        alarm = (pl.col("event_type") == "ALARM") & (
            pl.col("alarm_severity") >= params.min_severity
        )
        failure = failure | alarm
    failures = (
        machine_events.filter(failure.fill_null(False))
        .select(*MACHINE_KEYS, pl.col("event_time").alias("failure_time"))
        .unique()
        .collect()
        .sort(*MACHINE_KEYS, "failure_time")
    )
    # join_asof does not check sortedness with `by` (polars #18014): both sides sorted above.
    joined = rows.sort(*MACHINE_KEYS, "window_end").join_asof(
        failures,
        left_on="window_end",
        right_on="failure_time",
        by=list(MACHINE_KEYS),
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    horizon_end = pl.col("window_end") + pl.duration(microseconds=params.horizon_us)
    label = pl.col("failure_time").is_not_null() & (pl.col("failure_time") <= horizon_end)
    return joined.with_columns(label.cast(pl.Int8).alias(LABEL)).drop("failure_time")


def _split(
    rows: pl.DataFrame, params: PredictiveMaintenanceParams, shifts: pl.DataFrame | None
) -> tuple[dict[str, pl.DataFrame], dict[str, Any], dict[str, str]]:
    """The splits, the manifest facts about their cut instants and the hints for empty ones."""
    per_plant = params.split_by == "plant_time"
    ranges = rows.select(
        *PLANT_KEYS, as_us("window_end").alias("lo"), as_us("window_end").alias("hi")
    )
    cuts = plant_cuts(
        ranges,
        cut_points(params.split),
        params.window_us,
        params.cuts,
        per_plant=per_plant,
        shifts=shifts,
    )
    rows = rows.join(cuts, on=list(PLANT_KEYS), how="left", maintain_order="left")
    start, end, horizon = as_us("window_start"), as_us("window_end"), params.horizon_us
    t1, t2 = pl.col("t1"), pl.col("t2")
    conditions = {
        "train": end + horizon <= t1,
        "validation": (start >= t1) & (end + horizon <= t2),
        "test": start >= t2,
    }
    splits = {name: rows.filter(conditions[name]).drop("t1", "t2") for name in SPLIT_NAMES}
    meta = plant_cut_meta(cuts, per_plant=per_plant, pinned=params.cuts)
    return splits, meta, _hints(rows, splits, params)


def _hints(
    rows: pl.DataFrame, splits: Mapping[str, pl.DataFrame], params: PredictiveMaintenanceParams
) -> dict[str, str]:
    """Why each required split is empty (``rows`` carry their plant's ``t1``, ``t2``)."""
    empty = [s for s in required_splits(params.split, params.cuts) if splits[s].height == 0]
    if not empty or rows.height == 0:
        return {}
    window, horizon = params.window_us, params.horizon_us
    needs = {
        "train": (horizon, "one window's horizon before the validation cut"),
        "validation": (window + horizon, "a whole window and its horizon"),
        "test": (window, "a whole window after the test cut"),
    }
    rules = {
        "train": "takes windows whose end + horizon is at or before the validation cut",
        "validation": "takes windows that start at or after the validation cut and whose end "
        "+ horizon is at or before the test cut, so the cuts must be at least horizon + "
        f"window = {span_text(window + horizon)} apart",
        "test": "takes windows that start at or after the test cut",
    }
    out: dict[str, str] = {}
    for name in empty:
        if params.cuts is not None:
            shifted = rows.with_columns((pl.col("t1") - params.cuts[0]).alias("_shift"))
            where = lake_range(shifted, "window_start", "window_end", "_shift")
            out[name] = pinned_hint(name, params.cuts, rules[name], where)
            continue
        per_plant = params.split_by == "plant_time"
        spans = (
            rows.group_by(list(PLANT_KEYS) if per_plant else pl.lit(0))
            .agg((as_us("window_end").max() - as_us("window_end").min()).alias("span"))
            .get_column("span")
            .to_list()
        )
        what = "each plant's window_end range" if per_plant else "the window_end range"
        need_us, need = needs[name]
        covered = rows.with_columns(as_us("window_end").alias("_end_us"))
        gap = split_gap(covered, name, "window_start", "_end_us", per_plant=per_plant)
        share = params.split[name]
        out[name] = share_hint(name, share, need_us, window, spans, what, need, gap=gap)
    return out


def _features(units: Mapping[str, str]) -> list[FeatureInfo]:
    described = {
        "mean": ("{u}", "mean of the readings in the window"),
        "std": ("{u}", "sample standard deviation of the readings in the window"),
        "min": ("{u}", "smallest reading in the window"),
        "max": ("{u}", "largest reading in the window"),
        "last": ("{u}", "latest reading in the window"),
        "slope": ("{u}/h", "least-squares slope of the readings over time in the window"),
        "count": ("1", "number of readings in the window (0: none)"),
    }
    return [
        FeatureInfo(
            f"{tag}__{stat}", described[stat][0].format(u=unit), f"{tag}: {described[stat][1]}"
        )
        for tag, unit in units.items()
        for stat in STATS
    ]
