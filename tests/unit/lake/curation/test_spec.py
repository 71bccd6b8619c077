"""Spec files: what is accepted, what is rejected and how the error reads, and the hash."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from lake.curation import SpecError, load_spec, parse_spec, spec_hash
from lake.curation.jobs import JOBS as REFERENCE_JOBS
from lake.curation.spec import (
    published_schema_path,
    reference_specs,
    resolve_spec,
    spec_json_schema,
)

JOBS = ("anomaly_windows", "part_quality", "predictive_maintenance")

GOOD = """
name = "pm-cnc"
description = "CNC spindles"
purpose = "predictive-maintenance"

[job]
name = "predictive_maintenance"
window = "1h"
horizon = "24h"

[sources]
telemetry = 12

[filters]
tenants = ["northwind-auto"]
machine_types = ["cnc_mill"]
start = "2026-01-01T00:00:00Z"
end = 2026-02-01T01:00:00+01:00

[output]
format = "parquet"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_a_full_spec_parses(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD), jobs=JOBS)
    assert spec.name == "pm-cnc"
    assert spec.job == "predictive_maintenance"
    assert dict(spec.params) == {"window": "1h", "horizon": "24h"}
    assert dict(spec.sources) == {"telemetry": 12}
    assert spec.filters.tenants == ("northwind-auto",)
    assert spec.filters.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert spec.filters.end == datetime(2026, 2, 1, tzinfo=UTC)
    assert spec.path == str(tmp_path / "spec.toml")


def test_the_job_string_with_a_params_table_is_the_same_spec(tmp_path: Path) -> None:
    other = GOOD.replace(
        '[job]\nname = "predictive_maintenance"', 'job = "predictive_maintenance"\n[params]'
    )
    assert (
        load_spec(_write(tmp_path, other), jobs=JOBS).to_dict()
        == load_spec(_write(tmp_path, GOOD), jobs=JOBS).to_dict()
    )


def test_hash_ignores_layout_and_time_notation_but_not_meaning(tmp_path: Path) -> None:
    base = spec_hash(load_spec(_write(tmp_path, GOOD)))
    reordered = GOOD.replace(
        'tenants = ["northwind-auto"]\nmachine_types = ["cnc_mill"]',
        '# a comment\nmachine_types = [ "cnc_mill" ]\ntenants = ["northwind-auto"]',
    ).replace('"2026-01-01T00:00:00Z"', "2026-01-01T01:00:00+01:00")
    assert spec_hash(load_spec(_write(tmp_path, reordered))) == base
    changed = GOOD.replace('horizon = "24h"', 'horizon = "12h"')
    assert spec_hash(load_spec(_write(tmp_path, changed))) != base


