"""Why a built set came out empty: the refusal blames what removed the rows, not the filters
when sharing removed everything first."""

from __future__ import annotations

from typing import Any, cast

from lake.curation.empty import why_empty
from lake.curation.manifest import SourceInfo
from lake.curation.spec import parse_spec

SOURCES = {"telemetry": SourceInfo("silver/telemetry", 3, False, 0)}


class _Shared:
    def __init__(self, **counts: int) -> None:
        self._counts = {"tenants": 1, "excluded_tenants": 0, "suppressed_machine_types": 0}
        self._counts.update(counts)

    def counts(self) -> dict[str, int]:
        return self._counts


def _spec(**filters: Any) -> Any:
    return parse_spec(
        {"name": "aw", "purpose": "p", "job": {"name": "anomaly_windows"}, "filters": filters}
    )


def test_no_contract_is_the_cause_and_the_filters_are_not_blamed() -> None:
    text = why_empty(_spec(machine_types=["cnc-mill"]), SOURCES, cast(Any, _Shared(tenants=0)))
    assert text.startswith("no tenant has a sharing contract for purpose 'p'")
    assert "widen them" not in text
    assert "source rows read (after filters and sharing): telemetry=0 rows" in text


def test_rare_types_suppressed_are_the_cause_and_the_filters_are_not_blamed() -> None:
    shared = cast(Any, _Shared(suppressed_machine_types=1))
    text = why_empty(_spec(machine_types=["cnc-mill"]), SOURCES, shared)
    assert text.startswith("1 machine type(s) suppressed as rare")
    assert "widen them" not in text


def test_filters_that_removed_the_rows_are_named() -> None:
    text = why_empty(_spec(machine_types=["cnc-mill"]), SOURCES, cast(Any, _Shared()))
    assert text.startswith("filters machine_types left source rows telemetry=0 rows: widen them")
