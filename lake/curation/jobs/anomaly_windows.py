"""Anomaly windows: fixed-rate multivariate sequences per machine for unsupervised models.

Resampling: readings are averaged per (machine, tag, bucket) with buckets of ``rate`` aligned
to the epoch, on an explicit grid from the machine's first to its last bucket. A bucket without
readings takes the previous bucket's value for at most ``fill_limit`` buckets; such values are
flagged ``<tag>__filled``. Longer gaps stay null.

Sequences: each machine's grid is cut from its first bucket into consecutive runs of
``sequence_length`` buckets (``sequence_id``, ``step`` 0..n-1); the incomplete tail and every
sequence with a null left in a tag the machine reports are dropped. Tags the machine's type does
not have are null with ``__filled`` false.

Split by time: each plant's sequence range is cut at the ``train`` and ``train + validation``
fractions (floored to the bucket grid; ``split_by = "plant_time"``, the default, because a
sharing contract shifts each plant's clock by its own offset; ``"time"``: one cut over all
plants), or at the spec's pinned ``cuts = {validation = T1, test = T2}``; a sequence belongs to
the split its whole span lies in, and sequences that straddle a cut are dropped. The cuts are
recorded in the manifest (``job_meta.cuts``, or ``job_meta.cuts_by_plant``). Every row carries
its ``machine_type`` (from the registry).

Normalisation: mean and sample std per tag over the observed (not filled) values of the train
split only, applied to every split as ``<tag>__z`` (null where the std is null or 0), and
returned as ``files["normalization.json"]``, which lists every feature tag (a tag without train
values has null mean and std and count 0), so its keys do not depend on who contributed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from lake.curation.job import FeatureInfo, JobInputs, JobOutput
from lake.curation.jobs._frames import (
    MACHINE_KEYS,
    MACHINE_TYPE_FEATURE,
    PLANT_KEYS,
    as_us,
    json_bytes,
    lake_range,
    list_mean,
    list_std,
    machine_tags,
    pinned_hint,
    plant_cut_meta,
    plant_cuts,
    readings,
    share_hint,
    span_text,
    split_gap,
    tag_units,
    value_list,
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

__all__ = ["NORMALIZATION_FILE", "PARAMETERS", "AnomalyWindowsParams", "anomaly_windows"]

JOB: Final = "anomaly_windows"
NORMALIZATION_FILE: Final = "normalization.json"
KEYS: Final = ("sequence_id", "step")
PARAMETERS: Final = (
    "rate",
    "fill_limit",
    "sequence_length",
    "split",
    "tags",
    "qualities",
    "cuts",
    "split_by",
)
SPLIT_BY: Final = ("plant_time", "time")
_GRID_KEYS: Final = (*MACHINE_KEYS, "time")
_ROW_KEYS: Final = (*KEYS, *_GRID_KEYS)


@dataclass(frozen=True)
class AnomalyWindowsParams:
    """The ``[job]`` table of an anomaly windows spec, with defaults applied.

    Attributes:
        rate_us: bucket length (``rate``, default ``"10s"``).
        fill_limit: buckets a value is carried forward at most (default 3).
        sequence_length: buckets per sequence (default 60).
        split: split shares (default 0.7 / 0.15 / 0.15).
        tags: restrict to these tags (default: every registry tag).
        qualities: reading quality flags used (default ``["GOOD"]``).
        cuts: pinned (validation, test) cut instants in us (``cuts``), None: from ``split``.
        split_by: ``"plant_time"`` (default: each plant's sequence range is cut at the shares)
            or ``"time"`` (one cut over all plants).
    """

    rate_us: int
    fill_limit: int
    sequence_length: int
    split: Mapping[str, float]
    tags: tuple[str, ...] | None
    qualities: tuple[str, ...]
    cuts: tuple[int, int] | None = None
    split_by: str = "plant_time"

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> AnomalyWindowsParams:
        """Validate the ``[job]`` table (one ``JobParamError`` names every bad key)."""
        p = Params(JOB, values)
        p.check_keys(PARAMETERS)
        parsed = cls(
            rate_us=p.duration_us("rate", "10s"),
            fill_limit=p.integer("fill_limit", 3, minimum=0),
            sequence_length=p.integer("sequence_length", 60, minimum=1),
            split=p.split(),
            tags=p.strings("tags", None),
            qualities=p.strings("qualities", ["GOOD"]) or ("GOOD",),
            cuts=p.cuts(),
            split_by=p.choice("split_by", "plant_time", SPLIT_BY),
        )
        p.done()
        return parsed


def anomaly_windows(inputs: JobInputs) -> JobOutput:
    """Build the anomaly window splits (the module docstring specifies them)."""
    params = AnomalyWindowsParams.parse(inputs.params)
    pairs = machine_tags(JOB, inputs.machines, inputs.tags, params.tags)
    units = tag_units(JOB, inputs.tags, params.tags)
    long = _resampled(inputs.source(EventKind.TELEMETRY), pairs, params)
    long = _sequenced(long, params)
    long, meta, hints = _assign_split(long, params, inputs.time_shifts)
    stats = _train_stats(long)
    rows = with_machine_type(_wide(long, stats, list(units)), inputs.machines, len(_ROW_KEYS))
    observed = {
        tag: {"mean": mean, "std": std, "count": count}
        for tag, mean, std, count in stats.iter_rows()
    }
    document = {
        "job": JOB,
        "rate_us": params.rate_us,
        "split": "train",
        "ddof": 1,
        "tags": {
            tag: {"mean": None, "std": None, "count": 0, "unit": unit, **observed.get(tag, {})}
            for tag, unit in units.items()
        },
    }
    return JobOutput(
        splits={name: rows.filter(pl.col("_split") == name).drop("_split") for name in SPLIT_NAMES},
        features=[MACHINE_TYPE_FEATURE, *_features(units)],
        label_columns=[],
        key_columns=list(KEYS),
        files={NORMALIZATION_FILE: json_bytes(document)},
        meta={
            **meta,
            "row_unit": f"steps of {duration_text(params.rate_us)} "
            f"({params.sequence_length} per sequence)",
        },
        required_splits=required_splits(params.split, params.cuts),
        split_hints=hints,
    )


def _resampled(
    telemetry: pl.LazyFrame, pairs: pl.DataFrame, params: AnomalyWindowsParams
) -> pl.DataFrame:
    """(machine, tag, time) on the full grid: ``value`` (bucket mean, forward-filled up to the
    limit), ``filled`` and ``observed``."""
    rate = f"{params.rate_us}us"
    means = (
        readings(telemetry, pairs, params.qualities)
        .with_columns(pl.col("event_time").dt.truncate(rate).alias("time"))
        .group_by(*MACHINE_KEYS, "tag", "time")
        .agg(value_list("value", "event_time").alias("value"))
        .with_columns(list_mean("value").alias("value"))
        .collect()
    )
    grid = (
        means.group_by(*MACHINE_KEYS)
        .agg(pl.col("time").min().alias("first"), pl.col("time").max().alias("last"))
        .select(*MACHINE_KEYS, pl.datetime_ranges("first", "last", rate).alias("time"))
        .explode("time")
        .join(pairs.select(*MACHINE_KEYS, "tag"), on=list(MACHINE_KEYS), how="inner")
    )
    carried = pl.col("value").forward_fill(limit=params.fill_limit).over(*MACHINE_KEYS, "tag")
    return (
        grid.join(means, on=[*MACHINE_KEYS, "tag", "time"], how="left")
        .sort(*MACHINE_KEYS, "tag", "time")
        .with_columns(
            pl.col("value").is_not_null().alias("observed"),
            carried.alias("value"),
        )
        .with_columns((~pl.col("observed") & pl.col("value").is_not_null()).alias("filled"))
    )


def _sequenced(long: pl.DataFrame, params: AnomalyWindowsParams) -> pl.DataFrame:
    """Add sequence number and step per machine; keep only complete, gap-free sequences."""
    length = params.sequence_length
    index = (as_us("time") - as_us("time").min().over(MACHINE_KEYS)) // params.rate_us
    seq = [*MACHINE_KEYS, "seq"]
    return (
        long.with_columns(index.alias("_index"))
        .with_columns(
            (pl.col("_index") // length).alias("seq"), (pl.col("_index") % length).alias("step")
        )
        .filter(
            (pl.col("time").n_unique().over(seq) == length)
            & pl.col("value").is_not_null().all().over(seq)
        )
        .with_columns(pl.col("time").min().over(seq).alias("sequence_start"))
        .drop("_index", "seq")
    )


def _assign_split(
    long: pl.DataFrame, params: AnomalyWindowsParams, shifts: pl.DataFrame | None
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, str]]:
    """Number the sequences in (machine, start) order and put each in one split or drop it;
    also the manifest facts about the cut instants and the hints for empty splits."""
    span_us = params.rate_us * params.sequence_length
    starts = (
        long.select(*MACHINE_KEYS, "sequence_start").unique().sort(*MACHINE_KEYS, "sequence_start")
    )
    starts = starts.with_row_index("sequence_id").with_columns(pl.col("sequence_id").cast(pl.Int64))
    begin = as_us("sequence_start")
    end = begin + span_us
    per_plant = params.split_by == "plant_time"
    cuts = plant_cuts(
        starts.select(*PLANT_KEYS, begin.alias("lo"), end.alias("hi")),
        cut_points(params.split),
        params.rate_us,
        params.cuts,
        per_plant=per_plant,
        shifts=shifts,
    )
    t1, t2 = pl.col("t1"), pl.col("t2")
    which = (
        pl.when(end <= t1)
        .then(pl.lit("train"))
        .when((begin >= t1) & (end <= t2))
        .then(pl.lit("validation"))
        .when(begin >= t2)
        .then(pl.lit("test"))
        .otherwise(None)
    )
    starts = starts.join(cuts, on=list(PLANT_KEYS), how="left", maintain_order="left")
    starts = starts.with_columns(which.alias("_split"), end.alias("_end_us"))
    hints = _hints(starts, params)
    starts = starts.drop("t1", "t2", "_end_us").filter(pl.col("_split").is_not_null())
    meta = plant_cut_meta(cuts, per_plant=per_plant, pinned=params.cuts)
    return long.join(starts, on=[*MACHINE_KEYS, "sequence_start"], how="inner"), meta, hints


def _hints(starts: pl.DataFrame, params: AnomalyWindowsParams) -> dict[str, str]:
    """Why each required split is empty (``starts``: one row per sequence with its plant's
    ``t1``, ``t2``, ``_split`` and ``_end_us``)."""
    taken = set(starts.get_column("_split").drop_nulls().to_list())
    empty = [s for s in required_splits(params.split, params.cuts) if s not in taken]
    if not empty or starts.height == 0:
        return {}
    span_us = params.rate_us * params.sequence_length
    rule = (
        f"takes the sequences whose whole span ({span_text(span_us)}) lies in it; a sequence "
        "that straddles a cut is dropped"
    )
    out: dict[str, str] = {}
    for name in empty:
        if params.cuts is not None:
            frame = starts.with_columns(
                (pl.col("t1") - params.cuts[0]).alias("_shift"),
                pl.from_epoch("_end_us", time_unit="us").dt.replace_time_zone("UTC").alias("_e"),
            )
            where = lake_range(frame, "sequence_start", "_e", "_shift")
            out[name] = pinned_hint(name, params.cuts, rule, where)
            continue
        per_plant = params.split_by == "plant_time"
        spans = (
            starts.group_by(list(PLANT_KEYS) if per_plant else pl.lit(0))
            .agg((pl.col("_end_us").max() - as_us("sequence_start").min()).alias("span"))
            .get_column("span")
            .to_list()
        )
        what = "each plant's sequence range" if per_plant else "the sequence range"
        need = "a whole sequence (one that straddles a cut is dropped)"
        share = params.split[name]
        gap = split_gap(starts, name, "sequence_start", "_end_us", per_plant=per_plant)
        out[name] = share_hint(name, share, span_us, params.rate_us, spans, what, need, gap=gap)
    return out


def _train_stats(long: pl.DataFrame) -> pl.DataFrame:
    """tag -> mean, std (ddof 1), count over observed train values, in a fixed order."""
    observed = long.filter((pl.col("_split") == "train") & pl.col("observed"))
    return (
        observed.group_by("tag")
        .agg(value_list("value", *MACHINE_KEYS, "time").alias("y"))
        .select(
            "tag",
            list_mean("y").alias("mean"),
            list_std("y").alias("std"),
            pl.col("y").list.len().cast(pl.Int64).alias("count"),
        )
        .sort("tag")
    )


def _wide(long: pl.DataFrame, stats: pl.DataFrame, tags: list[str]) -> pl.DataFrame:
    """One row per (sequence, step) with ``<tag>``, ``<tag>__filled`` and ``<tag>__z``."""
    z = (pl.col("value") - pl.col("mean")) / pl.col("std")
    long = long.join(stats.select("tag", "mean", "std"), on="tag", how="left").with_columns(
        pl.when(pl.col("std") > 0).then(z).alias("z")
    )
    base = long.select(*KEYS, *_GRID_KEYS, "_split").unique().sort(KEYS)
    for tag in tags:
        part = long.filter(pl.col("tag") == tag).select(
            *KEYS,
            pl.col("value").alias(tag),
            pl.col("filled").alias(f"{tag}__filled"),
            pl.col("z").alias(f"{tag}__z"),
        )
        base = base.join(part, on=list(KEYS), how="left").with_columns(
            pl.col(f"{tag}__filled").fill_null(False)
        )
    ordered_columns = [
        *KEYS,
        *_GRID_KEYS,
        *(c for t in tags for c in (t, f"{t}__filled", f"{t}__z")),
        "_split",
    ]
    return base.select(ordered_columns).sort(KEYS)


def _features(units: Mapping[str, str]) -> list[FeatureInfo]:
    return [
        info
        for tag, unit in units.items()
        for info in (
            FeatureInfo(tag, unit, f"{tag}: bucket mean, forward-filled up to fill_limit"),
            FeatureInfo(f"{tag}__filled", "1", f"{tag}: true when the value was carried forward"),
            FeatureInfo(f"{tag}__z", "1", f"{tag}: (value - train mean) / train std"),
        )
    ]