def test_canonical_form_round_trips(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD), jobs=JOBS)
    again = parse_spec(spec.to_dict(), jobs=JOBS)
    assert spec_hash(again) == spec_hash(spec)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("pm-cnc", "../etc"), r"name: '\.\./etc' does not match"),
        (("pm-cnc", "PM cnc"), "name: 'PM cnc' does not match"),
        (
            ('name = "predictive_maintenance"', 'name = "pm"'),
            r"job: unknown job 'pm' \(valid: anomaly_windows, part_quality, predictive_m",
        ),
        (
            ("telemetry = 12", "telemetry = -1"),
            r"sources\.telemetry: must be a Delta table version",
        ),
        (
            ("telemetry = 12", "telemtry = 1"),
            r"sources\.telemtry: unknown source \(did you mean telemetry\?\) "
            r"\(valid: telemetry, machine_event, inspection\)",
        ),
        (
            ("telemetry = 12", 'telemetry = "12"'),
            r"sources\.telemetry: must be a Delta table version",
        ),
        (
            ("tenants =", "tenant ="),
            r"filters\.tenant: unknown key \(did you mean tenants\?\) "
            r"\(valid: tenants, plants, machine_types, start, end\)",
        ),
        (
            ('start = "2026-01-01T00:00:00Z"', 'start = "2026-01-01T00:00:00"'),
            r"filters\.start: 2026-01-01T00:00:00 has no offset",
        ),
        (
            ('start = "2026-01-01T00:00:00Z"', 'start = "yesterday"'),
            r"filters\.start: 'yesterday' is not an RFC 3339 time",
        ),
        (
            ('start = "2026-01-01T00:00:00Z"', 'start = "2026-03-01T00:00:00Z"'),
            r"filters\.end: must be after filters\.start",
        ),
        (
            ('machine_types = ["cnc_mill"]', "machine_types = []"),
            r"filters\.machine_types: must be a non-empty array",
        ),
        (
            ('format = "parquet"', 'format = "csv"'),
            r"output\.format: 'csv' is not supported \(valid: parquet\)",
        ),
        (('purpose = "predictive-maintenance"', ""), "purpose: is required"),
        (('purpose = "predictive-maintenance"', 'purpose = " "'), "purpose: must be a non-empty"),
        (
            ('name = "predictive_maintenance"', 'nme = "x"'),
            r"job\.name: must be a non-empty string, got None",
        ),
        (
            ('tenants = ["northwind-auto"]', 'tenants = ["ok", "not ok"]'),
            r"filters\.tenants: 'not ok'",
        ),
        (
            ('description = "CNC spindles"', 'descripton = "x"'),
            r"descripton: unknown key \(did you mean description\?\) \(valid: name, description",
        ),
    ],
)
def test_invalid_specs_name_the_file_and_key(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, GOOD.replace(*edit, 1))
    with pytest.raises(SpecError, match=message) as info:
        load_spec(path, jobs=JOBS)
    assert str(info.value).startswith(f"{path}: ")


def test_unreadable_and_non_toml_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file: cannot read"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match="file: not valid TOML"):
        load_spec(_write(tmp_path, "name = "))


def test_params_and_job_table_together_are_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"params: give parameters in \[job\] or \[params\]"):
        load_spec(_write(tmp_path, GOOD + "\n[params]\nx = 1\n"))


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[4].joinpath("lake/curation/specs").glob("*.toml"))
)
def test_the_reference_specs_are_valid(path: Path) -> None:
    spec = load_spec(path, jobs=REFERENCE_JOBS)
    assert spec.job in REFERENCE_JOBS


def test_the_published_json_schema_is_current_and_accepts_the_reference_specs() -> None:
    published = json.loads(published_schema_path().read_text())
    assert published == json.loads(json.dumps(spec_json_schema())), (
        "spec.schema.json is stale: run lake.curation.spec.write_published_schema()"
    )
    validator = jsonschema.Draft202012Validator(published)
    specs = sorted(Path(__file__).parents[4].joinpath("lake/curation/specs").glob("*.toml"))
    assert specs
    for path in specs:
        validator.validate(tomllib.loads(path.read_text()))
    bad = tomllib.loads(
        GOOD.replace("tenants =", "tenant =").replace("end = 2026-02-01T01:00:00+01:00", "")
    )
    assert not validator.is_valid(bad)


def test_a_value_of_the_wrong_shape_names_its_location() -> None:
    doc = {"name": "x", "purpose": "p", "job": "predictive_maintenance", "filters": 3}
    with pytest.raises(SpecError, match="<spec>: filters: must be a table, got int"):
        parse_spec(doc)
    doc["filters"] = {"start": "2026-01-01T00:00:00Z", "end": 7}
    with pytest.raises(SpecError, match=r"filters\.end: must be an RFC 3339 time"):
        parse_spec(doc)


def test_reference_specs_resolve_by_name(tmp_path: Path) -> None:
    assert set(reference_specs()) >= {"predictive-maintenance", "part-quality", "anomaly-windows"}
    assert resolve_spec("predictive-maintenance").name == "predictive_maintenance.toml"
    assert resolve_spec("part_quality").name == "part_quality.toml"
    own = _write(tmp_path, GOOD)
    assert resolve_spec(own) == own
    with pytest.raises(SpecError, match=r"no such file, and not a reference dataset name .*part-q"):
        resolve_spec("predictive-maintenence")
