"""The exported JSON Schemas accept the good examples, refuse bad ones, and match the baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from maxlake.cli import main
from schemas import (
    EVENT_SCHEMAS,
    EventKind,
    check_against_baseline,
    event_schema_for,
    published_dir,
)
from tests.unit.schemas.events import inspection, machine_event, telemetry, without

GOOD: list[tuple[EventKind, dict[str, Any]]] = [
    (EventKind.TELEMETRY, telemetry()),
    (EventKind.TELEMETRY, without(telemetry(readings=[{"tag": "a", "value": 1.5}]), "reading")),
    (EventKind.TELEMETRY, telemetry(event_time="2026-11-26T11:00:00+01:00", sent_time=None)),
    (EventKind.MACHINE_EVENT, machine_event()),
    (
        EventKind.MACHINE_EVENT,
        machine_event(event_type="ALARM", alarm={"code": "CNC-1002", "severity": 900}),
    ),
    (EventKind.INSPECTION, inspection()),
    (EventKind.INSPECTION, without(inspection(), "defect_codes", "dimensions")),
]

BAD: list[tuple[EventKind, dict[str, Any]]] = [
    (EventKind.TELEMETRY, without(telemetry(), "event_id")),
    (EventKind.TELEMETRY, without(telemetry(), "reading")),
    (EventKind.TELEMETRY, telemetry(readings=[{"tag": "a", "value": 1}])),
    (EventKind.TELEMETRY, telemetry(reading={"tag": "a", "value": "1"})),
    (EventKind.TELEMETRY, telemetry(kind="inspection")),
    (EventKind.TELEMETRY, telemetry(event_time="yesterday")),
    (EventKind.MACHINE_EVENT, machine_event(event_type="ALARM")),
    (EventKind.MACHINE_EVENT, machine_event(state="SLEEPING")),
    (EventKind.INSPECTION, inspection(machines=[])),
    (EventKind.INSPECTION, inspection(result="MAYBE")),
]


def _validator(kind: EventKind) -> Draft202012Validator:
    schema = event_schema_for(kind).json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize(("kind", "event"), GOOD)
def test_good_examples_validate(kind: EventKind, event: dict[str, Any]) -> None:
    errors = [e.message for e in _validator(kind).iter_errors(event)]
    assert errors == []


@pytest.mark.parametrize(("kind", "event"), BAD)
def test_bad_examples_do_not_validate(kind: EventKind, event: dict[str, Any]) -> None:
    assert not _validator(kind).is_valid(event)


def test_export_command_writes_one_document_per_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schemas", "export", "--out", str(tmp_path)]) == 0
    listed = capsys.readouterr().out.split()
    names = sorted(Path(p).name for p in listed)
    assert names == sorted(f"{k.value}.v1.schema.json" for k in EventKind)
    for kind in EventKind:
        doc = json.loads((tmp_path / f"{kind.value}.v1.schema.json").read_text())
        assert doc == EVENT_SCHEMAS[kind].json_schema()


def test_published_baseline_matches_the_current_event_schemas() -> None:
    assert check_against_baseline(published_dir()) == []
    for kind, event_schema in EVENT_SCHEMAS.items():
        published = json.loads((published_dir() / f"{kind.value}.v1.schema.json").read_text())
        assert published == event_schema.json_schema(), (
            "re-run `maxlake schemas export --out schemas/published`"
        )


def test_check_command_fails_on_a_breaking_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schemas", "check"]) == 0
    doc = telemetry_doc_with_extra_field()
    (tmp_path / "telemetry.v1.schema.json").write_text(json.dumps(doc))
    assert main(["schemas", "check", "--baseline", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "telemetry.v1.schema.json:$.line_speed: field removed (or renamed)" in out


def telemetry_doc_with_extra_field() -> dict[str, Any]:
    """A baseline in which telemetry had a field the current event schema no longer has."""
    doc = event_schema_for("telemetry").json_schema()
    doc["properties"]["line_speed"] = {"type": "number"}
    return doc


def test_check_command_reports_a_missing_baseline_directory(tmp_path: Path) -> None:
    assert main(["schemas", "check", "--baseline", str(tmp_path / "nope")]) == 1
