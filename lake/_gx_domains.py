"""Two patches of GX internals that make a validation's cost follow its data, not its metrics.

Both are active only while :func:`lake.gx_runtime.validate` runs them (:func:`narrowed`), on
its thread; outside, GX's own functions run.

* **Domain records on the domain's columns.** GX's pandas engine gives every metric of a
  row-level expectation the whole frame as its domain: for a column pair with ``ignore_row_if``
  it drops the null rows of the whole frame (a copy of every column), and the column metrics
  then keep the non-null rows of the whole frame again (another copy of every column), once per
  metric: 4-5 metrics per expectation. Here the domain records of a column, column pair or
  column list domain are the frame's rows filtered by GX itself (batch and row condition), then
  narrowed to the domain's columns and filtered by ``ignore_row_if`` as GX does it, once per
  validation and domain; each metric gets a shallow copy (copy-on-write: a metric that writes
  to it does not change what the next one reads). Rows, index and values of the domain columns
  are those GX computes, so are the verdicts; only the columns outside the domain are missing,
  which is why it is used only for result formats that do not return rows or other columns
  (:func:`narrowable`) and suites of the expectation classes in :data:`NARROW_SAFE`.
* **The metric graph once per suite.** Before it computes anything GX builds, per
  validation, each expectation's metric graph: its validation dependencies and, recursively,
  every metric's evaluation dependencies (~3,500 ``MetricConfiguration`` objects per 10
  validations of the telemetry suite, ~15 ms per call). That graph depends only on the
  expectation configurations, the run-time configuration (result format), the batch id and
  the execution engine's class, never on the rows. Within :func:`narrowed` (``graphs=True``)
  the graphs built for one such content are kept and handed to GX again for the next
  validation of equal content; GX then resolves them on the new batch as it resolves graphs
  it just built (the resolved values live in a dict of the call, not in the graph objects).
  A build that recorded an exception is not kept.
* **Metric ids once per content.** Building the metric graph makes ~700 ``MetricConfiguration``
  ids per validation of the telemetry suite, each a JSON serialisation (GX's
  ``convert_to_json_serializable``, an ``isinstance`` chain per value) and an MD5 of its
  kwargs. An id depends only on the kwargs' content; for content made of strings, numbers,
  booleans, None, lists, tuples and dicts with string keys, the id is kept by a frozen copy
  of that content (types included: ``1``, ``1.0`` and ``True`` serialise differently).

Each patch replaces a GX function whose source is pinned by its SHA-256 in
:data:`FINGERPRINTS`: when a GX release changes one of them, :func:`install` leaves GX
unpatched (GX's own path, same verdicts) and warns once, naming it, instead of mirroring logic
that moved.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from maxlake.errors import ConfigError

__all__ = ["FINGERPRINTS", "NARROW_SAFE", "install", "narrowable", "narrowed"]

logger = logging.getLogger(__name__)

FINGERPRINTS: Mapping[str, str] = {
    "great_expectations.execution_engine.pandas_execution_engine."
    "PandasExecutionEngine.get_domain_records": (
        "4691281d9a24f31f802390bdb751e118f7fc4c3a35555177f9939679f1cf5528"
    ),
    "great_expectations.core.id_dict.IDDict.to_id": (
        "3820fd313f5a0f6903b8b63f6bda3cadf1dc822312d6da5a3eff18ca76f06344"
    ),
    "great_expectations.validator.validator.Validator."
    "_generate_metric_dependency_subgraphs_for_each_expectation_configuration": (
        "3165fac4b81c0f96e27a88296afa66e1cf988cd40d4d940e85bab3834f863947"
    ),
    "great_expectations.validator.validator.Validator.graph_validate": (
        "179acad7dc6ff0eaff4ea1649a85e8d78cb95ee373084e96664e2a19fe16dd28"
    ),
}
"""SHA-256 of the source of each GX function patched here, as in great_expectations 1.24.1."""

NARROW_SAFE = frozenset(
    {
        "ExpectColumnValuesToBeInSet",
        "ExpectColumnValuesToNotBeInSet",
        "ExpectColumnValuesToBeNull",
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnValuesToBeBetween",
        "ExpectColumnValuesToBeUnique",
        "ExpectColumnValuesToMatchRegex",
        "ExpectColumnPairValuesToBeEqual",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        "ExpectCompoundColumnsToBeUnique",
        "ExpectColumnMeanToBeBetween",
        "ExpectColumnUniqueValueCountToBeBetween",
        "ExpectColumnProportionOfNonNullValuesToBeBetween",
        "ExpectTableRowCountToBeBetween",
    }
)
"""Expectation classes whose pandas metrics read only their domain's columns, each compared
with GX's own path on hostile frames (tests/unit/test_gx_domains.py): the classes of the
bundled suites and of the curated datasets' output checks. A suite holding any other class is
validated on GX's own path."""

