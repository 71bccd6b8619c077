"""Output checks derived from each job's declared labels."""

from __future__ import annotations

import polars as pl

from lake.curation import LabelInfo, check_output
from lake.curation.jobs.part_quality import LABEL_INFOS
from lake.curation.output_checks import QualityReport


def _check(frame: pl.DataFrame, *labels: LabelInfo) -> QualityReport:
    return check_output(
        {"train": frame}, key_columns=["part"], labels=list(labels), feature_columns=["x"]
    )


def _parts(results: list[str], defects: list[str | None]) -> pl.DataFrame:
    n = len(results)
    return pl.DataFrame(
        {"part": [f"p{i}" for i in range(n)], "x": [1.0] * n, "result": results},
    ).with_columns(pl.Series("defect_code", defects, dtype=pl.String))


def test_a_nullable_label_may_be_null_and_a_required_one_may_not() -> None:
    parts = _parts(["PASS", "FAIL", "PASS"], [None, "BURR", None])
    report = _check(parts, *LABEL_INFOS)
    assert report.success, report.failed
    assert "label_not_null:defect_code" not in {r.name for r in report.results}

    undeclared = _check(parts, LabelInfo("result"), LabelInfo("defect_code"))
    assert undeclared.failed == ["label_not_null:defect_code"]


def test_value_set_classes_and_range_block_and_balance_only_warns() -> None:
    parts = _parts(["PASS", "PASS", "SCRAP"], [None, None, None])
    report = _check(parts, *LABEL_INFOS)
    assert "label_in_set:result" in report.failed

    one_class = _check(_parts(["PASS"] * 3, [None] * 3), *LABEL_INFOS)
    assert one_class.failed == ["label_classes:result"]

    imbalanced = _parts(["PASS"] * 199 + ["FAIL"], [None] * 199 + ["BURR"])
    report = _check(imbalanced, *LABEL_INFOS)
    assert report.success
    assert report.warnings == ["label_balance:result"]
    balance = next(r for r in report.results if r.name == "label_balance:result")
    assert balance.observed_value == {"PASS": 0.995, "FAIL": 0.005, "REWORK": 0.0}

    rul = pl.DataFrame({"part": ["a", "b"], "x": [1.0, 2.0], "rul": [5.0, -1.0]})
    report = _check(rul, LabelInfo("rul", min_value=0.0))
    assert report.failed == ["label_range:rul"]


def test_a_label_null_only_in_its_null_splits() -> None:
    """The score split of a RUL set has no labels; a null in train blocks publishing."""
    label = LabelInfo("rul", null_splits=("score",), min_value=0.0)
    frame = pl.DataFrame({"part": ["a", "b"], "x": [1.0, 2.0], "rul": [5.0, 3.0]})
    score = pl.DataFrame({"part": ["s"], "x": [1.0], "rul": [None]}, schema=frame.schema)

    def check(train: pl.DataFrame) -> QualityReport:
        return check_output(
            {"train": train, "score": score},
            key_columns=["part"],
            labels=[label],
            feature_columns=["x"],
        )

    assert check(frame).success
    unlabelled = frame.with_columns(pl.when(pl.col("part") == "b").then(pl.col("rul")))
    report = check(unlabelled)
    assert report.failed == ["label_not_null:rul"]
    failed = next(r for r in report.results if r.name == "label_not_null:rul")
    assert failed.unexpected_count == 1
