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

Split (``split_by``): ``"line_time"`` (default) orders the lots of each line by their first
process start and cuts each line's range of lot starts at the configured shares, so on every
line train lots start before validation lots, which start before test lots; ``"time"`` does the
same over all lines at once; ``"lot"`` puts each lot in the split its stable hash falls in
(sha256 of seed, tenant, plant and lot mapped to [0, 1) and cut at the shares). Pinned
``cuts = {validation = T1, test = T2}`` replace the shares in the time modes (data added later
then lands only in test). Either way a lot is never in two splits. The cut instants are
recorded in the manifest (``job_meta.cuts``, or ``job_meta.cuts_by_line`` per line).

Every row carries ``machine_type``: the registry types of the machines that made the part,
sorted and joined with ``+``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from lake.curation.job import FeatureInfo, JobInputs, JobOutput, LabelInfo
from lake.curation.jobs._exact import (
    SCALE,
    check_sums,
    exact_mean,
    exact_std,
    fixed_point,
    sums,
    tag_scales,
    unsigned_zero,
)
from lake.curation.jobs._frames import (
    MACHINE_TYPE_FEATURE,
    PLANT_KEYS,
    TIME,
    accepted,
    as_us,
    lake_range,
    machine_tags,
    min_max_us,
    pinned_hint,
    plant_shifts,
    streaming_morsels,
    tag_units,
    time_cuts,
    wide_by_tag,
)
from lake.curation.jobs._params import (
    SPLIT_NAMES,
    Params,
    cut_meta,
    cut_points,
    required_splits,
)
from schemas import EventKind

__all__ = ["LABELS", "PARAMETERS", "STATS", "PartQualityParams", "part_buckets", "part_quality"]

JOB: Final = "part_quality"
KEYS: Final = ("tenant", "plant", "line", "part_serial", "event_id")
LABELS: Final = ("result", "defect_code")
LABEL_INFOS: Final = (
    LabelInfo("result", values=("PASS", "FAIL", "REWORK"), min_classes=2, min_class_share=0.01),
    LabelInfo("defect_code", nullable=True),
)
"""``result`` is never null and takes at least two of its three values; ``defect_code`` is null
for a part without defects (every PASS part), by design."""
STATS: Final = ("mean", "max", "std")
PARAMETERS: Final = ("split", "split_by", "seed", "tags", "qualities", "join_bucket", "cuts")
SPLIT_BY: Final = ("line_time", "time", "lot")
_LOT_KEYS: Final = ("tenant", "plant", "lot")
_CONTEXT: Final = ("lot", "process_start", "process_end")
_PART: Final = "_part"
_MACHINE: Final = "_machine"
_TAG: Final = "_tag"
_GROUP: Final = "_group"


