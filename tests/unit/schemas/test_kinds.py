"""EventKind: a string holding only the kinds the modules of ``schemas/events`` declare."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import EVENT_SCHEMAS, EventKind

REPO = Path(__file__).resolve().parents[3]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def test_the_kinds_are_the_declared_ones_in_order() -> None:
    assert [k.value for k in EventKind] == ["telemetry", "machine_event", "inspection"]
    assert len(EventKind) == 3
    assert list(EVENT_SCHEMAS) == list(EventKind)
    assert EventKind("telemetry") is EventKind.TELEMETRY
    assert EventKind.TELEMETRY == "telemetry"
    assert "inspection" in EventKind
    assert "alarm" not in EventKind


def test_an_undeclared_or_malformed_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'alarm' is not a valid EventKind"):
        EventKind("alarm")
    with pytest.raises(ValueError, match="does not match"):
        EventKind.declare("Energy-Meter")


def test_a_kind_survives_pickling_as_the_same_object() -> None:
    assert pickle.loads(pickle.dumps(EventKind.INSPECTION)) is EventKind.INSPECTION


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        (
            "from schemas.event_schema import EventSchema\n"
            "class A(EventSchema): pass\nclass B(EventSchema): pass\n",
            "defines exactly one EventSchema subclass, found A, B",
        ),
        (
            "from schemas.events.telemetry import TelemetrySchema\n"
            "class Again(TelemetrySchema): pass\n",
            "kind 'telemetry' is already declared by schemas.events.",
        ),
    ],
    ids=["two-schemas", "same-kind"],
)
def test_a_bad_kind_module_stops_the_import_naming_the_file(
    tmp_path: Path, module: str, problem: str
) -> None:
    for package in ("schemas", "maxlake"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=_IGNORE)
    (tmp_path / "schemas" / "events" / "zz_bad.py").write_text(module)
    done = subprocess.run(
        [sys.executable, "-c", "import schemas"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("schemas.errors.EventSchemaModuleError: ")
    assert "zz_bad.py" in last
    assert problem in last
