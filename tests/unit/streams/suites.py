"""A too-strict copy of the packaged suites: the telemetry maximum narrowed to a constant."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

from quality import ValidationGateway, default_suites_dir
from schemas import load_registry

NARROWED = "tag_value_not_above_physical_max"


def strict_suites(folder: Path, max_value: float) -> Path:
    """Copy the suites to ``folder`` with ``NARROWED`` replaced by ``value <= max_value``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in default_suites_dir().glob("*.json"):
        shutil.copy(path, folder / path.name)
    suite_path = folder / "telemetry.json"
    suite = json.loads(suite_path.read_text())
    for entry in suite["expectations"]:
        if entry["name"] == NARROWED:
            entry["expectation"] = "ExpectColumnValuesToBeBetween"
            entry["kwargs"] = {"column": "value", "max_value": max_value}
    suite_path.write_text(json.dumps(suite))
    return folder


@cache
def strict_gateway(folder: Path, max_value: float) -> ValidationGateway:
    """A gateway over :func:`strict_suites` (built once per process and arguments)."""
    return ValidationGateway(load_registry(), suites_dir=strict_suites(folder, max_value))