_ROW_RESULTS = ("include_unexpected_rows", "unexpected_index_column_names")

_PAIR_HOW = {"both_values_are_missing": "all", "either_value_is_missing": "any", "neither": None}
_LIST_HOW = {"all_values_are_missing": "all", "any_value_is_missing": "any", "never": None}
_DOMAIN_KEYS = frozenset({"column", "column_A", "column_B", "column_list", "ignore_row_if"})
_KNOWN_KEYS = _DOMAIN_KEYS | {"batch_id", "table", "row_condition", "condition_parser"}

_ID_MEMO_LIMIT = 4096
_GRAPH_MEMO_LIMIT = 32

_STATE = threading.local()
"""``domains``: frozen domain kwargs -> narrowed domain records, ``ids``: True and ``graphs``:
True, set while this thread runs inside :func:`narrowed`."""

_IDS: dict[Any, Any] = {}
_GRAPHS: dict[Any, tuple[list[Any], list[Any]]] = {}
"""Frozen content of a graph build -> (expectation validation graphs, processed
configurations); used under the runtime's lock only."""


def narrowable(suite: Any, result_format: Mapping[str, Any]) -> bool:
    """True when every expectation of ``suite`` is of a :data:`NARROW_SAFE` class (GX's own, not
    a class of the same name elsewhere) and ``result_format`` asks for no unexpected rows and no
    index columns (which read columns outside the domain)."""
    if any(result_format.get(key) for key in _ROW_RESULTS):
        return False
    return all(
        type(e).__name__ in NARROW_SAFE and type(e).__module__.startswith("great_expectations.")
        for e in suite.expectations
    )


@contextmanager
def narrowed(*, domains: bool, graphs: bool = False) -> Iterator[None]:
    """Within the block, on this thread, metric ids are memoised, if ``domains`` domain
    records are narrowed and if ``graphs`` metric graphs are reused (see the module
    docstring). Call :func:`install` first."""
    _STATE.domains = {} if domains else None
    _STATE.ids = True
    _STATE.graphs = graphs
    try:
        yield
    finally:
        _STATE.domains = None
        _STATE.ids = False
        _STATE.graphs = False


def install() -> bool:
    """Patch GX (once per process); returns whether GX is patched.

    A patched GX function whose source differs from the one pinned in :data:`FINGERPRINTS` (a
    GX release changed it), or whose source cannot be read, leaves GX unpatched: validation
    runs on GX's own path, with the same verdicts and GX's own cost, and one warning names the
    function and what to do. Validation never stops for it.
    """
    from great_expectations.core.id_dict import IDDict  # noqa: PLC0415 - lazy: GX takes seconds to import
    from great_expectations.execution_engine.pandas_execution_engine import (  # noqa: PLC0415 - lazy: GX takes seconds to import
        PandasExecutionEngine,
    )
    from great_expectations.validator.validator import Validator  # noqa: PLC0415 - lazy: GX takes seconds to import

    get_records: Any = PandasExecutionEngine.get_domain_records
    to_id: Any = IDDict.to_id
    build: Any = Validator._generate_metric_dependency_subgraphs_for_each_expectation_configuration
    if getattr(get_records, "_maxlake_narrow", False):
        return True
    if _STATE_UNPATCHED:
        return False
    try:
        _check_fingerprint(get_records)
        _check_fingerprint(to_id)
        _check_fingerprint(build)
        _check_fingerprint(Validator.graph_validate)
    except ConfigError as exc:
        _STATE_UNPATCHED.append(str(exc))
        logger.warning("%s; until then validation runs on GX's own, slower path", exc)
        return False
    setattr(PandasExecutionEngine, "get_domain_records", _narrow_domain_records(get_records))  # noqa: B010 - mypy: a method of a GX class
    setattr(IDDict, "to_id", _memoized_ids(to_id))  # noqa: B010 - mypy: a method of a GX class
    setattr(  # noqa: B010 - mypy: a method of a GX class
        Validator,
        "_generate_metric_dependency_subgraphs_for_each_expectation_configuration",
        _reused_graphs(build),
    )
    return True


