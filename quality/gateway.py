"""The validation gateway: one call per micro-batch, one verdict per row.

The ingest worker decodes a micro-batch into rows, then asks :meth:`ValidationGateway.validate`
which rows go to silver and which to quarantine (and why). The gateway keeps everything that
is expensive out of the per-batch path: GX is imported, its context built and every suite
instantiated once, in the constructor. Per batch it derives the registry columns the suite
reads (vectorised Arrow), converts only the columns GX needs to pandas, runs the suite once and
turns GX's row indices into a boolean mask.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lake.gx_runtime import runtime
from quality import _gx
from quality.enrich import DERIVED_COLUMNS, RegistryIndex, derive_columns, raw_columns_needed
from quality.errors import RowsSchemaError, SuiteError, ValidationFailed
from quality.suites import SuiteSpec, load_suites
from quality.unit_conversion import convert_units
from schemas import EventKind, Registry, UnknownKindError, event_schema_for

__all__ = ["BatchCheck", "RegistrySource", "ValidationGateway", "Verdict"]


class RegistrySource(Protocol):
    """Where the gateway gets the asset registry from before each batch (a live, versioned
    registry such as ``lake.registry_store.LiveRegistry``)."""

    def snapshot(self) -> tuple[int | None, Registry]:
        """``(registry version or None, registry)``; cheap when nothing changed."""
        ...


@dataclass(frozen=True, slots=True)
class BatchCheck:
    """Outcome of one ``batch`` level expectation.

    Attributes:
        success: the batch meets the expectation.
        observed_value: what GX measured (e.g. the share of BAD readings); None for an empty
            batch.
    """

    success: bool
    observed_value: Any


@dataclass(frozen=True)
class Verdict:
    """What to do with each row of one batch, and the batch-level findings.

    Attributes:
        kind: event kind of the batch.
        suite_name: ``maxlake.<kind>``.
        suite_version: semver of the suite file that judged the batch.
        drop: one bool per input row; True = the row must go to quarantine.
        drop_reasons: per input row, names of the failed ``drop`` expectations in suite order
            (empty for kept rows).
        warn_counts: every ``warn`` expectation name -> number of failing rows (kept).
        batch_results: every ``batch`` expectation name -> :class:`BatchCheck`.
        failed_expectations: names of every expectation that failed, any level, suite order.
            A row-level expectation fails when any row fails it.
        duration_s: wall time of :meth:`ValidationGateway.validate`.
        registry_version: the registry version the batch was checked against (None when the
            registry is a file or an in-memory object).
        drop_explained: per input row, ``(reason, detail)`` for each failed ``drop``
            expectation: the suite's ``reason`` (e.g. ``unknown_machine``) and its ``detail``
            template filled from the row (naming the offending value and its field).
    """

    kind: str
    suite_name: str
    suite_version: str
    drop: npt.NDArray[np.bool_]
    drop_reasons: list[tuple[str, ...]]
    warn_counts: dict[str, int]
    batch_results: dict[str, BatchCheck]
    failed_expectations: tuple[str, ...]
    duration_s: float
    registry_version: int | None = None
    drop_explained: list[tuple[tuple[str, str], ...]] | None = None

    @property
    def dropped(self) -> int:
        """Number of rows that go to quarantine."""
        return int(self.drop.sum())


@dataclass(frozen=True, slots=True)
class _LoadedSuite:
    spec: SuiteSpec
    gx_suite: Any
    columns: tuple[str, ...]
    raw_columns: frozenset[str]
    detail_columns: tuple[str, ...]
    categorical: frozenset[str]


class ValidationGateway:
    """Validates micro-batches of decoded rows against the suite of their event kind.

    Build one per process (the GX context is process-wide anyway) and call :meth:`validate`
    from one thread at a time; calls are serialised internally.
    """

    def __init__(
        self, registry: Registry | RegistrySource, *, suites_dir: Path | None = None
    ) -> None:
        """Load every suite and build its GX objects once.

        Args:
            registry: the asset registry that ``$registry.*`` placeholders and the derived
                columns (machine types, tag ranges, alarm and defect codes) come from; a
                :class:`RegistrySource` is asked before every batch, and a new version
                rebuilds the registry lookups and the suites (milliseconds) once.
            suites_dir: folder holding one ``<kind>.json`` per event kind; default the
                packaged ``quality/suites``.

        Raises:
            SuiteError: (a ``ConfigError``) naming the file and entry of an invalid suite,
                including a column that is neither in the kind's row schema nor derived.
        """
        self._source = registry if not isinstance(registry, Registry) else None
        version, current = (
            (None, registry) if isinstance(registry, Registry) else registry.snapshot()
        )
        self._runtime = runtime()
        self._specs = load_suites(suites_dir)
        self._converted: tuple[pa.Table, RegistryIndex, dict[str, pa.Array]] | None = None
        self._use(version, current)

    def _use(self, version: int | None, registry: Registry) -> None:
        self._index = RegistryIndex(registry)
        self._registry = registry
        self.registry_version = version
        self._suites: Mapping[EventKind, _LoadedSuite] = MappingProxyType(
            {kind: self._load(spec) for kind, spec in self._specs.items()}
        )

    def refresh(self) -> None:
        """Switch to the source's newest registry version, if it changed."""
        if self._source is None:
            return
        version, registry = self._source.snapshot()
        if version != self.registry_version or registry is not self._registry:
            self._use(version, registry)

    @property
    def registry(self) -> Registry:
        """The registry the next batch is checked against (after :meth:`refresh`)."""
        return self._registry

    def _load(self, spec: SuiteSpec) -> _LoadedSuite:
        _check_columns(spec, frozenset(event_schema_for(spec.kind).row_schema.names))
        gx_suite = _gx.build_suite(spec, self._index.placeholders)
        columns = spec.columns()
        details = tuple(dict.fromkeys(c for e in spec.expectations for c in e.detail_columns()))
        raw = raw_columns_needed(spec.kind, columns)
        return _LoadedSuite(spec, gx_suite, columns, raw, details, _gx.category_columns(spec))

    @property
    def suites(self) -> Mapping[EventKind, SuiteSpec]:
        """The loaded suite specs by kind."""
        return MappingProxyType({k: s.spec for k, s in self._suites.items()})

    @property
    def gx_context(self) -> Any:
        """The process-wide ephemeral GX context (for inspection; do not add names to it)."""
        return self._runtime.context

    def convert_units(self, kind: EventKind | str, rows: pa.Table) -> pa.Table:
        """Telemetry rows with convertible readings in their tag's registry unit (see
        :mod:`quality.unit_conversion`); other kinds unchanged. Call before :meth:`validate`."""
        if EventKind(kind) is not EventKind.TELEMETRY:
            return rows
        self.refresh()
        keys: dict[str, pa.Array] = {}
        converted = convert_units(rows, self._index, self._registry.unit_system(), keys=keys)
        # The registry key columns derived here are derived again by validate() (~25 ms per
        # 217,000 rows) unless it gets these very rows under the same registry.
        self._converted = (converted, self._index, keys)
        return converted

    def suite_version(self, kind: EventKind | str) -> str:
        """The ``suite_version`` of the suite that validates ``kind``."""
        return self._suite(kind).spec.suite_version

    def validate(self, kind: EventKind | str, rows: pa.Table) -> Verdict:
        """Judge every row of one micro-batch.

        Args:
            kind: event kind of the rows.
            rows: decoded rows (``DecodeResult.rows``); extra columns are ignored.

        Returns:
            The verdict; ``drop`` and ``drop_reasons`` are aligned with ``rows``.

        Raises:
            UnknownKindError: ``kind`` is not an event kind.
            RowsSchemaError: ``rows`` lacks columns the suite reads (terminal).
            ValidationFailed: GX (or the preparation of its input) failed; no verdict is
                given. Transient: the caller may bisect the batch.
        """
        started = time.perf_counter()
        self.refresh()
        converted, self._converted = self._converted, None
        keys = None
        if converted is not None and converted[0] is rows and converted[1] is self._index:
            keys = converted[2]
        suite = self._suite(kind)
        spec = suite.spec
        missing = suite.raw_columns - set(rows.column_names)
        if missing:
            raise RowsSchemaError(spec.kind.value, sorted(missing))
        n = rows.num_rows
        if n == 0:
            outcomes: dict[str, _gx.Outcome] = {
                e.name: _gx.Outcome(True, np.empty(0, np.int64), None) for e in spec.expectations
            }
        else:
            outcomes = self._run(suite, rows, keys)
        verdict = _verdict(spec, n, outcomes, time.perf_counter() - started)
        explained = self._explain(suite, rows, verdict)
        return replace(
            verdict,
            registry_version=self.registry_version,
            drop_explained=explained,
            duration_s=time.perf_counter() - started,
        )

    def _explain(
        self, suite: _LoadedSuite, rows: pa.Table, verdict: Verdict
    ) -> list[tuple[tuple[str, str], ...]]:
        """``(reason, detail)`` per failed drop expectation of each dropped row."""
        out: list[tuple[tuple[str, str], ...]] = [()] * verdict.drop.size
        dropped = np.flatnonzero(verdict.drop)
        if dropped.size == 0:
            return out
        by_name = {e.name: e for e in suite.spec.expectations}
        present = set(rows.column_names)
        kind = suite.spec.kind
        columns = tuple(
            c for c in suite.detail_columns if raw_columns_needed(kind, (c,)) <= present
        )
        values = derive_columns(
            suite.spec.kind, rows.take(pa.array(dropped)), columns, self._index
        ).to_pylist()
        where = f" (registry version {self.registry_version})" if self.registry_version else ""
        for row, row_values in zip(dropped.tolist(), values, strict=True):
            found = []
            for name in verdict.drop_reasons[row]:
                entry = by_name[name]
                detail = f"failed {name}"
                if entry.detail:
                    try:
                        fields = {**entry.kwargs, **row_values}
                        detail = entry.detail.format_map(_Unknown(fields)) + where
                    except (KeyError, ValueError, IndexError, TypeError) as exc:
                        detail = f"failed {name} ({type(exc).__name__} in its detail)"
                found.append((entry.reason or name, detail))
            out[row] = tuple(found)
        return out

    def _run(
        self, suite: _LoadedSuite, rows: pa.Table, keys: dict[str, pa.Array] | None
    ) -> dict[str, _gx.Outcome]:
        kind = suite.spec.kind
        try:
            table = derive_columns(
                kind, rows, suite.columns, self._index, dictionary=suite.categorical, keys=keys
            )
            frame = _gx.frame_for_gx(table, suite.categorical)
            return _gx.run_suite(suite.gx_suite, frame, kind=kind.value)
        except ValidationFailed:
            raise
        except Exception as exc:
            raise ValidationFailed(
                kind.value, rows.num_rows, f"{type(exc).__name__}: {exc}"
            ) from exc

    def _suite(self, kind: EventKind | str) -> _LoadedSuite:
        try:
            return self._suites[EventKind(kind)]
        except ValueError:
            raise UnknownKindError(kind, [k.value for k in EventKind]) from None


