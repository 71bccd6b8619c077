"""check_compatibility: what may change in a published event schema and what breaks plants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from schemas import check_compatibility, event_schema_for

Doc = dict[str, Any]


def _telemetry() -> Doc:
    return event_schema_for("telemetry").json_schema()


def _reading(doc: Doc) -> Doc:
    reading: Doc = doc["properties"]["readings"]["items"]
    return reading


def _changed(edit: Callable[[Doc], None]) -> tuple[Doc, Doc]:
    old = _telemetry()
    new = copy.deepcopy(old)
    edit(new)
    return old, new


def _add_optional(doc: Doc) -> None:
    doc["properties"]["firmware"] = {"type": "string"}


def _widen_enum(doc: Doc) -> None:
    _reading(doc)["properties"]["quality"]["enum"].append("SUBSTITUTED")


def _integer_to_number(doc: Doc) -> None:
    doc["properties"]["schema_version"]["type"] = "number"


@pytest.mark.parametrize("edit", [_add_optional, _widen_enum, _integer_to_number])
def test_compatible_changes(edit: Callable[[Doc], None]) -> None:
    assert check_compatibility(*_changed(edit)) == []


def _remove(doc: Doc) -> None:
    del _reading(doc)["properties"]["unit"]


def _rename(doc: Doc) -> None:
    doc["properties"]["asset"] = doc["properties"].pop("machine")
    doc["required"] = ["asset" if r == "machine" else r for r in doc["required"]]


def _retype(doc: Doc) -> None:
    _reading(doc)["properties"]["value"]["type"] = "string"


def _require(doc: Doc) -> None:
    doc["required"].append("sent_time")


def _narrow_enum(doc: Doc) -> None:
    _reading(doc)["properties"]["quality"]["enum"].remove("UNCERTAIN")


def _shrink(doc: Doc) -> None:
    doc["properties"]["readings"]["maxItems"] = 100


CASES = [
    (_remove, [("$.readings[*].unit", "field removed (or renamed)")]),
    (_rename, [("$.machine", "field removed (or renamed)"), ("$.asset", "new required field")]),
    (_retype, [("$.readings[*].value", 'type changed from "number" to "string"')]),
    (_require, [("$.sent_time", "optional field became required")]),
    (_narrow_enum, [("$.readings[*].quality", 'enum narrowed: ["UNCERTAIN"] removed')]),
    (_shrink, [("$.readings", "maxItems decreased from 1000 to 100")]),
]


@pytest.mark.parametrize(("edit", "expected"), CASES)
def test_breaking_changes_name_path_and_problem(
    edit: Callable[[Doc], None], expected: list[tuple[str, str]]
) -> None:
    found = check_compatibility(*_changed(edit))
    assert [(i.path, i.problem) for i in found] == expected
    assert str(found[0]) == f"{expected[0][0]}: {expected[0][1]}"


def test_nested_object_in_single_reading_is_checked_too() -> None:
    old, new = _changed(lambda d: d["properties"]["reading"]["required"].append("unit"))
    assert [i.path for i in check_compatibility(old, new)] == ["$.reading.unit"]


def test_identical_documents_are_compatible() -> None:
    for kind in ("telemetry", "machine_event", "inspection"):
        doc = event_schema_for(kind).json_schema()
        assert check_compatibility(doc, copy.deepcopy(doc)) == []
