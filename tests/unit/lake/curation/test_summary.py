"""What ``maxlake datasets show`` prints for a version (lake.curation.summary)."""

from __future__ import annotations

from typing import Any

from lake.curation.manifest import Manifest, SourceInfo, SplitInfo
from lake.curation.summary import one_line, summary_lines
from lake.curation.warnings import warning_lines


def manifest(**changes: Any) -> Manifest:
    """A small RUL-like manifest; ``changes`` replace fields."""
    fields: dict[str, Any] = {
        "name": "rul",
        "version": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "status": "active",
        "spec": {"name": "rul", "purpose": "remaining-useful-life-research"},
        "spec_hash": "s",
        "job": "remaining_useful_life",
        "sources": {"telemetry": SourceInfo("silver/telemetry", 3, False, 10)},
        "splits": {
            "train": SplitInfo(
                "train.parquet",
                16_344,
                "f",
                "c",
                {"rul_cycles": {"min": 0, "max": 125, "mean": 86.45374449339207, "nulls": 0}},
            )
        },
        "features": [{"name": "T30__mean", "unit": "degR", "description": "d"}],
        "label_columns": ["rul_cycles"],
        "key_columns": ["machine", "cycle"],
        "files": {},
        "quality": {"success": True},
        "content_hash": "h",
        "registry_hash": "r",
        "maxlake_version": "0.1.0",
        "label_contracts": [{"column": "rul_cycles", "unit": "cycles"}],
    }
    fields.update(changes)
    return Manifest(**fields)


def test_numeric_label_statistics_are_rounded_and_carry_the_unit() -> None:
    lines = summary_lines(manifest())
    split = next(line for line in lines if "train" in line and "rows" in line)
    assert split.endswith("rul_cycles [0 .. 125 cycles, mean 86.5 cycles]")


def test_a_label_null_by_design_in_a_split_says_so() -> None:
    score = SplitInfo("score.parquet", 3, "f", "c", {"rul_cycles": {"counts": {}, "nulls": 3}})
    contracts = [{"column": "rul_cycles", "unit": "cycles", "null_splits": ["score"]}]
    lines = summary_lines(manifest(splits={"score": score}, label_contracts=contracts))
    assert any(line.endswith("rul_cycles null by design in score (3 rows)") for line in lines)


def test_a_label_without_a_declared_unit_is_rounded_without_one() -> None:
    labels = {"r": {"min": 0.000123456, "max": 12_345.678, "mean": 0.5, "nulls": 2}}
    split = SplitInfo("train.parquet", 3, "f", "c", labels)
    lines = summary_lines(manifest(splits={"train": split}, label_contracts=[]))
    assert any(line.endswith("r [0.000123 .. 12,346, mean 0.500] nulls 2") for line in lines)


def test_the_one_line_summary_flags_a_feature_schema_change() -> None:
    change = {
        "previous_version": 1,
        "changed": True,
        "added": ["a__mean", "b__mean"],
        "removed": [],
    }
    assert one_line(manifest(version=2, schema_change=change)).endswith(
        "  schema changed since v1: +2/-0 feature columns"
    )
    same = {"previous_version": 1, "changed": False}
    assert "schema" not in one_line(manifest(version=2, schema_change=same))


def test_a_warning_is_shown_in_the_words_of_the_build_and_the_demo() -> None:
    name = "split_label_classes:validation:failure_within_h"
    quality = {
        "success": True,
        "warnings": [name],
        "details": [f"{name}: split 'validation' holds 1 class(es) of failure_within_h"],
        "results": [{"name": name, "observed_value": {"0": 112}}],
    }
    shown = manifest(quality=quality, job_meta={"row_unit": "machine windows of 15 min"})

    lines = summary_lines(shown)

    assert not any("class(es)" in line for line in lines), lines
    warned = [line.removeprefix("  warning    ") for line in lines if "warning  " in line]
    assert warned == warning_lines(shown)
    assert warned[0].startswith(
        "the validation split has a single class of the label failure_within_h "
        "(all 112 machine windows of 15 min are 0)"
    )


def test_show_says_what_a_row_is_when_the_job_says() -> None:
    unit = "steps of 10 s (60 per sequence)"
    assert f"  rows are   {unit}" in summary_lines(manifest(job_meta={"row_unit": unit}))
    assert not any(line.startswith("  rows are") for line in summary_lines(manifest()))
