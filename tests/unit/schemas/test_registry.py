"""The packaged asset registry loads, its Arrow views agree with it, and bad files are named."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from maxlake.errors import ConfigError
from schemas import RegistryError, parse_registry, registry_json_schema
from schemas.registry import default_registry_path, load_registry
from schemas.registry_diff import diff_documents, merge_documents


def test_packaged_registry_has_four_tenants_from_different_industries() -> None:
    reg = load_registry()
    assert [t.id for t in reg.tenants] == [
        "northwind-auto",
        "ironbridge-steel",
        "voltcell-batteries",
        "circuitry-electronics",
    ]
    assert len({t.industry for t in reg.tenants}) == 4
    for tenant in reg.tenants:
        assert 1 <= len(tenant.plants) <= 2
        for plant in tenant.plants:
            assert 1 <= len(plant.lines) <= 2
            assert all(2 <= len(line.machines) <= 4 for line in plant.lines)


def test_machine_type_of_and_arrow_views_agree() -> None:
    reg = load_registry()
    assert reg.machine_type_of("northwind-auto", "stuttgart", "block-l1", "cnc-101") == "cnc_mill"
    assert reg.machine_type_of("northwind-auto", "stuttgart", "block-l1", "nope") is None
    machines = reg.machines()
    assert machines.column_names == ["tenant", "plant", "line", "machine", "machine_type"]
    for row in machines.to_pylist():
        assert (
            reg.machine_type_of(row["tenant"], row["plant"], row["line"], row["machine"])
            == (row["machine_type"])
        )
    ranges = reg.tag_ranges()
    assert ranges.column_names == ["machine_type", "tag", "unit", "min", "max"]
    spindle = [r for r in ranges.to_pylist() if r["tag"] == "spindle_speed"]
    expected = {"machine_type": "cnc_mill", "unit": "rpm", "min": 0.0, "max": 24000.0}
    assert spindle == [{"tag": "spindle_speed", **expected}]


def test_arrow_views_do_not_import_pandas() -> None:
    """A dataset build or ``maxlake status`` reads the registry's Arrow views and needs no
    pandas, whose import costs ~1.4 s and ~50 MiB; ``pa.array`` imports it."""
    code = (
        "import sys\n"
        "from schemas.registry import load_registry\n"
        "reg = load_registry()\n"
        "assert reg.machines().num_rows and reg.tag_ranges().num_rows\n"
        "print('pandas' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_tag_specs_are_consistent() -> None:
    reg = load_registry()
    for mt in reg.machine_types.values():
        assert mt.tags
        assert mt.alarms
        assert mt.defect_codes
        for tag in mt.tags:
            assert tag.min <= tag.nominal <= tag.max
        assert all(1 <= a.severity <= 1000 for a in mt.alarms)
    cnc = reg.machine_types["cnc_mill"]
    spec = cnc.tag("tool_wear")
    assert spec is not None
    assert spec.unit == "%"


_GOOD_TYPES = """
[machine_types.press]
tags = [{ tag = "force", unit = "kN", min = 0.0, max = 10.0, nominal = 5.0 }]
"""


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            _GOOD_TYPES
            + """
[[tenants]]
id = "acme"
name = "Acme"
industry = "x"
[[tenants.plants]]
id = "p1"
name = "P1"
[[tenants.plants.lines]]
id = "l1"
name = "L1"
machines = [{ id = "m1", machine_type = "lathe" }]
""",
            "tenants[0].plants[0].lines[0].machines[0].machine_type: unknown machine type 'lathe' "
            "(known: press)",
        ),
        (
            """