@dataclass(frozen=True)
class PartQualityParams:
    """The ``[job]`` table of a part quality spec, with defaults applied.

    Attributes:
        split: split shares (default 0.7 / 0.15 / 0.15).
        split_by: ``"line_time"`` (lot start time per line, default), ``"time"`` (lot start
            time over all lines) or ``"lot"`` (hash of the lot).
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
    cuts: tuple[int, int] | None = None

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> PartQualityParams:
        """Validate the ``[job]`` table (one ``JobParamError`` names every bad key)."""
        p = Params(JOB, values)
        p.check_keys(PARAMETERS)
        parsed = cls(
            split=p.split(),
            split_by=p.choice("split_by", "line_time", SPLIT_BY),
            seed=p.string("seed", ""),
            tags=p.strings("tags", None),
            qualities=p.strings("qualities", ["GOOD"]) or ("GOOD",),
            join_bucket_us=p.duration_us("join_bucket", "5m"),
            cuts=p.cuts(),
        )
        p.done()
        return parsed


def part_quality(inputs: JobInputs) -> JobOutput:
    """Build the part quality splits (the module docstring specifies them)."""
    params = PartQualityParams.parse(inputs.params)
    pairs = machine_tags(JOB, inputs.machines, inputs.tags, params.tags)
    units = tag_units(JOB, inputs.tags, params.tags)
    parts = (
        inputs.source(EventKind.INSPECTION)
        .select(*KEYS, *_CONTEXT, "machines", "result", pl.col("defect_codes").list.first())
        .rename({"defect_codes": "defect_code"})
        .collect()
        .sort(KEYS)
    )
    stats = _window_stats(inputs.source(EventKind.TELEMETRY), pairs, inputs.tags, parts, params)
    context = parts.select(*KEYS, *_CONTEXT).join(
        _machine_types(parts, inputs.machines), on=list(KEYS), how="left"
    )
    rows = wide_by_tag(context, stats, KEYS, list(units), STATS)
    rows = rows.join(parts.select(*KEYS, *LABELS), on=list(KEYS), how="left").sort(KEYS)
    splits, meta = _split(rows, params, inputs.time_shifts)
    meta["row_unit"] = "inspected parts"
    required = required_splits(params.split, params.cuts if params.split_by != "lot" else None)
    return JobOutput(
        splits=splits,
        meta=meta,
        features=[
            MACHINE_TYPE_FEATURE,
            *(
                FeatureInfo(f"{tag}__{stat}", unit, f"{tag}: {stat} over the part's process window")
                for tag, unit in units.items()
                for stat in STATS
            ),
        ],
        label_columns=list(LABELS),
        key_columns=list(KEYS),
        labels=list(LABEL_INFOS),
        required_splits=required,
        split_hints=_hints(rows, splits, required, params, inputs.time_shifts),
    )


def _window_stats(
    telemetry: pl.LazyFrame,
    pairs: pl.DataFrame,
    tags: pl.DataFrame,
    parts: pl.DataFrame,
    params: PartQualityParams,
) -> pl.DataFrame:
    """(part, tag) -> mean/max/std of the readings inside the part's process window.

    A range join done as an equi-join on (machine, time bucket) then an exact filter: each
    part is listed once per bucket its window touches, each reading once, so the work grows
    with the readings, not with readings x parts. Windows are first clipped to the time range
    of the accepted readings (:func:`part_buckets`), so a window of years (a bad clock) costs
    no more buckets than the data spans.

    One streaming pass per plant (a filter on the partition columns tenant and plant, so each
    pass reads only its plant's files): a reading first joins the registered (line, machine,
    tag) triples of its plant, which keeps only registered pairs (matched on the reading's own
    line) and gives it integer ids of its machine and tag and its tag's grid scale; the
    windows are then matched on integers and a group is one integer, ``part * tags + tag``
    (one hash key instead of two). A part belongs to one plant, so every group is complete in
    one pass.
    """
    bucket = f"{params.join_bucket_us}us"
    lo, hi = min_max_us(parts, "process_start", "process_end")
    inside = as_us("event_time").is_between(lo or 0, hi or 0, closed="both")
    chosen = accepted(telemetry, params.qualities).filter(inside)
    with streaming_morsels():
        span = chosen.select(
            pl.col("event_time").min().alias("first"), pl.col("event_time").max().alias("last")
        ).collect(engine="streaming")
    index = parts.select(KEYS).unique().with_row_index(_PART)
    scales = tag_scales(tags).with_row_index(_TAG)
    machine = ["tenant", "plant", "machine"]
    machine_ids = pairs.select(machine).unique().sort(machine).with_row_index(_MACHINE)
    registered = (
        pairs.join(machine_ids, on=machine, how="inner")
        .join(scales, on="tag", how="inner")
        .select(*PLANT_KEYS, "line", "machine", "tag", _MACHINE, _TAG, SCALE)
    )
    windows = (
        part_buckets(parts, params.join_bucket_us, span.row(0))
        .join(index, on=list(KEYS), how="inner")
        .join(machine_ids, on=machine, how="inner")
        .select(*PLANT_KEYS, _PART, _MACHINE, "bucket", "process_start", "process_end")
    )

    width = max(scales.height, 1)
    group = (pl.col(_PART).cast(pl.UInt64) * width + pl.col(_TAG)).alias(_GROUP)

    def aggregate(here: pl.Expr) -> pl.DataFrame:
        rows = chosen.filter(here).select("line", "machine", "tag", "event_time", "value")
        keyed = (
            registered.filter(here)
            .drop(PLANT_KEYS)
            .lazy()
            .join(rows, on=["line", "machine", "tag"])
            .with_columns(pl.col("event_time").dt.truncate(bucket).alias("bucket"))
        )
        return (
            windows.filter(here)
            .drop(PLANT_KEYS)
            .lazy()
            .join(keyed, on=[_MACHINE, "bucket"])
            .filter(pl.col("event_time").is_between("process_start", "process_end", closed="both"))
            .select(group, "value", SCALE)
            .with_columns(*fixed_point("value"))
            .drop(SCALE)
            .group_by(_GROUP)
            .agg(*sums(time=False), pl.col("value").max().alias("max"))
            .collect(engine="streaming")
        )

    plants = windows.select(PLANT_KEYS).unique().sort(PLANT_KEYS).rows()
    with streaming_morsels():
        sums_of = pl.concat(
            [aggregate((pl.col("tenant") == t) & (pl.col("plant") == p)) for t, p in plants]
            or [aggregate(pl.lit(False))]
        )
    part, tag = pl.col(_GROUP) // width, pl.col(_GROUP) % width
    sums_of = sums_of.with_columns(
        part.cast(pl.UInt32).alias(_PART), tag.cast(pl.UInt32).alias(_TAG)
    )
    sums_of = sums_of.join(index, on=_PART, how="inner").join(
        scales.select(_TAG, "tag", SCALE), on=_TAG, how="inner"
    )
    check_sums(sums_of, JOB)
    return sums_of.select(
        *KEYS,
        "tag",
        exact_mean().alias("mean"),
        unsigned_zero("max").alias("max"),
        exact_std().alias("std"),
    )


def part_buckets(
    parts: pl.DataFrame, bucket_us: int, readings_span: tuple[Any, Any]
) -> pl.DataFrame:
    """One row per (part, machine, time bucket) its process window touches *and* readings
    exist in: each window is clipped to ``readings_span`` (first, last reading time; None,
    None when there are none) before it is cut into buckets of ``bucket_us``. So the rows are
    bounded by the parts times the buckets of the data, whatever the windows claim.

    Columns: :data:`KEYS`, ``process_start``, ``process_end``, ``machine``, ``bucket``.
    """
    first, last = readings_span
    columns = [*KEYS, "process_start", "process_end", "machine", "bucket"]
    if first is None or last is None or parts.height == 0:
        return (
            parts.select(*KEYS, "process_start", "process_end")
            .with_columns(
                pl.lit(None, pl.String).alias("machine"), pl.lit(None, TIME).alias("bucket")
            )
            .clear()
            .select(columns)
        )
    bucket = f"{bucket_us}us"
    start = pl.max_horizontal("process_start", pl.lit(first, TIME)).dt.truncate(bucket)
    end = pl.min_horizontal("process_end", pl.lit(last, TIME)).dt.truncate(bucket)
    return (
        parts.select(*KEYS, "process_start", "process_end", pl.col("machines").alias("machine"))
        .explode("machine")
        .unique()
        .with_columns(start.alias("_from"), end.alias("_to"))
        .filter(pl.col("_from") <= pl.col("_to"))
        .with_columns(pl.datetime_ranges("_from", "_to", bucket).alias("bucket"))
        .explode("bucket")
        .select(columns)
    )


def lot_share(seed: str, tenant: str, plant: str, lot: str) -> float:
    """Where a lot falls in [0, 1): a stable hash, the same on every machine and version."""
    digest = hashlib.sha256("\x1f".join((seed, tenant, plant, lot)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _machine_types(parts: pl.DataFrame, machines: pl.DataFrame) -> pl.DataFrame:
    """KEYS -> ``machine_type``: the part's machines' registry types, sorted, ``+``-joined."""
    types = machines.select("tenant", "plant", "machine", "machine_type").unique(
        subset=["tenant", "plant", "machine"]
    )
    return (
        parts.select(*KEYS, pl.col("machines").alias("machine"))
        .explode("machine")
        .join(types, on=["tenant", "plant", "machine"], how="left")
        .group_by(KEYS)
        .agg(pl.col("machine_type").drop_nulls().unique().sort().str.join("+"))
        .with_columns(
            pl.when(pl.col("machine_type") != "").then(pl.col("machine_type")).alias("machine_type")
        )
    )


def _split(
    rows: pl.DataFrame, params: PartQualityParams, shifts: pl.DataFrame | None
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """The splits and the manifest facts about their cuts.

    Pinned cuts are in lake time: a lot's plant's time shift (``shifts``) is added to them,
    whatever ``split_by`` time mode, so every line is cut at the same real instant."""
    first, second = cut_points(params.split)
    lots = (
        rows.group_by(*_LOT_KEYS)
        .agg(pl.col("line").min(), as_us("process_start").min().alias("start_us"))
        .sort(_LOT_KEYS)
    )
    meta: dict[str, Any]
    if params.split_by == "lot":
        position = pl.Series(
            "position",
            [lot_share(params.seed, *lot) for lot in lots.select(_LOT_KEYS).iter_rows()],
            dtype=pl.Float64,
        )
        lots = lots.with_columns(position, pl.lit(first).alias("t1"), pl.lit(second).alias("t2"))
        meta = {"split_by": "lot", "seed": params.seed}
    elif params.cuts is not None:
        shift = plant_shifts(lots.select(PLANT_KEYS), shifts).get_column("shift_us")
        lots = lots.with_columns(
            pl.col("start_us").cast(pl.Float64).alias("position"),
            (shift + params.cuts[0]).cast(pl.Float64).alias("t1"),
            (shift + params.cuts[1]).cast(pl.Float64).alias("t2"),
        )
        meta = {**cut_meta(params.cuts, pinned=True), "cuts_clock": "lake"}
        meta["split_by"] = params.split_by
    else:
        per_line = params.split_by == "line_time"
        group = ["tenant", "plant", "line"] if per_line else []
        bounds: list[dict[str, Any]] = []
        for key, frame in _groups(lots, group):
            lo, hi = min_max_us(frame, "start_us", "start_us") if frame.height else (None, None)
            cuts = time_cuts(lo, hi, (first, second), 1)
            bounds.append({**key, "t1": float(cuts[0]), "t2": float(cuts[1])})
        table = pl.DataFrame(
            bounds, schema={**dict.fromkeys(group, pl.String), "t1": pl.Float64, "t2": pl.Float64}
        )
        lots = lots.with_columns(pl.col("start_us").cast(pl.Float64).alias("position"))
        lots = lots.join(table, on=group, how="left") if group else lots.join(table, how="cross")
        meta = {**_time_meta(bounds, group), "cuts_clock": "set", "split_by": params.split_by}
    which = (
        pl.when(pl.col("position") < pl.col("t1"))
        .then(pl.lit("train"))
        .when(pl.col("position") < pl.col("t2"))
        .then(pl.lit("validation"))
        .otherwise(pl.lit("test"))
    )
    assigned = rows.join(
        lots.select(*_LOT_KEYS, which.alias("_split")), on=list(_LOT_KEYS), how="left"
    ).sort(KEYS)
    splits = {
        name: assigned.filter(pl.col("_split") == name).drop("_split") for name in SPLIT_NAMES
    }
    return splits, meta


def _groups(lots: pl.DataFrame, group: list[str]) -> list[tuple[dict[str, Any], pl.DataFrame]]:
    if not group:
        return [({}, lots)]
    out = []
    for key, frame in lots.group_by(group, maintain_order=False):
        out.append((dict(zip(group, key, strict=True)), frame))
    return sorted(out, key=lambda item: tuple(item[0].values()))


def _time_meta(bounds: list[dict[str, Any]], group: list[str]) -> dict[str, Any]:
    if not group:
        cuts = (int(bounds[0]["t1"]), int(bounds[0]["t2"])) if bounds else None
        return cut_meta(cuts, pinned=False)
    by_line = [
        {
            **{k: b[k] for k in group},
            **cut_meta((int(b["t1"]), int(b["t2"])), pinned=False)["cuts"],
        }
        for b in bounds
    ]
    return {"cuts_by_line": by_line, "cuts_pinned": False}


def _hints(
    rows: pl.DataFrame,
    splits: Mapping[str, pl.DataFrame],
    required: tuple[str, ...],
    params: PartQualityParams,
    shifts: pl.DataFrame | None,
) -> dict[str, str]:
    """Why each required split is empty: the lots it would need."""
    empty = [s for s in required if splits[s].height == 0]
    if not empty or rows.height == 0:
        return {}
    lots = rows.select(_LOT_KEYS).unique().height
    out: dict[str, str] = {}
    for name in empty:
        if params.split_by == "lot":
            out[name] = (
                f"no lot's hash fell in its share {params.split[name]:g} ({lots} lots in all; "
                f"a lot is never split): add lots, raise split.{name} or change the seed"
            )
        elif params.cuts is not None:
            shift = plant_shifts(rows.select(PLANT_KEYS), shifts).get_column("shift_us")
            starts = rows.with_columns(shift)
            where = lake_range(starts, "process_start", "process_start", "shift_us")
            out[name] = pinned_hint(name, params.cuts, "takes the lots that start in it", where)
        else:
            out[name] = (
                f"no lot starts in its share {params.split[name]:g} of a line's range of lot "
                f"starts ({lots} lots in all; a lot is never split): add data, or raise "
                f'split.{name}, or set split_by = "lot"'
            )
    return out
