"""Part quality: telemetry statistics over each inspected part's process window, labelled with
the inspection result and its primary defect code.

Rows: one per inspection (key: tenant, plant, line, part_serial, event_id), with the part's
lot and process window.

Features (``<tag>__mean``, ``<tag>__max``, ``<tag>__std``): the readings of every registry tag
of the machines in the part's ``machines`` list with ``process_start <= event_time <=
process_end``, pooled over those machines. Nothing recorded after ``process_end`` (nor before
``process_start``) contributes. Machines are matched on (tenant, plant, machine) because the
inspection lists machine ids only. A part without readings of a tag gets nulls.

Labels: ``result`` (PASS/FAIL/REWORK, never null, at least two classes) and ``defect_code``, the
first of ``defect_codes`` (declared nullable: null when there is none, as for every PASS part).

Split (``split_by``): ``"lot"`` (default) puts each lot in the split its stable hash falls in
(sha256 of seed, tenant, plant and lot mapped to [0, 1) and cut at the configured shares);
``"time"`` orders lots by their first process start and cuts the time range at the shares.
Either way a lot is never in two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from lake.curation.job import FeatureInfo, JobInputs, JobOutput, LabelContract
from lake.curation.jobs._frames import (
    as_us,
    list_mean,
    list_std,
    machine_tags,
    min_max_us,
    readings,
    tag_units,
    time_cuts,
    value_list,
    wide_by_tag,
)
from lake.curation.jobs._params import SPLIT_NAMES, Params, cut_points

__all__ = ["LABELS", "PARAMETERS", "STATS", "PartQualityParams", "part_quality"]

JOB: Final = "part_quality"
KEYS: Final = ("tenant", "plant", "line", "part_serial", "event_id")
LABELS: Final = ("result", "defect_code")
LABEL_CONTRACTS: Final = (
    LabelContract("result", values=("PASS", "FAIL", "REWORK"), min_classes=2, min_class_share=0.01),
    LabelContract("defect_code", nullable=True),
)
"""``result`` is never null and takes at least two of its three values; ``defect_code`` is null
for a part without defects (every PASS part), by contract."""
STATS: Final = ("mean", "max", "std")
PARAMETERS: Final = ("split", "split_by", "seed", "tags", "qualities", "join_bucket")
_LOT_KEYS: Final = ("tenant", "plant", "lot")
_CONTEXT: Final = ("lot", "process_start", "process_end")


@dataclass(frozen=True)
class PartQualityParams:
    """The ``[job]`` table of a part quality spec, with defaults applied.

    Attributes:
        split: split shares (default 0.7 / 0.15 / 0.15).
        split_by: ``"lot"`` (hash of the lot, default) or ``"time"`` (lot start time).
        seed: salt of the lot hash (default ``""``); change it for a different lot draw.
        tags: restrict features to these tags (default: every registry tag).
        qualities: reading quality flags used (default ``["GOOD"]``).
        join_bucket_us: time bucket of the range join (``join_bucket``, default ``"5m"``); a
            performance knob only, it does not change the result.
    """

    split: Mapping[str, float]
    split_by: str
    seed: str
    tags: tuple[str, ...] | None
    qualities: tuple[str, ...]
    join_bucket_us: int

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> PartQualityParams:
        """Validate the ``[job]`` table (``JobParamError`` names the bad key)."""
        p = Params(JOB, values)
        p.check_keys(PARAMETERS)
        return cls(
            split=p.split(),
            split_by=p.choice("split_by", "lot", ("lot", "time")),
            seed=p.string("seed", ""),
            tags=p.strings("tags", None),
            qualities=p.strings("qualities", ["GOOD"]) or ("GOOD",),
            join_bucket_us=p.duration_us("join_bucket", "5m"),
        )


def part_quality(inputs: JobInputs) -> JobOutput:
    """Build the part quality splits (see the module docstring for the contract)."""
    params = PartQualityParams.parse(inputs.params)
    pairs = machine_tags(JOB, inputs.machines, inputs.tags, params.tags)
    units = tag_units(pairs)
    parts = (
        inputs.inspections.select(
            *KEYS, *_CONTEXT, "machines", "result", pl.col("defect_codes").list.first()
        )
        .rename({"defect_codes": "defect_code"})
        .collect()
        .sort(KEYS)
    )
    stats = _window_stats(inputs.telemetry, pairs, parts, params)
    rows = wide_by_tag(parts.select(*KEYS, *_CONTEXT), stats, KEYS, list(units), STATS)
    rows = rows.join(parts.select(*KEYS, *LABELS), on=list(KEYS), how="left").sort(KEYS)
    return JobOutput(
        splits=_split(rows, params),
        features=[
            FeatureInfo(f"{tag}__{stat}", unit, f"{tag}: {stat} over the part's process window")
            for tag, unit in units.items()
            for stat in STATS
        ],
        label_columns=list(LABELS),
        key_columns=list(KEYS),
        labels=list(LABEL_CONTRACTS),
    )


def _window_stats(
    telemetry: pl.LazyFrame,
    pairs: pl.DataFrame,
    parts: pl.DataFrame,
    params: PartQualityParams,
) -> pl.DataFrame:
    """(part, tag) -> mean/max/std of the readings inside the part's process window.

    A range join done as an equi-join on (machine, time bucket) then an exact filter: each
    part is listed once per bucket its window touches, each reading once, so the work grows
    with the readings, not with readings x parts.
    """
    bucket = f"{params.join_bucket_us}us"
    lo, hi = min_max_us(parts, "process_start", "process_end")
    windows = (
        parts.select(*KEYS, "process_start", "process_end", pl.col("machines").alias("machine"))
        .explode("machine")
        .unique()
        .with_columns(
            pl.datetime_ranges(
                pl.col("process_start").dt.truncate(bucket),
                pl.col("process_end").dt.truncate(bucket),
                bucket,
            ).alias("bucket")
        )
        .explode("bucket")
    )
    in_range = as_us("event_time").is_between(lo or 0, hi or 0, closed="both")
    return (
        readings(telemetry, pairs, params.qualities)
        .filter(in_range)
        .select(
            "tenant",
            "plant",
            "machine",
            "event_time",
            "tag",
            "value",
            pl.col("event_time").dt.truncate(bucket).alias("bucket"),
        )
        .join(windows.lazy(), on=["tenant", "plant", "machine", "bucket"], how="inner")
        .filter(pl.col("event_time").is_between("process_start", "process_end", closed="both"))
        .group_by(*KEYS, "tag")
        .agg(
            value_list("value", "event_time", "machine").alias("y"),
            pl.col("value").max().alias("max"),
        )
        .with_columns(list_mean("y").alias("mean"), list_std("y").alias("std"))
        .drop("y")
        .collect()
    )


def lot_share(seed: str, tenant: str, plant: str, lot: str) -> float:
    """Where a lot falls in [0, 1): a stable hash, the same on every machine and version."""
    digest = hashlib.sha256("\x1f".join((seed, tenant, plant, lot)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _split(rows: pl.DataFrame, params: PartQualityParams) -> dict[str, pl.DataFrame]:
    first, second = cut_points(params.split)
    lots = rows.group_by(*_LOT_KEYS).agg(pl.col("process_start").min()).sort(_LOT_KEYS)
    if params.split_by == "lot":
        position = pl.Series(
            "position",
            [lot_share(params.seed, *lot) for lot in lots.select(_LOT_KEYS).iter_rows()],
            dtype=pl.Float64,
        )
        lots = lots.with_columns(position)
        bounds: tuple[float, float] = (first, second)
    else:
        lo, hi = min_max_us(lots, "process_start", "process_start")
        t1, t2 = time_cuts(lo, hi, (first, second), 1)
        lots = lots.with_columns(as_us("process_start").cast(pl.Float64).alias("position"))
        bounds = (float(t1), float(t2))
    which = (
        pl.when(pl.col("position") < bounds[0])
        .then(pl.lit("train"))
        .when(pl.col("position") < bounds[1])
        .then(pl.lit("validation"))
        .otherwise(pl.lit("test"))
    )
    assigned = rows.join(
        lots.select(*_LOT_KEYS, which.alias("_split")), on=list(_LOT_KEYS), how="left"
    ).sort(KEYS)
    return {name: assigned.filter(pl.col("_split") == name).drop("_split") for name in SPLIT_NAMES}