class _Unknown(dict[str, Any]):
    """Row values for a detail template; a column the rows lack shows as ""."""

    def __missing__(self, key: str) -> str:
        return ""


def _verdict(spec: SuiteSpec, n: int, outcomes: Mapping[str, _gx.Outcome], took: float) -> Verdict:
    drop = np.zeros(n, dtype=np.bool_)
    reasons: dict[int, list[str]] = {}
    warn_counts: dict[str, int] = {}
    batch_results: dict[str, BatchCheck] = {}
    failed: list[str] = []
    for entry in spec.expectations:
        out = outcomes[entry.name]
        if entry.level == "batch":
            batch_results[entry.name] = BatchCheck(out.success, out.observed_value)
            if not out.success:
                failed.append(entry.name)
            continue
        bad = out.unexpected_rows if out.unexpected_rows is not None else np.empty(0, np.int64)
        if bad.size or not out.success:
            failed.append(entry.name)
        if entry.level == "warn":
            warn_counts[entry.name] = int(bad.size)
            continue
        drop[bad] = True
        for row in bad.tolist():
            reasons.setdefault(row, []).append(entry.name)
    empty: tuple[str, ...] = ()
    drop_reasons = [empty] * n
    for row, names in reasons.items():
        drop_reasons[row] = tuple(names)
    return Verdict(
        kind=spec.kind.value,
        suite_name=spec.suite_name,
        suite_version=spec.suite_version,
        drop=drop,
        drop_reasons=drop_reasons,
        warn_counts=warn_counts,
        batch_results=batch_results,
        failed_expectations=tuple(failed),
        duration_s=took,
    )


def _check_columns(spec: SuiteSpec, row_columns: frozenset[str]) -> None:
    """Raise :class:`SuiteError` when ``spec`` reads a column that is neither in
    ``row_columns`` (the event schema's row schema) nor a derived column of its kind."""
    known = row_columns | DERIVED_COLUMNS[spec.kind]
    for entry in spec.expectations:
        unknown = [c for c in (*entry.columns(), *entry.detail_columns()) if c not in known]
        if unknown:
            raise SuiteError(
                str(spec.path),
                f"expectation {entry.name!r}",
                f"unknown column(s) {', '.join(unknown)}; row columns and derived columns "
                f"of {spec.kind.value}: {', '.join(sorted(known))}",
            )
