"""``datasets build`` and ``make demo`` show every output-check warning, in words, with its id.

A data engineer reads what failed, on which data and what to do, and can still grep the check
id; a tag's all-null columns are one line, never a warning left out.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import polars as pl
import pytest

from lake.curation import FeatureInfo, JobInputs, JobOutput, LabelInfo, parse_spec, show
from lake.curation.warnings import warning_lines
from maxlake.cli import datasets_run
from maxlake.cli.demo_sets import DemoSet, curated_lines, ensure_demo_contracts
from maxlake.settings import Settings
from tests.unit.lake.curation.test_build_helpers import seeded_lake, tag_means
from tests.unit.lake.curation.test_summary import manifest as summary_manifest

_NULL_TAG = "gearbox_temp"
_STATS = ("mean", "std", "min", "max", "last", "slope", "count")


def with_null_tag(inputs: JobInputs) -> JobOutput:
    """:func:`tag_means` plus seven all-null columns of a tag no machine sends, and a label
    with one class in ``test`` (every row 0)."""
    out = tag_means(inputs)
    nulls = [pl.lit(None, dtype=pl.Float64).alias(f"{_NULL_TAG}__{s}") for s in _STATS]
    splits = {
        name: rows.with_columns(*nulls, pl.lit(0, dtype=pl.Int8).alias("hot"))
        if name == "test"
        else rows.with_columns(*nulls)
        for name, rows in out.splits.items()
    }
    features = [
        *out.features,
        *(FeatureInfo(f"{_NULL_TAG}__{s}", "degC", s) for s in _STATS),
    ]
    label = LabelInfo("hot", values=(0, 1), min_classes=2)
    return dataclasses.replace(
        out,
        splits=splits,
        features=features,
        labels=[label],
        required_splits=("train", "test"),
        meta={"row_unit": "machine tags"},
    )


def test_datasets_build_prints_every_warning_in_words_with_its_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    seeded_lake(root)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    settings = Settings()
    purpose = "predictive-maintenance-research"
    ensure_demo_contracts(settings, [purpose], say=lambda _: None)
    job = f"{__name__}:{with_null_tag.__name__}"
    spec = parse_spec(
        {"name": "spindle", "purpose": purpose, "job": {"name": job, "threshold": -6}}
    )
    args = argparse.Namespace(
        registry=None,
        allow_failed_quality=False,
        reset_withheld=[],
        require_same_columns=False,
        publish_identical=False,
    )

    assert datasets_run.build(args, spec) == 0

    manifest = show("spindle", 1, lake_root=root)
    ids = [str(w) for w in manifest.quality["warnings"]]
    assert len(ids) == 8, ids  # 7 all-null columns and the one-class test split
    printed = [
        line.removeprefix("datasets: warning: ")
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("datasets: warning: ")
    ]
    assert printed == warning_lines(manifest)
    assert len(printed) == 2, printed
    nulls, one_class = sorted(printed)
    assert nulls.startswith("7 feature columns are null in every row of every split: ")
    assert f"{_NULL_TAG} (7 columns)" in nulls
    assert f"[feature_not_all_null:{_NULL_TAG}__mean, ...]" in nulls
    assert one_class.startswith("the test split has a single class of the label hot (all ")
    assert "machine tags are 0)" in one_class
    assert "AUC" in one_class
    assert one_class.endswith("[split_label_classes:test:hot]")
    assert "datasets: check split_label_classes" not in capsys.readouterr().err
    assert datasets_run.list_(argparse.Namespace(json=False)) == 0
    listed = capsys.readouterr().out
    assert (
        "passed with warnings (served; `maxlake datasets show NAME@V` lists them): spindle@v1 (8)"
        in listed
    )


def test_an_imbalanced_label_and_an_unknown_advisory_check_are_shown_in_words() -> None:
    manifest = dataclasses.replace(
        summary_manifest(),
        quality={
            "success": True,
            "warnings": ["label_balance:hot", "custom_check:x"],
            "results": [
                {"name": "label_balance:hot", "observed_value": {"0": 0.97, "1": 0.03}},
                {"name": "custom_check:x", "detail": "x drifted"},
            ],
        },
    )
    lines = warning_lines(manifest)
    assert lines[0].startswith("the label hot is imbalanced (0 97.0%, 1 3.0% of the labelled")
    assert lines[0].endswith("[label_balance:hot]")
    assert lines[1] == "x drifted [custom_check:x]"


def test_the_demo_prints_each_warning_under_its_set_in_words() -> None:
    one_class = (
        "the validation split has a single class of the label failure_within_h (all 112 "
        "machine windows of 15 min are 0): ... [split_label_classes:validation:failure_within_h]"
    )
    built = [
        DemoSet(
            "pm-demo",
            "pm-demo@v1: train 809, validation 112, test 207 windows  1 warning",
            1,
            (one_class,),
        ),
        DemoSet("pq-demo", "pq-demo@v1: train 280, validation 57, test 72 inspected parts", 1),
    ]

    lines = curated_lines(built)

    assert lines[1:4] == [
        "  pm-demo@v1: train 809, validation 112, test 207 windows  1 warning",
        f"    warning: {one_class}",
        "  pq-demo@v1: train 280, validation 57, test 72 inspected parts",
    ]
    assert lines[4].startswith("  (published anyway: a warning never stops a set.")
