"""Suite files: the packaged ones load, and a bad one stops start-up naming file and entry."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from maxlake.errors import ConfigError
from quality import SuiteError, ValidationGateway, default_suites_dir, load_suites
from quality.suites import suite_json_schema, suite_schema_path
from schemas import EventKind, Registry

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def test_every_kind_has_a_versioned_suite_with_unique_names() -> None:
    suites = load_suites()
    assert set(suites) == set(EventKind)
    for kind, spec in suites.items():
        assert spec.path == default_suites_dir() / f"{kind.value}.json"
        assert SEMVER.fullmatch(spec.suite_version)
        assert {e.level for e in spec.expectations} <= {"drop", "warn", "batch"}
        assert any(e.level == "drop" for e in spec.expectations)


def test_gateway_exposes_the_suite_versions(gateway: ValidationGateway) -> None:
    for kind, spec in load_suites().items():
        assert gateway.suite_version(kind) == spec.suite_version
        assert gateway.suite_version(kind.value) == spec.suite_version


def _suites_with(tmp_path: Path, kind: str, edit: Any) -> Path:
    """A copy of the packaged suites with ``edit(doc)`` applied to ``<kind>.json``."""
    folder = tmp_path / "suites"
    shutil.copytree(default_suites_dir(), folder)
    path = folder / f"{kind}.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return folder


def _first(doc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = doc["expectations"][0]
    return entry


def _build(registry: Registry, folder: Path) -> str:
    with pytest.raises(SuiteError) as info:
        ValidationGateway(registry, suites_dir=folder)
    assert isinstance(info.value, ConfigError)
    return str(info.value)


def test_unknown_expectation_type_names_file_and_entry(tmp_path: Path, registry: Registry) -> None:
    folder = _suites_with(
        tmp_path, "telemetry", lambda d: _first(d).update(expectation="ExpectMagic")
    )
    message = _build(registry, folder)
    assert str(folder / "telemetry.json") in message
    assert "'machine_known'" in message
    assert "unknown expectation type 'ExpectMagic'" in message


def test_bad_level_names_file_and_valid_levels(tmp_path: Path, registry: Registry) -> None:
    folder = _suites_with(tmp_path, "inspection", lambda d: _first(d).update(level="fatal"))
    message = _build(registry, folder)
    assert str(folder / "inspection.json") in message
    assert "unknown level 'fatal'; valid levels: drop, warn, batch" in message


def test_row_level_needs_a_map_expectation(tmp_path: Path, registry: Registry) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["expectations"][-1]["level"] = "drop"  # the batch-level BAD share

    message = _build(registry, _suites_with(tmp_path, "telemetry", edit))
    assert "bad_quality_share_at_most_5pct" in message
    assert "use level 'batch'" in message


def test_unknown_placeholder_lists_the_known_ones(tmp_path: Path, registry: Registry) -> None:
    def edit(doc: dict[str, Any]) -> None:
        _first(doc)["kwargs"]["value_set"] = "$registry.machine_ids"

    message = _build(registry, _suites_with(tmp_path, "machine_event", edit))
    assert "unknown placeholder '$registry.machine_ids'" in message
    assert "$registry.machine_keys" in message


def test_kwargs_rejected_by_gx_are_named(tmp_path: Path, registry: Registry) -> None:
    folder = _suites_with(tmp_path, "telemetry", lambda d: _first(d)["kwargs"].pop("column"))
    message = _build(registry, folder)
    assert "invalid kwargs for ExpectColumnValuesToBeInSet" in message


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d.update(suite_version="1.0"), "suite_version: must be a semver string"),
        (lambda d: d.pop("suite_version"), "suite_version: is required"),
        (lambda d: d.update(expectations=[]), "expectations: must be a non-empty array"),
        (lambda d: d.update(owner="me"), "owner: unknown key (allowed: suite_version,"),
        (lambda d: _first(d).update(name="Machine Known"), "expectations[0].name: must be snake"),
        (
            lambda d: _first(d).update(kwargs={"result_format": "COMPLETE"}),
            "expectations[0].kwargs: 'result_format' is set by the gateway",
        ),
        (lambda d: _first(d).update(levle="drop"), "expectations[0].levle: unknown key"),
        (lambda d: d["expectations"][2].update(level=3), "expectations[2].level: unknown level 3"),
        (lambda d: d.update(expectations={}), "expectations: input should be a valid list"),
        (lambda d: d["expectations"].append(_first(d)), "].name: duplicate name 'machine_known'"),
    ],
)
def test_structural_errors_are_named_without_gx(tmp_path: Path, edit: Any, fragment: str) -> None:
    folder = _suites_with(tmp_path, "telemetry", edit)
    with pytest.raises(SuiteError, match=re.escape(fragment)) as info:
        load_suites(folder)
    assert info.value.path == str(folder / "telemetry.json")


def test_the_published_json_schema_is_current_and_accepts_the_packaged_suites() -> None:
    published = json.loads(suite_schema_path().read_text())
    assert published == json.loads(json.dumps(suite_json_schema())), (
        "quality/suite.schema.json is stale: write quality.suites.suite_json_schema() to it"
    )
    validator = jsonschema.Draft202012Validator(published)
    for path in sorted(default_suites_dir().glob("*.json")):
        validator.validate(json.loads(path.read_text()))
    assert not validator.is_valid({"suite_version": "1", "expectations": []})


def test_missing_or_stray_suite_files_are_named(tmp_path: Path) -> None:
    folder = _suites_with(tmp_path, "telemetry", lambda d: None)
    (folder / "inspection.json").unlink()
    with pytest.raises(SuiteError, match=r"inspection\.json: missing"):
        load_suites(folder)
    (folder / "inspection.json").write_text("{")
    with pytest.raises(SuiteError, match="not valid JSON"):
        load_suites(folder)
    (folder / "inspection.json").unlink()
    shutil.copy(default_suites_dir() / "telemetry.json", folder / "inspection.json")
    (folder / "telemetrie.json").write_text("{}")
    with pytest.raises(SuiteError, match=r"telemetrie\.json: not a suite name"):
        load_suites(folder)


def test_unknown_column_lists_row_and_derived_columns(tmp_path: Path, registry: Registry) -> None:
    folder = _suites_with(
        tmp_path, "telemetry", lambda d: _first(d)["kwargs"].update(column="mach")
    )
    message = _build(registry, folder)
    assert "unknown column(s) mach" in message
    assert "machine_key" in message
    assert "quality" in message
