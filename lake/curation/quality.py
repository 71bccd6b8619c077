"""Output checks of a built dataset, run with Great Expectations.

The lake cannot import the ``quality`` package (dependency direction: streams -> quality ->
lake), so this module runs its own small GX suite. GX is imported on first use only (seconds),
with analytics and progress bars off, and the ephemeral context, pandas data source and batch
definition are built once per process under names of their own, so they coexist with the
ingest gateway's.

Checks on keys, labels and the row count are *blocking*: a dataset that fails one is not
published. "Feature not entirely null" is advisory (a job may emit a column per registry tag,
and a filtered set can lack a machine type): it is recorded but does not block.

One validation covers every split at once (a ``_split`` column is added), so a key that occurs
in two splits — leakage between train and test — fails the uniqueness check.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from maxlake.errors import ConfigError

__all__ = ["SUITE_NAME", "ExpectationResult", "QualityReport", "check_output"]

SUITE_NAME = "maxlake.curated_output"
SPLIT_COLUMN = "_split"
_NAME_KEY = "maxlake_name"
_LOCK = threading.Lock()
_ADVISORY = "feature_not_all_null:"


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's outcome.

    Attributes:
        name: stable name, ``<check>:<column>`` (for example ``key_not_null:machine``).
        expectation: the GX expectation type.
        success: GX's verdict.
        unexpected_count: failing rows for row-level checks, else None.
        observed_value: what an aggregate check measured, else None.
        blocking: whether a failure stops the dataset from being published.
    """

    name: str
    expectation: str
    success: bool
    unexpected_count: int | None
    observed_value: Any
    blocking: bool


@dataclass(frozen=True)
class QualityReport:
    """The output suite's verdict, recorded in the manifest.

    Attributes:
        suite: suite name.
        success: every blocking expectation passed.
        results: every expectation's outcome, in suite order.
    """

    suite: str
    success: bool
    results: tuple[ExpectationResult, ...]

    @property
    def failed(self) -> list[str]:
        """Names of the failed blocking expectations."""
        return [r.name for r in self.results if r.blocking and not r.success]

    @property
    def warnings(self) -> list[str]:
        """Names of the failed advisory expectations."""
        return [r.name for r in self.results if not r.blocking and not r.success]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the manifest."""
        return {
            "suite": self.suite,
            "success": self.success,
            "failed": self.failed,
            "warnings": self.warnings,
            "results": [asdict(r) for r in self.results],
        }


@dataclass(frozen=True)
class _Runtime:
    gx: Any
    gxe: Any
    batch_definition: Any


@functools.cache
def _runtime() -> _Runtime:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    try:
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError(
            "great-expectations is not installed: pip install 'great-expectations>=1.24'"
        ) from exc
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("maxlake_curated")
    batch_definition = source.add_dataframe_asset("dataset").add_batch_definition_whole_dataframe(
        "all_splits"
    )
    return _Runtime(gx, gxe, batch_definition)


def check_output(
    splits: Mapping[str, pl.DataFrame],
    *,
    key_columns: Sequence[str],
    label_columns: Sequence[str],
    feature_columns: Sequence[str],
    label_values: Mapping[str, Sequence[Any]] | None = None,
) -> QualityReport:
    """Validate the job's output.

    Expectations: at least one row; every key column not null; the key unique over all splits
    together; every label column not null and, when ``label_values`` declares its value set,
    within it (all blocking); every feature column not entirely null (advisory).

    Args:
        splits: split name -> rows.
        key_columns: columns that identify a row.
        label_columns: the label column(s).
        feature_columns: the feature columns.
        label_values: label column -> its valid values (optional per column).
    """
    needed = list(dict.fromkeys([*key_columns, *label_columns, *feature_columns]))
    frame = pl.concat(
        [
            df.select(needed).with_columns(pl.lit(name).alias(SPLIT_COLUMN))
            for name, df in splits.items()
        ],
        how="vertical_relaxed",
    )
    rt = _runtime()
    suite = rt.gx.ExpectationSuite(name=SUITE_NAME)
    for name, expectation in _expectations(
        rt.gxe, key_columns, label_columns, feature_columns, label_values or {}
    ):
        expectation.meta = {_NAME_KEY: name}
        suite.add_expectation(expectation)
    with _LOCK:
        batch = rt.batch_definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
        outcome = batch.validate(suite, result_format={"result_format": "SUMMARY"})
    by_name = {(r.expectation_config.meta or {}).get(_NAME_KEY): r for r in outcome.results}
    results = []
    for exp in suite.expectations:
        name = exp.meta[_NAME_KEY]
        r = by_name[name]
        res = r.result or {}
        count = res.get("unexpected_count")
        results.append(
            ExpectationResult(
                name=name,
                expectation=r.expectation_config.type,
                success=bool(r.success),
                unexpected_count=None if count is None else int(count),
                observed_value=_plain(res.get("observed_value")),
                blocking=not name.startswith(_ADVISORY),
            )
        )
    ok = all(r.success for r in results if r.blocking)
    return QualityReport(SUITE_NAME, ok, tuple(results))


def _expectations(
    gxe: Any,
    keys: Sequence[str],
    labels: Sequence[str],
    features: Sequence[str],
    label_values: Mapping[str, Sequence[Any]],
) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("rows", gxe.ExpectTableRowCountToBeBetween(min_value=1))]
    out += [(f"key_not_null:{c}", gxe.ExpectColumnValuesToNotBeNull(column=c)) for c in keys]
    if len(keys) == 1:
        out.append((f"key_unique:{keys[0]}", gxe.ExpectColumnValuesToBeUnique(column=keys[0])))
    elif keys:
        out.append(
            (
                "key_unique:" + ",".join(keys),
                gxe.ExpectCompoundColumnsToBeUnique(column_list=list(keys)),
            )
        )
    for c in labels:
        out.append((f"label_not_null:{c}", gxe.ExpectColumnValuesToNotBeNull(column=c)))
        if c in label_values:
            values = list(label_values[c])
            out.append(
                (f"label_in_set:{c}", gxe.ExpectColumnValuesToBeInSet(column=c, value_set=values))
            )
    out += [
        (
            f"feature_not_all_null:{c}",
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
                column=c, min_value=0.0, strict_min=True
            ),
        )
        for c in features
    ]
    return out


def _plain(value: Any) -> Any:
    """NumPy scalars and other odd values as JSON-ready Python values."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
