"""Property: for any input bytes, decode raises nothing and accounts for each message once."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import EVENT_SCHEMAS, EventKind
from tests.unit.schemas.events import NOW, inspection, machine_event, telemetry

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_templates = {
    EventKind.TELEMETRY: telemetry(),
    EventKind.MACHINE_EVENT: machine_event(),
    EventKind.INSPECTION: inspection(),
}


@st.composite
def _mutated_event(draw: st.DrawFn, kind: EventKind) -> bytes:
    """A valid event of ``kind`` with a few fields replaced, dropped or added."""
    event: dict[str, Any] = dict(_templates[kind])
    keys = sorted(event)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        key = draw(st.sampled_from(keys))
        if action == "replace":
            event[key] = draw(_json_values)
        elif action == "drop":
            event.pop(key, None)
        else:
            event[draw(st.text(max_size=8))] = draw(_json_values)
    return json.dumps(event).encode()


def _messages(kind: EventKind) -> st.SearchStrategy[list[bytes]]:
    one = st.binary(max_size=60) | _mutated_event(kind) | st.just(orjson.dumps(_templates[kind]))
    return st.lists(one, max_size=25)


def _check_accounting(kind: EventKind, messages: list[bytes]) -> None:
    result = EVENT_SCHEMAS[kind].decode(messages, tenant="northwind-auto", now=NOW)
    with_rows = set(result.rows.column("_msg").to_pylist())
    rejected = [r.index for r in result.rejections]
    assert len(rejected) == len(set(rejected))
    assert not [r for r in result.rejections if r.detail.startswith("decoder error")]
    assert with_rows.isdisjoint(rejected)
    assert with_rows | set(rejected) == set(range(len(messages)))
    assert len(result.event_ids) == len(messages)
    assert result.rows.schema == EVENT_SCHEMAS[kind].row_schema
    assert result.rows.column("_msg").to_pylist() == sorted(result.rows.column("_msg").to_pylist())


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_messages(EventKind.TELEMETRY))
def test_telemetry_accounts_for_every_message(messages: list[bytes]) -> None:
    _check_accounting(EventKind.TELEMETRY, messages)


@_SETTINGS
@given(_messages(EventKind.MACHINE_EVENT))
def test_machine_events_account_for_every_message(messages: list[bytes]) -> None:
    _check_accounting(EventKind.MACHINE_EVENT, messages)


@_SETTINGS
@given(_messages(EventKind.INSPECTION))
def test_inspections_account_for_every_message(messages: list[bytes]) -> None:
    _check_accounting(EventKind.INSPECTION, messages)
