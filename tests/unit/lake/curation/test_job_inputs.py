"""JobInputs hands a job its sources by event kind."""

from __future__ import annotations

import polars as pl
import pytest

from lake.curation.job import JobInputs
from schemas import EventKind, UnknownKindError, silver_schema
from tests.unit.lake.curation.conftest import registry_machines, registry_tags, telemetry_frame


def _inputs(sources: dict[EventKind, pl.LazyFrame]) -> JobInputs:
    return JobInputs(sources=sources, machines=registry_machines(), tags=registry_tags())


def test_a_source_is_read_by_kind_or_by_its_name() -> None:
    telemetry = telemetry_frame([("mill-1", 0, "spindle_temp", 40.0)]).lazy()
    inputs = _inputs({EventKind.TELEMETRY: telemetry})

    assert inputs.source("telemetry") is telemetry
    assert inputs.source(EventKind.TELEMETRY) is telemetry


def test_a_kind_without_rows_is_an_empty_frame_of_its_silver_schema() -> None:
    frame = _inputs({}).source("inspection").collect()

    assert frame.height == 0
    assert frame.columns == silver_schema(EventKind.INSPECTION).names


def test_an_unknown_kind_names_the_valid_ones() -> None:
    with pytest.raises(UnknownKindError, match="telemetry"):
        _inputs({}).source("telemetree")