_STATE_UNPATCHED: list[str] = []
"""The reason GX was left unpatched in this process (at most one), said once."""


def _check_fingerprint(function: Callable[..., Any]) -> None:
    name = f"{function.__module__}.{function.__qualname__}"
    try:
        digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
    except (OSError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the source of {name} to check it against the version maxlake patches "
            f"(lake/_gx_domains.py): {exc}; install great-expectations from a wheel with sources"
        ) from exc
    if digest != FINGERPRINTS.get(name):
        from great_expectations import __version__  # noqa: PLC0415 - lazy: GX takes seconds to import

        raise ConfigError(
            f"great_expectations {__version__} changed {name}, which maxlake patches "
            "(lake/_gx_domains.py, written against 1.24.1): review the patch against the new "
            "source and update FINGERPRINTS, or install great-expectations==1.24.1"
        )


def _narrow_domain_records(get_records: Callable[..., Any]) -> Callable[..., Any]:
    def get_domain_records(self: Any, domain_kwargs: dict[str, Any]) -> Any:
        domains: dict[Any, Any] | None = getattr(_STATE, "domains", None)
        if domains is None:
            return get_records(self, domain_kwargs)
        domain = _domain(domain_kwargs)
        frozen = [(k, _freeze(v)) for k, v in domain_kwargs.items()] if domain else []
        if domain is None or any(v is None for _, v in frozen):
            return get_records(self, domain_kwargs)
        key = frozenset(frozen)
        held = domains.get(key)
        if held is None:
            columns, how = domain
            rows = get_records(
                self, {k: v for k, v in domain_kwargs.items() if k not in _DOMAIN_KEYS}
            )
            if not rows.columns.is_unique or not all(c in rows.columns for c in columns):
                return get_records(self, domain_kwargs)
            held = domains[key] = _drop_missing(_columns(rows, columns), how)
        return held.copy(deep=False)

    get_domain_records.__wrapped__ = get_records  # type: ignore[attr-defined]
    get_domain_records._maxlake_narrow = True  # type: ignore[attr-defined]
    return get_domain_records


def _columns(frame: pd.DataFrame, columns: list[Any]) -> pd.DataFrame:
    """``frame[columns]`` (unique names) as a take of the columns by position, which shares
    the column data: a third of the time of ``frame[columns]`` or of a frame built from the
    columns (each builds an index of the names and looks them up; pandas 3's string index is
    Arrow-backed)."""
    positions: list[int] = []
    for column in columns:
        at = frame.columns.get_loc(column)
        if not isinstance(at, int):
            return frame[columns]
        positions.append(at)
    return frame.take(positions, axis=1)


def _drop_missing(frame: pd.DataFrame, how: str | None) -> pd.DataFrame:
    """``frame.dropna(axis=0, how=how)`` as pandas computes it (keeps the rows whose values
    are all, or any, present by ``notna``; a shallow copy when every row stays), without
    copying the columns into a new frame to count across them nor taking the rows of a 2-D
    block (pandas' ``take`` of a two-column float block costs ~4x two column takes);
    ``frame`` when ``how`` is None."""
    if how is None:
        return frame
    present = [frame[c].notna().to_numpy(dtype=bool) for c in frame.columns]
    keep = np.logical_and.reduce(present) if how == "any" else np.logical_or.reduce(present)
    if keep.all():
        return frame.copy(deep=False)
    rows = np.flatnonzero(keep)
    kept = pd.DataFrame(
        {i: frame.iloc[:, i].array.take(rows) for i in range(frame.shape[1])},
        index=frame.index.take(rows),
        copy=False,
    )
    kept.columns = frame.columns
    return kept


def _domain(kwargs: Mapping[str, Any]) -> tuple[list[Any], str | None] | None:
    """``(domain columns without repeats, dropna's how or None)`` as GX's
    ``get_domain_records`` filters the domain; None for a table domain, unknown keys or an
    ``ignore_row_if`` GX rejects (GX's own function then runs and raises)."""
    if not kwargs.keys() <= _KNOWN_KEYS or kwargs.get("table"):
        return None
    if "column" in kwargs:
        return [kwargs["column"]], None
    if "ignore_row_if" not in kwargs:
        return None
    ignore = kwargs["ignore_row_if"]
    if "column_A" in kwargs and "column_B" in kwargs:
        if ignore not in _PAIR_HOW:
            return None
        return list(dict.fromkeys((kwargs["column_A"], kwargs["column_B"]))), _PAIR_HOW[ignore]
    if "column_list" in kwargs:
        if ignore not in _LIST_HOW or not isinstance(kwargs["column_list"], list | tuple):
            return None
        return list(dict.fromkeys(kwargs["column_list"])), _LIST_HOW[ignore]
    return None


