"""The remaining-useful-life job on small hand-made fleets: labels, windows, splits, score."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from lake.curation.job import JobInputs
from lake.curation.jobs import JobParamError, remaining_useful_life
from schemas import EventKind

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LINES = {"e1": "train", "e2": "train", "e3": "train", "e4": "train", "r1": "test"}


def _inputs(
    cycles: Mapping[str, int],
    params: Mapping[str, Any],
    *,
    skip: Sequence[tuple[str, int]] = (),
    reporting: Sequence[str] = ("temp", "flat"),
) -> JobInputs:
    """Machines with ``cycles[m]`` one-minute cycles reporting ``reporting``: ``temp`` = 10 * cycle,
    ``flat`` = 1 (the registry lists both)."""
    rows = []
    for machine, count in cycles.items():
        for cycle in range(1, count + 1):
            if (machine, cycle) in skip:
                continue
            at = T0 + timedelta(minutes=cycle - 1)
            for tag, value in (("temp", 10.0 * cycle), ("flat", 1.0)):
                if tag not in reporting:
                    continue
                rows.append(
                    {
                        "tenant": "ref",
                        "plant": "p",
                        "line": LINES[machine],
                        "machine": machine,
                        "event_time": at,
                        "tag": tag,
                        "value": value,
                        "quality": "GOOD",
                    }
                )
    telemetry = pl.DataFrame(rows).with_columns(pl.col("event_time").dt.cast_time_unit("us"))
    machines = pl.DataFrame(
        {
            "tenant": ["ref"] * len(cycles),
            "plant": ["p"] * len(cycles),
            "line": [LINES[m] for m in cycles],
            "machine": list(cycles),
            "machine_type": ["engine"] * len(cycles),
        }
    )
    tags = pl.DataFrame(
        {
            "machine_type": ["engine", "engine"],
            "tag": ["temp", "flat"],
            "unit": ["degR", "psia"],
            "min": [0.0, 0.0],
            "max": [1e6, 10.0],
            "nominal": [1.0, 1.0],
        }
    )
    return JobInputs({EventKind.TELEMETRY: telemetry.lazy()}, machines, tags, dict(params))


BASE = {"cycle": "1m", "window": 3, "running_lines": ["test"]}
ALL_TRAIN = {"train": 1.0, "validation": 0.0, "test": 0.0}


def test_label_counts_cycles_to_the_last_one_and_is_capped() -> None:
    out = remaining_useful_life(_inputs({"e1": 6}, {**BASE, "cap": 3, "split": ALL_TRAIN}))
    train = out.splits["train"]
    assert train.get_column("cycle").to_list() == [1, 2, 3, 4, 5, 6]
    assert train.get_column("rul_cycles").to_list() == [3, 3, 3, 2, 1, 0]
    assert train.get_column("rul_cycles_uncapped").to_list() == [5, 4, 3, 2, 1, 0]
    assert train.get_column("rul_s").to_list() == [300.0, 240.0, 180.0, 120.0, 60.0, 0.0]
    assert out.label_columns == ["rul_cycles"]
    label = json.loads(out.files["label.json"])
    assert label["cap_cycles"] == 3
    assert label["window_cycles"] == 3
    assert label["tags"] == {"flat": "psia", "temp": "degR"}


def test_trailing_window_statistics_see_only_the_last_window_cycles() -> None:
    out = remaining_useful_life(_inputs({"e1": 5}, {**BASE, "split": ALL_TRAIN}))
    row = out.splits["train"].filter(pl.col("cycle") == 4).row(0, named=True)
    assert row["temp__mean"] == pytest.approx(30.0)  # cycles 2, 3, 4
    assert row["temp__min"] == 20.0
    assert row["temp__max"] == 40.0
    assert row["temp__last"] == 40.0
    assert row["temp__std"] == pytest.approx(10.0)
    assert row["temp__slope"] == pytest.approx(10.0)
    first = out.splits["train"].row(0, named=True)
    assert (first["temp__std"], first["temp__slope"]) == (0.0, 0.0)
    assert (first["flat__mean"], first["flat__std"], first["flat__slope"]) == (1.0, 0.0, 0.0)
    units = {f.name: f.unit for f in out.features}
    assert units["temp__slope"] == "degR/cycle"
    assert units["temp__mean"] == "degR"


def test_a_missing_cycle_keeps_the_window_in_cycles() -> None:
    out = remaining_useful_life(_inputs({"e1": 5}, {**BASE, "split": ALL_TRAIN}, skip=[("e1", 3)]))
    train = out.splits["train"]
    assert train.get_column("cycle").to_list() == [1, 2, 4, 5]
    row = train.filter(pl.col("cycle") == 4).row(0, named=True)
    assert row["temp__mean"] == pytest.approx(30.0)  # cycles 2 and 4 only
    assert row["rul_cycles"] == 1


def test_running_machines_give_one_unlabelled_score_row_each() -> None:
    out = remaining_useful_life(_inputs({"e1": 5, "r1": 4}, {**BASE, "split": ALL_TRAIN}))
    score = out.splits["score"]
    assert score.get_column("machine").to_list() == ["r1"]
    assert score.get_column("cycle").to_list() == [4]
    assert score.get_column("rul_cycles").to_list() == [None]
    assert score.get_column("temp__mean").to_list() == [pytest.approx(30.0)]
    assert out.labels[0].null_splits == ("score",)  # null there only: checked per split
    assert not out.labels[0].nullable
    assert out.splits["train"].get_column("rul_cycles").null_count() == 0
    assert "r1" not in out.splits["train"].get_column("machine").to_list()
    for frame in out.splits.values():  # after the keys, as in the other reference sets
        assert frame.columns[5] == "machine_type"
        assert frame.get_column("machine_type").to_list() == ["engine"] * frame.height


def test_machines_are_split_whole_and_deterministically() -> None:
    cycles = {"e1": 4, "e2": 5, "e3": 6, "e4": 7}
    params = {**BASE, "split": {"train": 0.5, "validation": 0.25, "test": 0.25}}
    out = remaining_useful_life(_inputs(cycles, params))
    owners: dict[str, str] = {}
    for name in ("train", "validation", "test"):
        for machine in out.splits[name].get_column("machine").unique().to_list():
            assert machine not in owners, f"{machine} in {owners.get(machine)} and {name}"
            owners[machine] = name
    assert set(owners) == set(cycles)
    again = remaining_useful_life(_inputs(cycles, params))
    for name, frame in out.splits.items():
        assert frame.equals(again.splits[name]), name


def test_unknown_parameters_and_stats_are_rejected() -> None:
    with pytest.raises(JobParamError, match="windw"):
        remaining_useful_life(_inputs({"e1": 3}, {**BASE, "windw": 3}))
    with pytest.raises(JobParamError, match="stats"):
        remaining_useful_life(_inputs({"e1": 3}, {**BASE, "stats": ["median"]}))


def test_the_feature_columns_follow_the_registry_not_the_rows() -> None:
    """A tag nobody reports and a constant one keep their columns: the column set must not
    tell a partner who contributes (docs/SECURITY.md, C8b)."""
    both = remaining_useful_life(_inputs({"e1": 4}, {**BASE, "split": ALL_TRAIN}))
    only_temp = remaining_useful_life(
        _inputs({"e1": 4}, {**BASE, "split": ALL_TRAIN}, reporting=("temp",))
    )

    assert [f.name for f in both.features] == [f.name for f in only_temp.features]
    for name, frame in both.splits.items():
        assert frame.schema == only_temp.splits[name].schema, name
    assert only_temp.splits["train"].get_column("flat__mean").null_count() == 4
    assert json.loads(only_temp.files["label.json"])["tags"] == {"flat": "psia", "temp": "degR"}
    with pytest.raises(JobParamError, match=r"min_distinct.*removed.*'tags'"):
        remaining_useful_life(_inputs({"e1": 3}, {**BASE, "min_distinct": 2}))
