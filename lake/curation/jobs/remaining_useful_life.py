"""Remaining useful life (RUL): trailing-window features per machine cycle, labelled with the
cycles (and time) left until the machine's last observed cycle.

Cycles: a machine reports once per cycle of fixed duration ``cycle``; a reading's cycle number
is ``round((event_time - first event_time of the machine) / cycle) + 1``.

Machines: a machine on one of ``running_lines`` is still running (its end is unknown); every
other machine ran to failure, so its last observed cycle is its end of life.

Rows: one per cycle of each run-to-failure machine, from cycle ``min_cycles`` on; plus, in the
``score`` split, the last cycle of each running machine (its label is null: its true RUL is
ground truth kept outside the set, for example ``<lake root>/reference/cmapss/<subset>/
ground_truth.csv``).

Features (per tag, ``<tag>__<stat>``), over the trailing window of ``window`` cycles ending at
the row's cycle (``(t - window x cycle, t]``; fewer cycles at the start of a run): mean, std
(sample; 0 for a single value), min, max, last and slope (least squares over the cycle number,
unit per cycle; 0 for a single value). Tags: every tag of every registry machine type the
spec selects (``filters.machine_types``, default all; or ``tags``), whichever machines
contribute rows: a tag without readings gives all-null columns and a constant one constant
columns (a model ignores both). The column set never depends on
the rows, so under sharing contracts it does not say whose machines a set holds or that a
company left (list the informative tags in ``tags`` to leave the others out).

Every row carries ``machine_type`` (from the registry) after the key columns.

Labels: ``rul_cycles`` = last cycle - cycle, capped at ``cap`` when ``cap`` > 0 (the piecewise-
linear target of the literature: constant ``cap`` early in life, then falling to 0); also, not
as labels, ``rul_cycles_uncapped`` and ``rul_s`` (seconds until the last observed event).
The label is never null in train, validation and test (checked per split at build time) and
always null in ``score``.

Split by machine: each run-to-failure machine goes whole into train, validation or test by a
stable hash (sha256 of ``seed``, tenant, plant, line and machine mapped to [0, 1) and cut at
the ``split`` shares), so no machine is in two splits. ``label.json`` records the label
definition, cap, window, cycle, tags and units.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from lake.curation.job import FeatureInfo, JobInputs, JobOutput, LabelInfo
from lake.curation.jobs._frames import (
    MACHINE_KEYS,
    MACHINE_TYPE_FEATURE,
    json_bytes,
    list_mean,
    machine_tags,
    readings,
    tag_units,
    value_list,
    with_machine_type,
)
from lake.curation.jobs._params import SPLIT_NAMES, Params, cut_points, required_splits
from lake.curation.jobs.errors import JobInputError
from maxlake.errors import did_you_mean
from schemas import EventKind

__all__ = ["LABEL", "PARAMETERS", "STATS", "RulParams", "remaining_useful_life"]

JOB: Final = "remaining_useful_life"
LABEL: Final = "rul_cycles"
SCORE_SPLIT: Final = "score"
STATS: Final = ("mean", "std", "min", "max", "last", "slope")
KEYS: Final = (*MACHINE_KEYS, "cycle")
PARAMETERS: Final = (
    "cycle",
    "window",
    "min_cycles",
    "cap",
    "stats",
    "tags",
    "running_lines",
    "split",
    "seed",
    "qualities",
)
_US: Final = 1_000_000
_PER_US: Final = 1.0 / _US
"""Seconds per microsecond: multiplied, not divided by ``_US`` (polars divides a column by a
scalar through the reciprocal, but a one-row column exactly; see predictive_maintenance)."""


@dataclass(frozen=True)
class RulParams:
    """The ``[job]`` table of a remaining-useful-life spec, with defaults applied.

    Attributes:
        cycle_us: duration of one cycle (``cycle``, default ``"10m"``).
        window: trailing window in cycles (default 30).
        min_cycles: first cycle that becomes a row (default 1).
        cap: label cap in cycles; 0 = uncapped (default 0).
        stats: statistics per tag (default all of :data:`STATS`).
        tags: restrict to these tags (default: every registry tag of the machines).
        running_lines: lines whose machines are still running (default none).
        split: shares of train/validation/test over run-to-failure machines (0.7/0.15/0.15).
        seed: salt of the machine hash (default ``""``).
        qualities: reading quality flags used (default ``["GOOD"]``).
    """

    cycle_us: int
    window: int
    min_cycles: int
    cap: int
    stats: tuple[str, ...]
    tags: tuple[str, ...] | None
    running_lines: tuple[str, ...]
    split: Mapping[str, float]
    seed: str
    qualities: tuple[str, ...]

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> RulParams:
        """Validate the ``[job]`` table (one ``JobParamError`` names every bad key)."""
        p = Params(JOB, {k: v for k, v in values.items() if k != "min_distinct"})
        if "min_distinct" in values:
            p.problem(
                "min_distinct",
                "was removed: the feature columns follow the registry, not the rows (a choice "
                "made on the rows tells partners who contributes); list the informative tags "
                "in 'tags' instead",
            )
        p.check_keys(PARAMETERS)
        stats = p.strings("stats", list(STATS)) or STATS
        for stat in sorted(set(stats) - set(STATS)):
            p.problem(
                "stats",
                f"{stat!r} is not an option{did_you_mean(stat, list(STATS))} "
                f"(valid: {', '.join(STATS)})",
            )
        parsed = cls(
            cycle_us=p.duration_us("cycle", "10m"),
            window=p.integer("window", 30, minimum=1),
            min_cycles=p.integer("min_cycles", 1, minimum=1),
            cap=p.integer("cap", 0, minimum=0),
            stats=tuple(s for s in STATS if s in stats),
            tags=p.strings("tags", None),
            running_lines=p.strings("running_lines", []) or (),
            split=p.split(),
            seed=p.string("seed", ""),
            qualities=p.strings("qualities", ["GOOD"]) or ("GOOD",),
        )
        p.done()
        return parsed


def remaining_useful_life(inputs: JobInputs) -> JobOutput:
    """Build the RUL splits (the module docstring specifies them)."""
    params = RulParams.parse(inputs.params)
    pairs = machine_tags(JOB, inputs.machines, inputs.tags, params.tags)
    wide = _cycles(_wide(inputs.source(EventKind.TELEMETRY), pairs, params), params)
    if wide.height == 0:
        raise JobInputError(JOB, "no telemetry of the selected machines and tags")
    running = pl.col("line").is_in(list(params.running_lines))
    units = tag_units(JOB, inputs.tags, params.tags)
    absent = [tag for tag in units if tag not in wide.columns]
    wide = wide.with_columns(pl.lit(None, pl.Float64).alias(tag) for tag in absent)
    rows = _label(_features(wide, list(units), params), params)
    rows = with_machine_type(rows, inputs.machines, len(KEYS))
    splits = _split(rows.filter(~running & (pl.col("cycle") >= params.min_cycles)), params)
    splits[SCORE_SPLIT] = (
        rows.filter(running)
        .filter(pl.col("cycle") == pl.col("cycle").max().over(MACHINE_KEYS))
        .with_columns(
            pl.lit(None, pl.Int32).alias(LABEL),
            pl.lit(None, pl.Int32).alias(f"{LABEL}_uncapped"),
            pl.lit(None, pl.Float64).alias("rul_s"),
        )
    )
    features = [MACHINE_TYPE_FEATURE, *_feature_info(units, params)]
    return JobOutput(
        splits={name: frame.sort(KEYS) for name, frame in splits.items()},
        features=features,
        label_columns=[LABEL],
        key_columns=list(KEYS),
        files={"label.json": json_bytes(_label_card(units, params))},
        labels=[
            LabelInfo(
                LABEL,
                null_splits=(SCORE_SPLIT,),
                min_value=0,
                max_value=float(params.cap) if params.cap else None,
                unit="cycles",
            )
        ],
        meta={"row_unit": "machine cycles"},
        required_splits=required_splits(params.split, None),
        split_hints=_hints(splits, params),
    )


def _wide(telemetry: pl.LazyFrame, pairs: pl.DataFrame, params: RulParams) -> pl.DataFrame:
    """One row per (machine, event_time), one column per tag (mean of duplicates)."""
    long = (
        readings(telemetry, pairs, params.qualities)
        .group_by(*MACHINE_KEYS, "event_time", "tag")
        .agg(value_list("value"))
        .with_columns(list_mean("value").alias("value"))
        .collect()
    )
    tags = sorted(set(long["tag"].to_list()))
    wide = long.pivot(on="tag", index=[*MACHINE_KEYS, "event_time"], values="value")
    return wide.select(*MACHINE_KEYS, "event_time", *tags).sort(*MACHINE_KEYS, "event_time")


def _cycles(wide: pl.DataFrame, params: RulParams) -> pl.DataFrame:
    since = pl.col("event_time") - pl.col("event_time").min().over(MACHINE_KEYS)
    # Integer rounding (half up): a float division by a scalar is not bit-stable in polars.
    twice = since.dt.total_microseconds() * 2 + params.cycle_us
    cycle = (twice // (2 * params.cycle_us)).cast(pl.Int32) + 1
    return wide.with_columns(cycle.alias("cycle"))


def _features(wide: pl.DataFrame, tags: list[str], params: RulParams) -> pl.DataFrame:
    span = f"{params.window * params.cycle_us}us"
    x = pl.col("cycle").cast(pl.Float64)

    def roll(expr: pl.Expr, how: str) -> pl.Expr:
        method = getattr(expr, f"rolling_{how}_by")
        out: pl.Expr = method("event_time", window_size=span, min_samples=1)
        return out.over(MACHINE_KEYS)

    columns: list[pl.Expr] = []
    for tag in tags:
        y = pl.col(tag)
        present = y.is_not_null().cast(pl.Float64)
        xs = pl.when(y.is_not_null()).then(x)
        n = roll(present, "sum")
        stats: dict[str, pl.Expr] = {
            "mean": roll(y, "mean"),
            "std": roll(y, "std").fill_null(pl.when(n >= 1).then(0.0)),
            "min": roll(y, "min"),
            "max": roll(y, "max"),
            "last": y.forward_fill().over(MACHINE_KEYS),
        }
        sx, sy = roll(xs, "sum"), roll(y, "sum")
        sxy, sxx = roll(xs * y, "sum"), roll(xs * xs, "sum")
        denominator = n * sxx - sx * sx
        stats["slope"] = (
            pl.when(denominator > 0).then((n * sxy - sx * sy) / denominator).when(n >= 1).then(0.0)
        )
        columns += [stats[s].alias(f"{tag}__{s}") for s in params.stats]
    return wide.select(*MACHINE_KEYS, "cycle", "event_time", *columns)


def _label(rows: pl.DataFrame, params: RulParams) -> pl.DataFrame:
    last_cycle = pl.col("cycle").max().over(MACHINE_KEYS)
    last_time = pl.col("event_time").max().over(MACHINE_KEYS)
    uncapped = (last_cycle - pl.col("cycle")).cast(pl.Int32)
    capped = pl.min_horizontal(uncapped, pl.lit(params.cap, pl.Int32)) if params.cap else uncapped
    return rows.with_columns(
        capped.alias(LABEL),
        uncapped.alias(f"{LABEL}_uncapped"),
        ((last_time - pl.col("event_time")).dt.total_microseconds() * _PER_US).alias("rul_s"),
    )


def _split(rows: pl.DataFrame, params: RulParams) -> dict[str, pl.DataFrame]:
    machines = rows.select(*MACHINE_KEYS).unique().sort(MACHINE_KEYS)
    shares = [_share(params.seed, *(str(v) for v in key)) for key in machines.iter_rows()]
    first, second = cut_points(params.split)
    machines = machines.with_columns(pl.Series("_share", shares, pl.Float64))
    bounds = {
        "train": pl.col("_share") < first,
        "validation": (pl.col("_share") >= first) & (pl.col("_share") < second),
        "test": pl.col("_share") >= second,
    }
    out = {}
    for name in SPLIT_NAMES:
        chosen = machines.filter(bounds[name]).drop("_share")
        out[name] = rows.join(chosen, on=list(MACHINE_KEYS), how="semi")
    return out


def _hints(splits: Mapping[str, pl.DataFrame], params: RulParams) -> dict[str, str]:
    """Why each required split is empty: the machines it would need."""
    learned = [splits[s] for s in SPLIT_NAMES]
    machines = pl.concat([f.select(MACHINE_KEYS) for f in learned]).unique().height
    return {
        name: f"no run-to-failure machine's hash fell in its share {params.split[name]:g} "
        f"({machines} machines in all; a machine is never split): add machines, raise "
        f"split.{name} or change the seed"
        for name in required_splits(params.split, None)
        if splits[name].height == 0 and machines
    }


def _share(seed: str, *key: str) -> float:
    """Where a machine falls in [0, 1): a stable hash, the same on every machine and version."""
    digest = hashlib.sha256("\x1f".join((seed, *key)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _feature_info(units: Mapping[str, str], params: RulParams) -> list[FeatureInfo]:
    window = f"the last {params.window} cycles"
    described = {
        "mean": ("{u}", f"mean over {window}"),
        "std": ("{u}", f"sample standard deviation over {window} (0 for one value)"),
        "min": ("{u}", f"smallest value over {window}"),
        "max": ("{u}", f"largest value over {window}"),
        "last": ("{u}", "value at this cycle (latest reading)"),
        "slope": ("{u}/cycle", f"least-squares slope over the cycle number over {window}"),
    }
    return [
        FeatureInfo(
            f"{tag}__{stat}",
            described[stat][0].format(u=unit),
            f"{tag}: {described[stat][1]}",
        )
        for tag, unit in units.items()
        for stat in params.stats
    ]


def _label_card(units: Mapping[str, str], params: RulParams) -> dict[str, Any]:
    return {
        "label": LABEL,
        "definition": (
            "cycles from this cycle to the machine's last observed cycle (run-to-failure "
            "machines: its failure)"
            + (f", capped at {params.cap} cycles (piecewise-linear target)" if params.cap else "")
        ),
        "unit": "cycles",
        "cap_cycles": params.cap or None,
        "uncapped_column": f"{LABEL}_uncapped",
        "time_column": {"name": "rul_s", "unit": "s"},
        "cycle_seconds": params.cycle_us / _US,
        "window_cycles": params.window,
        "min_cycles": params.min_cycles,
        "running_lines": list(params.running_lines),
        "score_split": (
            "last cycle of each running machine; label null (its true RUL is ground truth "
            "kept outside the dataset)"
        ),
        "split": dict(params.split),
        "tags": dict(units),
        "stats": list(params.stats),
    }
