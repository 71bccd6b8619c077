"""docs/EXTENDING.md, "Add an expectation": the documented entry, added as written, drops rows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from quality import ValidationGateway, default_suites_dir
from schemas import Registry
from tests.unit.quality.rows import telemetry

DOC = Path(__file__).resolve().parents[3] / "docs" / "EXTENDING.md"


def _documented_entry() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Add an expectation") :]
    match = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert match, "no json block in the 'Add an expectation' section"
    entry: dict[str, Any] = json.loads(match.group(1))
    return entry


def test_the_documented_expectation_drops_the_rows_it_names(
    tmp_path: Path, registry: Registry
) -> None:
    folder = tmp_path / "suites"
    shutil.copytree(default_suites_dir(), folder)
    path = folder / "telemetry.json"
    suite = json.loads(path.read_text())
    entry = _documented_entry()
    suite["expectations"].append(entry)
    suite["suite_version"] = "99.0.0"
    path.write_text(json.dumps(suite))

    gateway = ValidationGateway(registry, suites_dir=folder)
    verdict = gateway.validate("telemetry", telemetry({}, {"tag": "t" * 33}, {}))

    assert gateway.suite_version("telemetry") == "99.0.0"
    assert [entry["name"] in reasons for reasons in verdict.drop_reasons] == [False, True, False]
    assert verdict.drop.tolist() == [False, True, False]
