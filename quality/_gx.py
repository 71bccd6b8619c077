"""Great Expectations for suite files: builds a GX suite from a :class:`SuiteSpec` and runs it
with row positions for every failing row-level expectation.

The GX runtime itself (lazy import, analytics and progress bars off, one context per process,
the lock) is :mod:`lake.gx_runtime`, shared with the output checks of curated datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lake.gx_runtime import NAME_KEY, named_suite, runtime, validate
from quality.errors import SuiteError, ValidationFailed
from quality.suites import ExpectationSpec, SuiteSpec, resolve_placeholders

__all__ = [
    "RESULT_FORMAT",
    "Outcome",
    "build_suite",
    "category_columns",
    "frame_for_gx",
    "run_suite",
]

RESULT_FORMAT: Mapping[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
"""Passed at run time: GX ignores ``result_format`` set on expectations (GX #10316)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What GX reported for one expectation.

    Attributes:
        success: GX's own verdict.
        unexpected_rows: positions of the failing rows (int64, ascending as GX reports
            them); None for aggregate expectations, which judge the batch as a whole.
        observed_value: the aggregate's observed value, or the unexpected count of a row-level
            expectation.
    """

    success: bool
    unexpected_rows: npt.NDArray[np.int64] | None
    observed_value: Any


def build_suite(spec: SuiteSpec, placeholders: Mapping[str, list[str]]) -> Any:
    """A GX ``ExpectationSuite`` for ``spec`` with registry placeholders resolved.

    Raises:
        SuiteError: naming the file and entry for an unknown GX class, a class that does not
            fit the entry's level, or arguments GX rejects.
    """
    named = []
    for entry in spec.expectations:
        cls = _expectation_class(spec, entry)
        kwargs = resolve_placeholders(entry, placeholders, path=str(spec.path))
        meta = kwargs.pop("meta", {})
        try:
            named.append((entry.name, cls(**kwargs, meta=meta)))
        except Exception as exc:
            raise SuiteError(
                str(spec.path),
                f"expectation {entry.name!r}",
                f"invalid kwargs for {cls.__name__}: {exc}",
            ) from exc
    return named_suite(spec.suite_name, named, meta={"suite_version": spec.suite_version})


def _expectation_class(spec: SuiteSpec, entry: ExpectationSpec) -> type[Any]:
    gxe = runtime().expectations
    base = gxe.expectation
    where = (str(spec.path), f"expectation {entry.name!r}")
    cls = getattr(gxe, entry.expectation, None)
    if not isinstance(cls, type) or not issubclass(cls, base.Expectation):
        raise SuiteError(
            *where,
            f"unknown expectation type {entry.expectation!r}: not a class of "
            "great_expectations.expectations (e.g. ExpectColumnValuesToBeInSet)",
        )
    if issubclass(cls, base.QueryExpectation | base.UnexpectedRowsExpectation):
        raise SuiteError(*where, f"{entry.expectation} needs SQL; batches are pandas frames")
    row_level = base.ColumnMapExpectation | base.ColumnPairMapExpectation
    row_level |= base.MulticolumnMapExpectation
    if entry.level != "batch" and not issubclass(cls, row_level):
        raise SuiteError(
            *where,
            f"level {entry.level!r} needs a row-level (column map, column pair map or "
            f"multicolumn map) expectation that reports failing rows; {entry.expectation} "
            "judges the whole batch: use level 'batch'",
        )
    return cls


CATEGORY_SAFE = frozenset(
    {
        "ExpectColumnValuesToBeInSet",
        "ExpectColumnValuesToNotBeInSet",
        "ExpectColumnValuesToBeNull",
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnPairValuesToBeEqual",
        "ExpectColumnDistinctValuesToBeInSet",
        "ExpectColumnDistinctValuesToContainSet",
        "ExpectColumnDistinctValuesToEqualSet",
    }
)
"""Expectations whose pandas metrics give the same result on a categorical column as on the
strings it encodes (set membership, nulls, equality). Ordering comparisons, regexes and lengths
are not in it: a string column any other expectation reads stays a string column."""


def category_columns(spec: SuiteSpec) -> frozenset[str]:
    """Columns of ``spec`` that only :data:`CATEGORY_SAFE` expectations read."""
    safe: set[str] = set()
    unsafe: set[str] = set()
    for entry in spec.expectations:
        (safe if entry.expectation in CATEGORY_SAFE else unsafe).update(entry.columns())
    return frozenset(safe - unsafe)


def frame_for_gx(table: pa.Table, categorical: frozenset[str] = frozenset()) -> pd.DataFrame:
    """``table`` as the pandas frame GX validates; the string (or string dictionary) columns
    named in ``categorical`` (see :func:`category_columns`) become categoricals.

    GX filters and copies the frame several times per expectation (null rows, pair domains):
    with Arrow-backed string columns every copy gathers each string again (pandas calls
    ``pyarrow.compute.take``), about half of a validation's time at 200,000 rows.
    Categoricals are copied as integer codes and ``isin`` tests only their categories. The
    categorical columns share one category list, so a pair expectation can compare two of
    them (pandas refuses to compare categoricals with different categories). Values, nulls
    and row order are unchanged, so are GX's verdicts. Dictionary columns (the derived key
    columns, :func:`quality.enrich.derive_columns`) are only re-coded: their strings are not
    hashed again row by row.
    """
    names = [n for n in table.column_names if n in categorical and _is_text(table.schema.field(n))]
    if not names:
        frame: pd.DataFrame = table.to_pandas()
        return frame
    columns = [_dictionary(table.column(n).combine_chunks()) for n in names]
    shared = pc.dictionary_encode(pa.concat_arrays([c.dictionary for c in columns]))
    start = 0
    for name, column in zip(names, columns, strict=True):
        codes = shared.indices.slice(start, len(column.dictionary)).take(column.indices)
        start += len(column.dictionary)
        recoded = pa.DictionaryArray.from_arrays(codes, shared.dictionary)
        table = table.set_column(table.schema.get_field_index(name), name, recoded)
    coded: pd.DataFrame = table.to_pandas()
    return coded


def _is_text(field: pa.Field) -> bool:
    kind = field.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind))


def _dictionary(column: pa.Array) -> pa.DictionaryArray:
    """``column`` dictionary-encoded; a dictionary column with duplicate or null dictionary
    values is encoded again from its values."""
    if pa.types.is_dictionary(column.type):
        values = column.dictionary
        if values.null_count == 0 and len(pc.unique(values)) == len(values):
            return column
        column = values.take(column.indices)
    return pc.dictionary_encode(column)


def run_suite(suite: Any, frame: pd.DataFrame, *, kind: str) -> dict[str, Outcome]:
    """Validate ``frame`` (default RangeIndex) against ``suite``; one outcome per entry name.

    Raises:
        ValidationFailed: GX raised, reported an exception for an expectation, returned no
            result for an entry, or did not report valid row positions for a failing
            row-level expectation. The caller wraps any other exception the same way.
    """
    n = len(frame)
    outcomes: dict[str, Outcome] = {}
    for r in validate(suite, frame, result_format=RESULT_FORMAT):
        name = (r.expectation_config.meta or {}).get(NAME_KEY)
        problem = _raised(r.exception_info)
        if problem is not None:
            raise ValidationFailed(kind, n, problem, expectation=name)
        outcomes[str(name)] = _outcome(r, kind, n, str(name))
    expected = {e.meta[NAME_KEY] for e in suite.expectations}
    if set(outcomes) != expected:
        lost = ", ".join(sorted(expected - set(outcomes)))
        raise ValidationFailed(kind, n, f"GX returned no result for {lost}")
    return outcomes


def _outcome(r: Any, kind: str, n: int, name: str) -> Outcome:
    res: dict[str, Any] = r.result or {}
    success = bool(r.success)
    if "unexpected_index_list" not in res:
        if res.get("unexpected_count"):
            raise ValidationFailed(kind, n, "GX reported no row indices", expectation=name)
        return Outcome(success, None, _plain(res.get("observed_value")))
    rows = np.asarray(res["unexpected_index_list"], dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
        raise ValidationFailed(kind, n, "GX reported row indices out of range", expectation=name)
    if rows.size != res.get("unexpected_count", rows.size):
        raise ValidationFailed(kind, n, "GX reported fewer indices than failures", expectation=name)
    return Outcome(success, rows, int(rows.size))


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, so verdicts serialise without surprises."""
    return value.item() if isinstance(value, np.generic) else value


def _raised(info: Any) -> str | None:
    """The exception message GX recorded for an expectation, if any.

    GX 1.x stores either one flat record or one record per failed metric."""
    if not isinstance(info, dict):
        return None
    records = [info] if "raised_exception" in info else list(info.values())
    for rec in records:
        if isinstance(rec, dict) and rec.get("raised_exception"):
            return str(rec.get("exception_message") or "GX raised an exception")
    return None
