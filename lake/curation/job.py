"""The interface between the dataset build runner and the feature jobs.

A *job* is a pure function from pinned, filtered source frames to split tables. The runner
(:mod:`lake.curation.build`) resolves the spec, pins every source table to a Delta version,
applies the spec's filters, calls the job, then writes the splits, the manifest and the content
hash. Jobs never read or write the lake themselves, which keeps them testable on small frames and
reproducible: the same inputs give the same outputs, row order included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from schemas import EventKind, event_schema_for, silver_schema

__all__ = ["FeatureInfo", "Job", "JobInputs", "JobOutput", "LabelInfo", "ParamsCheck"]


@dataclass(frozen=True)
class JobInputs:
    """What a job gets.

    Attributes:
        sources: event kind -> its silver table at the pinned version, filtered by the spec
            (lazy; one per kind, :data:`schemas.EVENT_SCHEMAS`). Read them with :meth:`source`.
            ``telemetry`` has one row per reading: event_id, tenant, plant, line, machine,
            event_time (UTC, us), tag, value, unit, quality, ...; ``machine_event``:
            event_type STATE|ALARM, state, alarm_code, alarm_severity, ...; ``inspection``:
            part_serial, lot, machines (list), process_start, process_end, result,
            defect_codes, dimensions. The columns of a kind are ``schemas.silver_schema(kind)``.
        machines: the registry's machines: tenant, plant, line, machine, machine_type.
        tags: the registry's tag specs of the machine types the spec selects
            (``filters.machine_types``; every type when unset): machine_type, tag, unit, min,
            max, nominal. A job's feature columns come from these, never from the rows.
        params: the spec's ``[job]`` table (window sizes, horizons, split rules, ...).
        time_shifts: tenant, plant (named as in ``sources``) and ``shift_us`` (Int64): the
            keyed time shift a sharing contract applied to every time of the plant's rows
            (a source time is lake time + ``shift_us``). None, or a plant not listed: 0.
            For a job's pinned split cuts, which are in lake time (``cut + shift_us`` is the
            plant's cut in the sources' clock); never write these values into an output.
    """

    sources: Mapping[EventKind, pl.LazyFrame]
    machines: pl.DataFrame
    tags: pl.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    time_shifts: pl.DataFrame | None = field(default=None, repr=False)

    def source(self, kind: EventKind | str) -> pl.LazyFrame:
        """The rows of ``kind`` (``"telemetry"``, ``EventKind.INSPECTION``, ...), lazy; an
        empty frame of the kind's silver schema when the inputs hold none.

        Raises:
            UnknownKindError: (a ``ConfigError``) ``kind`` names no event kind; lists the
                valid ones.
        """
        known = event_schema_for(kind).kind
        frame = self.sources.get(known)
        if frame is not None:
            return frame
        empty = pl.from_arrow(silver_schema(known).empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty.lazy()


@dataclass(frozen=True)
class FeatureInfo:
    """One output column that is a feature: what it means and its unit."""

    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class LabelInfo:
    """What a label column promises; the build's output checks are derived from it.

    Attributes:
        column: the label column.
        nullable: nulls are valid (for example no defect code for a PASS
            part); otherwise a null label blocks publishing.
        null_splits: splits where nulls are valid although the label is
            otherwise not nullable (the ``score`` split of a remaining-useful-life set: its
            machines have not failed yet); a null in any other split blocks publishing.
        values: the valid values of a categorical label (checked, blocking).
        min_classes: at least this many distinct values over all splits (blocking; a binary
            label with one class teaches nothing), and in each required split that holds rows
            (advisory: a validation split of one class gives no AUC).
        min_class_share: every value of ``values`` should make at least this share of the
            non-null rows (advisory: recorded as a warning, the class balance is in the
            manifest's label distributions).
        min_value: smallest valid value of a numeric label (blocking).
        max_value: largest valid value of a numeric label (blocking).
        unit: unit of a numeric label (``cycles``), shown with its statistics by
            ``datasets show``; None for a categorical one.
    """

    column: str
    nullable: bool = False
    null_splits: tuple[str, ...] = ()
    values: tuple[Any, ...] | None = None
    min_classes: int | None = None
    min_class_share: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    unit: str | None = None


@dataclass(frozen=True)
class JobOutput:
    """What a job returns.

    Attributes:
        splits: split name (``train``, ``validation``, ``test``) -> rows, sorted
            deterministically (the content hash depends on row order).
        features: every feature column with its unit.
        label_columns: the label column(s).
        key_columns: columns that identify a row (machine, window start, part serial, ...).
        files: extra artefacts written next to the splits (for example normalisation
            statistics as JSON bytes); included in the content hash.
        labels: the declared labels; a label column without one is checked as not null.
        meta: job facts for the manifest's ``job_meta`` (JSON-ready, for example the split
            cut instants).
        required_splits: splits that must hold rows (an empty one blocks publishing: a model
            team cannot validate or test on it); None: every split named ``train``,
            ``validation`` or ``test`` the job returns. A split with a share of 0 is left out.
        split_hints: split -> why it came out empty and what to change (the span of data it
            needs, the share to raise); quoted by the ``split_rows`` check.
    """

    splits: dict[str, pl.DataFrame]
    features: list[FeatureInfo]
    label_columns: list[str]
    key_columns: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    labels: list[LabelInfo] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    required_splits: tuple[str, ...] | None = None
    split_hints: dict[str, str] = field(default_factory=dict)

    def all_labels(self) -> list[LabelInfo]:
        """One per label column: the declared one, else "not null"."""
        declared = {c.column: c for c in self.labels}
        return [declared.get(c, LabelInfo(c)) for c in self.label_columns]

    def splits_required(self) -> tuple[str, ...]:
        """The splits that must hold rows (:attr:`required_splits`, else every returned
        ``train``, ``validation`` and ``test``)."""
        if self.required_splits is not None:
            return self.required_splits
        return tuple(s for s in ("train", "validation", "test") if s in self.splits)


Job = Callable[[JobInputs], JobOutput]
"""A feature job: a pure function of its inputs."""


ParamsCheck = Callable[[Mapping[str, Any]], object]
"""Validates a job's ``[job]`` table (raising a ``ConfigError`` that names the key); the build
calls it before it reads any data, so a typo fails in milliseconds, not after a scan."""
