"""Output checks of a built dataset, run with Great Expectations.

The suite is built in code from the job's declared keys, labels and features and runs on the
process's one GX runtime (:mod:`lake.gx_runtime`, shared with ingest validation; GX is imported
on first use only).

Checks on keys, labels and the row count are *blocking*: a dataset that fails one is not
published. The label checks come from each job's declared labels
(:class:`~lake.curation.job.LabelInfo`): not null unless the label is declared nullable (or
outside the splits where its declaration allows nulls), in its value set, at least ``min_classes``
distinct values, within ``[min_value, max_value]``. "Feature not entirely null" and the class
balance (``min_class_share``) are advisory (a job may emit a column per registry tag, and a
filtered set can lack a machine type or be imbalanced): they are recorded but do not block.

One validation covers every split at once (a ``_split`` column is added), so a key that occurs
in two splits — leakage between train and test — fails the uniqueness check.

Per split (computed with Polars, beside the suite): every split the job requires
(``JobOutput.splits_required``) holds at least one row (``split_rows:<split>``, blocking, with
the job's hint of what data span or share it needs), and each label with ``min_classes`` has
that many classes in every required split with rows (``split_label_classes:<split>:<label>``,
advisory). Both are left out when the whole set is empty: ``rows`` fails and says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from lake.curation.job import LabelInfo
from lake.gx_runtime import NAME_KEY, named_suite, runtime, validate

__all__ = ["SUITE_NAME", "ExpectationResult", "QualityReport", "check_output"]

SUITE_NAME = "maxlake.curated_output"
SPLIT_COLUMN = "_split"
_ADVISORY = ("feature_not_all_null:", "label_balance:", "split_label_classes:")
SPLIT_CHECKS = ("split_rows:", "split_label_classes:")
"""Name prefixes of the per-split checks (they name splits and labels only, never a company's
machines, so the published manifest keeps their warnings)."""


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
        detail: for a failed per-split check, what happened and what to change.
    """

    name: str
    expectation: str
    success: bool
    unexpected_count: int | None
    observed_value: Any
    blocking: bool
    detail: str = ""


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

    @property
    def details(self) -> list[str]:
        """``<name>: <detail>`` of every failed check that explains itself (blocking first)."""
        failed = [r for r in self.results if not r.success and r.detail]
        return [f"{r.name}: {r.detail}" for r in sorted(failed, key=lambda r: not r.blocking)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the manifest."""
        return {
            "suite": self.suite,
            "success": self.success,
            "failed": self.failed,
            "warnings": self.warnings,
            "details": self.details,
            "results": [asdict(r) for r in self.results],
        }


def check_output(
    splits: Mapping[str, pl.DataFrame],
    *,
    key_columns: Sequence[str],
    labels: Sequence[LabelInfo],
    feature_columns: Sequence[str],
    required_splits: Sequence[str] = (),
    split_hints: Mapping[str, str] | None = None,
) -> QualityReport:
    """Validate the job's output.

    Expectations: at least one row; every key column not null; the key unique over all splits
    together; each label as declared; every required split holds rows (all blocking); every
    feature column not entirely null, each label's class balance and its classes per required
    split (advisory).

    Args:
        splits: split name -> rows.
        key_columns: columns that identify a row.
        labels: one per label column (``JobOutput.all_labels()``).
        feature_columns: the feature columns.
        required_splits: splits that must hold rows (``JobOutput.splits_required()``).
        split_hints: split -> why it is empty and what to change (``JobOutput.split_hints``).
    """
    label_columns = [c.column for c in labels]
    needed = list(dict.fromkeys([*key_columns, *label_columns, *feature_columns]))
    frame = pl.concat(
        [
            df.select(needed).with_columns(pl.lit(name).alias(SPLIT_COLUMN))
            for name, df in splits.items()
        ],
        how="vertical_relaxed",
    )
    frame = frame.with_columns(
        (pl.col(c.column).is_not_null() | pl.col(SPLIT_COLUMN).is_in(list(c.null_splits)))
        .fill_null(True)
        .alias(_present(c.column))
        for c in labels
        if c.null_splits and not c.nullable
    )
    gxe = runtime().expectations
    suite = named_suite(SUITE_NAME, _expectations(gxe, key_columns, labels, feature_columns))
    outcome = validate(suite, frame.to_pandas(), result_format={"result_format": "SUMMARY"})
    by_name = {(r.expectation_config.meta or {}).get(NAME_KEY): r for r in outcome}
    results = []
    for exp in suite.expectations:
        name = exp.meta[NAME_KEY]
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
    results += [_class_balance(frame, c) for c in labels if c.min_class_share is not None]
    if frame.height:
        results += _per_split(splits, required_splits, labels, split_hints or {})
    ok = all(r.success for r in results if r.blocking)
    return QualityReport(SUITE_NAME, ok, tuple(results))


def _per_split(
    splits: Mapping[str, pl.DataFrame],
    required: Sequence[str],
    labels: Sequence[LabelInfo],
    hints: Mapping[str, str],
) -> list[ExpectationResult]:
    """``split_rows:<split>`` (blocking) and ``split_label_classes:<split>:<label>`` (advisory)
    of each required split."""
    out: list[ExpectationResult] = []
    for split in required:
        frame = splits.get(split)
        rows = 0 if frame is None else frame.height
        why = hints.get(split) or "the job's split rule left no row in it"
        out.append(
            ExpectationResult(
                name=f"split_rows:{split}",
                expectation="maxlake.split_row_count_at_least",
                success=rows >= 1,
                unexpected_count=None,
                observed_value=rows,
                blocking=True,
                detail="" if rows else f"split {split!r} is empty: {why}",
            )
        )
        if frame is None or rows == 0:
            continue
        for label in labels:
            if label.min_classes is None or label.column not in frame.columns:
                continue
            values = frame.get_column(label.column).drop_nulls()
            counts = values.value_counts().sort(label.column)
            classes = {str(v): int(n) for v, n in counts.iter_rows()}
            ok = len(classes) >= label.min_classes
            out.append(
                ExpectationResult(
                    name=f"split_label_classes:{split}:{label.column}",
                    expectation="maxlake.split_label_classes_at_least",
                    success=ok,
                    unexpected_count=None,
                    observed_value=classes,
                    blocking=False,
                    detail=""
                    if ok
                    else f"split {split!r} holds {len(classes)} class(es) of {label.column} "
                    f"{classes}, fewer than {label.min_classes}: metrics that need both "
                    "classes (AUC, recall) cannot be computed on it; add data or move the cuts",
                )
            )
    return out


def _class_balance(frame: pl.DataFrame, label: LabelInfo) -> ExpectationResult:
    """Advisory: the rarest declared class holds at least ``min_class_share`` of the non-null
    labels (observed: the share of each class)."""
    values = frame.get_column(label.column).drop_nulls()
    classes = list(label.values) if label.values is not None else values.unique().sort().to_list()
    total = values.len()
    shares = {
        str(v): (round(int((values == v).sum()) / total, 6) if total else 0.0) for v in classes
    }
    floor = label.min_class_share or 0.0
    return ExpectationResult(
        name=f"label_balance:{label.column}",
        expectation="maxlake.label_class_share_at_least",
        success=bool(shares) and min(shares.values()) >= floor,
        unexpected_count=None,
        observed_value=shares,
        blocking=False,
    )


def _expectations(
    gxe: Any,
    keys: Sequence[str],
    labels: Sequence[LabelInfo],
    features: Sequence[str],
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
    for label in labels:
        c = label.column
        if label.null_splits and not label.nullable:
            out.append(
                (
                    f"label_not_null:{c}",
                    gxe.ExpectColumnValuesToBeInSet(column=_present(c), value_set=[True]),
                )
            )
        elif not label.nullable:
            out.append((f"label_not_null:{c}", gxe.ExpectColumnValuesToNotBeNull(column=c)))
        if label.values is not None:
            values = list(label.values)
            out.append(
                (f"label_in_set:{c}", gxe.ExpectColumnValuesToBeInSet(column=c, value_set=values))
            )
        if label.min_classes is not None:
            out.append(
                (
                    f"label_classes:{c}",
                    gxe.ExpectColumnUniqueValueCountToBeBetween(
                        column=c, min_value=label.min_classes
                    ),
                )
            )
        if label.min_value is not None or label.max_value is not None:
            out.append(
                (
                    f"label_range:{c}",
                    gxe.ExpectColumnValuesToBeBetween(
                        column=c, min_value=label.min_value, max_value=label.max_value
                    ),
                )
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


def _present(column: str) -> str:
    """The helper column of a per-split not-null check: true where ``column`` holds a value
    or its declaration allows a null in its split."""
    return f"_present:{column}"


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
