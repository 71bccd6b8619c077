"""One Great Expectations runtime per process, used by ingest validation and curated checks."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from lake.curation import LabelInfo, check_output
from lake.gx_runtime import NAME_KEY, named_suite, runtime, validate
from quality import ValidationGateway
from quality._gx import RESULT_FORMAT
from schemas import load_registry
from tests.unit.quality.rows import telemetry


def test_ingest_validation_and_curated_checks_share_one_context() -> None:
    gateway = ValidationGateway(load_registry())
    gateway.validate("telemetry", telemetry({}, {"value": -1.0}))
    report = check_output(
        {"train": pl.DataFrame({"part": ["p1", "p2"], "x": [1.0, 2.0], "y": [0, 1]})},
        key_columns=["part"],
        labels=[LabelInfo("y")],
        feature_columns=["x"],
    )
    assert report.success, report.failed
    context = runtime().context
    assert gateway.gx_context is context
    assert [ds.name for ds in context.data_sources.all().values()] == ["maxlake"]


def test_results_come_back_by_entry_name() -> None:
    gxe = runtime().expectations
    suite = named_suite(
        "t",
        [
            ("x_not_null", gxe.ExpectColumnValuesToNotBeNull(column="x")),
            ("rows", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        ],
    )
    results = validate(
        suite, pd.DataFrame({"x": [1.0, None]}), result_format={"result_format": "SUMMARY"}
    )
    assert {r.expectation_config.meta[NAME_KEY]: r.success for r in results} == {
        "x_not_null": False,
        "rows": True,
    }


def test_column_mean_skips_the_decimal_scan_of_typed_columns_only() -> None:
    from great_expectations import util as gx_util  # noqa: PLC0415 - GX is imported lazily

    class Unwalkable(np.ndarray):
        def __iter__(self) -> Any:
            raise AssertionError("a float array was walked element by element")

    runtime()
    assert not gx_util.does_ndarray_contain_decimal_dtype(np.arange(3.0).view(Unwalkable))
    assert gx_util.does_ndarray_contain_decimal_dtype(np.array([1.0, Decimal("2")], object))
    gxe = runtime().expectations
    suite = named_suite(
        "mean", [("mean", gxe.ExpectColumnMeanToBeBetween(column="x", min_value=0, max_value=2))]
    )
    for column in ([1.0, 2.0], [Decimal("1"), Decimal("2")]):
        results = validate(
            suite, pd.DataFrame({"x": column}), result_format={"result_format": "SUMMARY"}
        )
        assert [(r.success, r.result["observed_value"]) for r in results] == [(True, 1.5)]


def test_each_validation_judges_its_own_frame_and_configurations_stay_fresh_outside() -> None:
    gxe = runtime().expectations
    not_null = gxe.ExpectColumnValuesToNotBeNull(column="x")
    suite = named_suite(
        "memo",
        [
            ("x_not_null", not_null),
            ("x_range", gxe.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=5)),
        ],
    )
    verdicts = []
    for column in ([1.0, None, 9.0], [1.0, 2.0, 3.0], [None, 7.0, 1.0]):
        results = validate(suite, pd.DataFrame({"x": column}), result_format=RESULT_FORMAT)
        verdicts.append(
            {
                r.expectation_config.meta[NAME_KEY]: r.result["unexpected_index_list"]
                for r in results
            }
        )
    assert verdicts == [
        {"x_not_null": [1], "x_range": [2]},
        {"x_not_null": [], "x_range": []},
        {"x_not_null": [0], "x_range": [1]},
    ]
    assert not_null.configuration is not not_null.configuration
    not_null.column = "y"
    assert not_null.configuration.kwargs["column"] == "y"


def test_a_frame_is_loaded_once_per_validation_and_never_hashed(monkeypatch: Any) -> None:
    runtime()
    from great_expectations.execution_engine import pandas_execution_engine as engine  # noqa: PLC0415 - GX is imported lazily

    loads: list[int] = []
    hashed: list[int] = []
    load = engine.PandasExecutionEngine.get_batch_data_and_markers

    def counted_load(self: Any, batch_spec: Any) -> Any:
        loads.append(len(batch_spec.batch_data))
        return load(self, batch_spec)

    def counted_hash(frame: pd.DataFrame) -> str:
        hashed.append(len(frame))
        return "0"

    monkeypatch.setattr(engine.PandasExecutionEngine, "get_batch_data_and_markers", counted_load)
    monkeypatch.setattr(engine, "hash_pandas_dataframe", counted_hash)
    gxe = runtime().expectations
    suite = named_suite("once", [("x_not_null", gxe.ExpectColumnValuesToNotBeNull(column="x"))])
    results = validate(suite, pd.DataFrame({"x": [1.0, None, 3.0]}), result_format=RESULT_FORMAT)
    assert [r.result["unexpected_index_list"] for r in results] == [[1]]
    assert loads == [3]
    assert hashed == []


def test_a_validation_builds_each_expectation_from_its_configuration_at_most_twice(
    monkeypatch: Any,
) -> None:
    runtime()
    from great_expectations.expectations.expectation_configuration import (  # noqa: PLC0415 - GX is imported lazily
        ExpectationConfiguration,
    )

    built: list[str] = []
    implementation = ExpectationConfiguration._get_expectation_impl

    def counted(self: Any) -> Any:
        built.append(self.type)
        return implementation(self)

    monkeypatch.setattr(ExpectationConfiguration, "_get_expectation_impl", counted)
    gxe = runtime().expectations
    suite = named_suite(
        "builds",
        [
            ("x_not_null", gxe.ExpectColumnValuesToNotBeNull(column="x")),
            ("x_range", gxe.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=2)),
            ("x_is_y", gxe.ExpectColumnPairValuesToBeEqual(column_A="x", column_B="y")),
        ],
    )
    frame = pd.DataFrame({"x": [1.0, None, 3.0], "y": [1.0, 2.0, 2.0]})
    results = validate(suite, frame, result_format=RESULT_FORMAT)
    assert {
        r.expectation_config.meta[NAME_KEY]: r.result["unexpected_index_list"] for r in results
    } == {"x_not_null": [1], "x_range": [2], "x_is_y": [1, 2]}
    assert len(built) <= 2 * len(suite.expectations)  # GX 1.24 alone: 14 per expectation
    config = suite.expectations[0].configuration
    assert config.to_domain_obj() is not config.to_domain_obj()  # GX's own outside validate


_DEFERRED_IN_A_FRESH_PROCESS = """
import sys
import pandas as pd
from lake.gx_runtime import DEFERRED, named_suite, runtime, validate
from quality import ValidationGateway
from schemas import load_registry
from tests.unit.quality.rows import telemetry

def loaded():
    return [m for m in DEFERRED if type(sys.modules.get(m)).__name__ == "module"]

gateway = ValidationGateway(load_registry())
verdict = gateway.validate("telemetry", telemetry({}, {"value": -1.0}))
print(loaded(), verdict.dropped)
gxe = runtime().expectations
kl = gxe.ExpectColumnKLDivergenceToBeLessThan(
    column="x", partition_object={"values": ["a", "b"], "weights": [0.5, 0.5]}, threshold=0.1
)
for column in (["a", "b", "a", "b"], ["a", "a", "a", "b"]):
    (result,) = validate(named_suite("kl", [("kl", kl)]), pd.DataFrame({"x": column}),
                         result_format={"result_format": "SUMMARY"})
    print(result.success, round(float(result.result["observed_value"]), 4))
print(loaded())
"""


def test_modules_only_some_expectations_use_are_imported_when_one_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", _DEFERRED_IN_A_FRESH_PROCESS],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "GX_ANALYTICS_ENABLED": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.splitlines() == [
        "[] 1",
        "True 0.0",
        # KL(0.75, 0.25 || 0.5, 0.5): SciPy's statistics, imported when GX first used them
        "False 0.1308",
        "['scipy.stats']",
    ]
