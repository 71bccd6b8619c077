"""docs/EXTENDING.md, "Add an event kind": every kind is present in each place it must be.

A kind whose module is in ``schemas/events`` but that misses a step fails here naming the step
to do next.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lake.sharing.deid import PREFIXES
from lake.tables import silver_table
from quality import default_suites_dir, load_suites
from schemas import EVENT_SCHEMAS, EventKind, load_registry, published_dir, silver_schema
from schemas.event_schema import COMMON_FIELDS
from schemas.json_schema import schema_file_name
from streams.simulator import Simulator

ENVELOPE_COLUMNS = [*(f.name for f in COMMON_FIELDS), "_msg"]


BUILT_IN = (EventKind.TELEMETRY, EventKind.MACHINE_EVENT, EventKind.INSPECTION)


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_the_kind_is_in_every_place(kind: EventKind) -> None:
    event_schema = EVENT_SCHEMAS.get(kind)
    assert event_schema is not None, (
        f"step 1: no module of schemas/events defines the {kind.value} event schema"
    )
    assert event_schema.kind == kind, (
        f"step 1: the event schema of {kind.value} declares another kind"
    )
    published = published_dir() / schema_file_name(kind, event_schema.version)
    assert published.is_file(), f"step 3: maxlake schemas export --out {published_dir()}"
    assert silver_schema(kind).names, "step 1: the event schema's row_schema is empty"
    body = set(event_schema.row_schema.names) - set(ENVELOPE_COLUMNS)
    for column in event_schema.role_columns():
        assert column in body, f"step 1: {column!r} (a column role) is no body column of {kind}"
    suite = default_suites_dir() / f"{kind.value}.json"
    assert suite.is_file(), f"step 2: write {suite}"
    assert kind in load_suites()
    assert silver_table(kind) == f"silver/{kind.value}"


def test_the_simulator_produces_every_built_in_kind() -> None:
    """``maxlake demo`` shows the built-in kinds; simulating a kind added later is optional."""
    simulator = Simulator(load_registry(), start=datetime(2026, 1, 1, tzinfo=UTC), tick_s=60.0)
    kinds: set[str] = set()
    for event in simulator.events(86400.0):
        kinds.add(event.kind)
        if kinds >= set(BUILT_IN):
            break
    assert kinds >= set(BUILT_IN)


def test_every_identifier_column_has_a_pseudonym_prefix_of_its_own() -> None:
    assert len(set(PREFIXES.values())) == len(PREFIXES), (
        f"step 1: two identifier columns share a pseudonym prefix: {PREFIXES}"
    )
    for event_schema in EVENT_SCHEMAS.values():
        for column, prefix in event_schema.identifier_columns.items():
            assert PREFIXES[column] == prefix, (
                f"step 1: {column!r} of {event_schema.kind.value} is declared with another "
                f"prefix elsewhere ({PREFIXES[column]!r})"
            )