def _reused_graphs(build: Callable[..., Any]) -> Callable[..., Any]:
    """GX's graph building (``Validator._generate_metric_dependency_subgraphs_...``), whose
    result is kept per content while :func:`narrowed` runs with ``graphs=True``.

    GX's ``graph_validate`` passes an empty ``processed_configurations`` list and uses the
    three lists returned: it appends to the results and removes the configurations whose
    metrics failed, so each call gets new lists (the graphs and configurations in them are
    the kept ones: GX reads them and keeps resolved values in a dict of its own).
    """

    def generate(
        self: Any,
        expectation_configurations: list[Any],
        processed_configurations: list[Any],
        catch_exceptions: bool,
        runtime_configuration: dict[str, Any] | None = None,
    ) -> tuple[list[Any], list[Any], list[Any]]:
        key = None
        if getattr(_STATE, "graphs", False) and not processed_configurations:
            key = _graph_key(
                self, expectation_configurations, catch_exceptions, runtime_configuration
            )
        held = _GRAPHS.get(key) if key is not None else None
        if held is None:
            graphs, results, processed = build(
                self,
                expectation_configurations=expectation_configurations,
                processed_configurations=processed_configurations,
                catch_exceptions=catch_exceptions,
                runtime_configuration=runtime_configuration,
            )
            if key is None or results:
                return graphs, results, processed
            if len(_GRAPHS) >= _GRAPH_MEMO_LIMIT:
                _GRAPHS.clear()
            held = _GRAPHS[key] = (list(graphs), list(processed))
        return list(held[0]), [], list(held[1])

    generate.__wrapped__ = build  # type: ignore[attr-defined]
    return generate


def _graph_key(
    validator: Any,
    configurations: list[Any],
    catch_exceptions: bool,
    runtime_configuration: dict[str, Any] | None,
) -> Any:
    """What GX's graph building reads, frozen (None when some of it does not freeze): the
    execution engine's class, the active batch id, each configuration's whole content (its
    JSON form and its kwargs before suite parameters) and the run-time configuration."""
    content = [
        (_freeze(c.to_json_dict()), _freeze(getattr(c, "_raw_kwargs", None)))
        for c in configurations
    ]
    runtime = _freeze(runtime_configuration)
    if runtime is None or any(a is None or b is None for a, b in content):
        return None
    engine = type(validator._execution_engine)
    return (engine, validator.active_batch_id, catch_exceptions, runtime, tuple(content))


def _memoized_ids(to_id: Callable[..., Any]) -> Callable[..., Any]:
    def memoized_to_id(self: Any, id_keys: Any = None, id_ignore_keys: Any = None) -> Any:
        if not getattr(_STATE, "ids", False) or id_keys is not None or id_ignore_keys is not None:
            return to_id(self, id_keys, id_ignore_keys)
        content = _freeze(self)
        ignored = self._id_ignore_keys
        if content is None or not all(type(k) is str for k in ignored):
            return to_id(self)
        key = (type(self), tuple(sorted(ignored)), content)
        found = _IDS.get(key)
        if found is None:
            if len(_IDS) >= _ID_MEMO_LIMIT:
                _IDS.clear()
            found = _IDS[key] = to_id(self)
        return found

    memoized_to_id.__wrapped__ = to_id  # type: ignore[attr-defined]
    return memoized_to_id


def _freeze(value: Any) -> Any:
    """A hashable copy of ``value`` that is equal for two values only when GX serialises them
    (and ``str`` renders them) the same way; None when ``value`` holds anything else than
    strings, ints, floats, booleans, None, lists, tuples and string-keyed dicts."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return (kind, value)
    if kind is float:
        return (kind, repr(value))
    if kind is list or kind is tuple:
        items = [_freeze(v) for v in value]
        return None if any(i is None for i in items) else (kind, tuple(items))
    if isinstance(value, dict) and kind.__module__.startswith(("builtins", "great_expectations")):
        pairs = []
        for k, v in value.items():
            frozen = _freeze(v)
            if type(k) is not str or frozen is None:
                return None
            pairs.append((k, frozen))
        return (kind, tuple(pairs))
    return None