[machine_types.press]
tags = [{ tag = "force", unit = "kN", min = 10.0, max = 0.0, nominal = 5.0 }]
[[tenants]]
id = "acme"
""",
            "tenants[0].name: Field required",
        ),
        (
            _GOOD_TYPES + '[[tenants]]\nid = "bad id"\n',
            "tenants[0].id: String should match pattern",
        ),
        ("this is = = not toml", "file: not valid TOML"),
    ],
)
def test_bad_registry_file_names_file_and_entry(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_missing_registry_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_registry(tmp_path / "absent.toml")


def _doc() -> dict[str, Any]:
    return load_registry().document()


def test_errors_name_the_exact_location_of_a_deep_entry() -> None:
    doc = _doc()
    doc["tenants"][2]["plants"][0]["lines"][1]["machines"][1]["machine_type"] = "lathe"
    with pytest.raises(RegistryError) as info:
        parse_registry(doc, source="r.toml")
    assert info.value.entry == "tenants[2].plants[0].lines[1].machines[1].machine_type"
    doc = _doc()
    doc["machine_types"]["cnc_mill"]["tags"][1]["min"] = "cold"
    with pytest.raises(RegistryError) as info:
        parse_registry(doc, source="r.toml")
    assert info.value.entry == "machine_types.cnc_mill.tags[1].min"


def test_a_range_with_nominal_outside_is_named() -> None:
    doc = _doc()
    doc["machine_types"]["cnc_mill"]["tags"][0]["nominal"] = 1e9
    with pytest.raises(RegistryError, match=r"machine_types\.cnc_mill\.tags\[0\]: needs min"):
        parse_registry(doc)


def test_tenant_ids_take_no_dots_but_machine_ids_may() -> None:
    doc = _doc()
    doc["tenants"][0]["plants"][0]["lines"][0]["machines"][0]["id"] = "cnc.101"
    parse_registry(doc)
    doc["tenants"][0]["id"] = "acme.eu"
    with pytest.raises(RegistryError, match=r"tenants\[0\]\.id: String should match"):
        parse_registry(doc)


def test_units_must_be_known_to_pint_or_defined_in_the_registry() -> None:
    doc = _doc()
    doc["machine_types"]["cnc_mill"]["tags"][0]["unit"] = "spm"
    with pytest.raises(RegistryError, match=r"tags\[0\]\.unit: unknown unit 'spm'"):
        parse_registry(doc)
    doc["units"] = [{"symbol": "spm", "definition": "1 / minute"}]
    registry = parse_registry(doc)
    conv = registry.unit_system().conversion("1/s", "spm")
    assert conv is not None
    assert conv.scale == pytest.approx(60.0)


def test_document_round_trips_and_unknown_keys_are_refused() -> None:
    reg = load_registry()
    assert parse_registry(reg.document()).document() == reg.document()
    doc = _doc()
    doc["tenants"][0]["plants"][0]["lines"][0]["machines"][0]["type"] = "cnc_mill"
    with pytest.raises(RegistryError, match=r"machines\[0\]\.type: Extra inputs"):
        parse_registry(doc)


def test_published_json_schema_is_current_and_accepts_the_seed() -> None:
    published = Path(str(files("schemas") / "registry" / "registry.schema.json"))
    schema = json.loads(published.read_text())
    assert schema == registry_json_schema(), (
        "re-run `maxlake registry schema --out schemas/registry/registry.schema.json`"
    )
    with default_registry_path().open("rb") as fh:
        jsonschema.validate(tomllib.load(fh), schema)
    bad = _doc()
    bad["tenants"][0]["id"] = "acme.eu"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_a_plant_time_zone_must_be_an_iana_zone() -> None:
    doc = _doc()
    doc["tenants"][0]["plants"][0]["timezone"] = "Europe/Atlantis"
    with pytest.raises(RegistryError, match=r"plants\[0\]\.timezone: .*not an IANA time zone"):
        parse_registry(doc)


def test_dimension_specs_need_a_known_unit_a_range_and_one_meaning_per_tenant() -> None:
    doc = _doc()
    doc["machine_types"]["cnc_mill"]["dimensions"][0]["unit"] = "furlongz"
    with pytest.raises(RegistryError, match=r"cnc_mill\.dimensions\[0\]\.unit: unknown unit"):
        parse_registry(doc)
    doc = _doc()
    doc["machine_types"]["cnc_mill"]["dimensions"][0]["min"] = 2000.0
    with pytest.raises(RegistryError, match=r"cnc_mill\.dimensions\[0\]: needs min <= max"):
        parse_registry(doc)
    doc = _doc()
    doc["machine_types"]["pick_place"]["dimensions"].append(
        {"name": "joint_height", "unit": "mm", "min": 0.0, "max": 1.0}
    )  # reflow_oven declares joint_height in um; circuitry-electronics runs both types
    with pytest.raises(RegistryError, match=r"declare dimension 'joint_height' differently"):
        parse_registry(doc)
    spec = load_registry().tenant_dimensions()[("northwind-auto", "bore_diameter")]
    assert (spec.unit, spec.min, spec.max) == ("mm", 0.0, 1000.0)


def test_rev_is_a_revolution_and_hz_is_not_an_rpm() -> None:
    units = load_registry().unit_system()
    conv = units.conversion("rev/s", "rpm")
    assert conv is not None
    assert conv.scale == pytest.approx(60.0)
    assert units.conversion("Hz", "rpm") is None
    assert "ambiguous" in (units.refusal("Hz", "rpm") or "")


def test_a_refusal_is_worked_out_once_per_pair_of_units(monkeypatch: pytest.MonkeyPatch) -> None:
    units = load_registry().unit_system()
    pairs = [("Hz", "rpm"), ("furlongs", "rpm"), ("mg/kg", "ppm"), ("rev/s", "rpm"), ("degC", "K")]
    first = [units.refusal(*p) for p in pairs]
    assert first[3] is None
    assert first[4] is None
    assert all(first[:3])
    worked: list[tuple[str, str]] = []
    refuse = units._refuse

    def counted(source: str, target: str) -> str | None:
        worked.append((source, target))
        return refuse(source, target)

    monkeypatch.setattr(units, "_refuse", counted)
    assert [units.refusal(*p) for p in pairs * 3] == first * 3
    assert worked == []
    monkeypatch.setattr("schemas.units._REFUSALS_KEPT", 2)
    assert units.refusal("kg", "rpm") == "their dimensions differ"
    assert [units.refusal(*p) for p in pairs] == first
    assert len(units._refusals) <= 2  # a full memo is emptied; the answers stay the same


def test_a_partial_document_adds_a_dimension_by_name() -> None:
    doc = _doc()
    depth = {"name": "depth", "unit": "mm", "min": 0.0, "max": 5.0}
    merged = merge_documents(doc, {"machine_types": {"cnc_mill": {"dimensions": [depth]}}})
    assert [str(c) for c in diff_documents(doc, merged)] == [
        "+ dimension cnc_mill/depth unit='mm' min=0.0 max=5.0"
    ]
    names = [d.name for d in parse_registry(merged).machine_types["cnc_mill"].dimensions]
    assert names == ["bore_diameter", "face_flatness", "depth"]
