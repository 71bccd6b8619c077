"""Every kind of configuration file names the exact location of a bad field in its error.

Each case starts from a packaged, valid file, breaks one nested field and expects the one-line
message ``<file>: <location>: <problem>`` with the location written as in the file.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from lake.curation import load_spec
from lake.curation.spec import reference_specs
from lake.sharing import parse_contract
from maxlake.errors import ConfigError
from quality import default_suites_dir, load_suite
from schemas import load_registry
from schemas.registry import default_registry_path
from tests.unit.lake.sharing.helpers import contract_toml


def _toml(path: Path, edit: Any, out: Path) -> Path:
    doc = tomllib.loads(path.read_text())
    edit(doc)
    out.write_text(tomli_w.dumps(doc))
    return out


def _registry(tmp_path: Path) -> str:
    def edit(doc: dict[str, Any]) -> None:
        doc["tenants"][1]["plants"][0]["lines"][0]["machines"][0]["machine_type"] = 7

    path = _toml(default_registry_path(), edit, tmp_path / "registry.toml")
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    return str(info.value)


def _spec(tmp_path: Path) -> str:
    def edit(doc: dict[str, Any]) -> None:
        doc.setdefault("filters", {})["end"] = "yesterday"

    path = _toml(reference_specs()["predictive-maintenance"], edit, tmp_path / "spec.toml")
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    return str(info.value)


def _contract(tmp_path: Path) -> str:
    text = contract_toml().decode().replace('"inspection"]', '"inspection", 7]')
    with pytest.raises(ConfigError) as info:
        parse_contract(text.encode(), source=str(tmp_path / "contract.toml"))
    return str(info.value)


def _suite(tmp_path: Path) -> str:
    doc = json.loads((default_suites_dir() / "telemetry.json").read_text())
    doc["expectations"][3]["level"] = "fatal"
    path = tmp_path / "telemetry.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("make", "file_name", "location"),
    [
        (_registry, "registry.toml", "tenants[1].plants[0].lines[0].machines[0].machine_type"),
        (_spec, "spec.toml", "filters.end"),
        (_contract, "contract.toml", "share.kinds[2]"),
        (_suite, "telemetry.json", "expectations[3].level"),
    ],
    ids=["registry", "dataset-spec", "sharing-contract", "quality-suite"],
)
def test_the_error_names_the_file_and_the_exact_location(
    tmp_path: Path, make: Any, file_name: str, location: str
) -> None:
    message = make(tmp_path)
    assert "\n" not in message
    assert re.match(rf"^{re.escape(str(tmp_path / file_name))}: {re.escape(location)}: ", message)
