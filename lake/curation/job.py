"""The contract between the dataset build runner and the feature jobs.

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

__all__ = ["FeatureInfo", "Job", "JobInputs", "JobOutput", "ParamsCheck"]


@dataclass(frozen=True)
class JobInputs:
    """What a job gets.

    Attributes:
        telemetry: ``silver/telemetry`` at its pinned version, filtered by the spec (lazy). One
            row per reading: event_id, tenant, plant, line, machine, event_time (UTC, us),
            tag, value, unit, quality, ...
        machine_events: ``silver/machine_event`` at its pinned version, filtered (lazy):
            event_type STATE|ALARM, state, alarm_code, alarm_severity, ...
        inspections: ``silver/inspection`` at its pinned version, filtered (lazy): part_serial,
            lot, machines (list), process_start, process_end, result, defect_codes, dimensions.
        machines: the registry's machines: tenant, plant, line, machine, machine_type.
        tags: the registry's tag specs: machine_type, tag, unit, min, max, nominal.
        params: the spec's ``[job]`` table (window sizes, horizons, split rules, ...).
    """

    telemetry: pl.LazyFrame
    machine_events: pl.LazyFrame
    inspections: pl.LazyFrame
    machines: pl.DataFrame
    tags: pl.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureInfo:
    """One output column that is a feature: what it means and its unit."""

    name: str
    unit: str
    description: str


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
    """

    splits: dict[str, pl.DataFrame]
    features: list[FeatureInfo]
    label_columns: list[str]
    key_columns: list[str]
    files: dict[str, bytes] = field(default_factory=dict)


Job = Callable[[JobInputs], JobOutput]
"""A feature job: a pure function of its inputs."""


ParamsCheck = Callable[[Mapping[str, Any]], object]
"""Validates a job's ``[job]`` table (raising a ``ConfigError`` that names the key); the build
calls it before it reads any data, so a typo fails in milliseconds, not after a scan."""
