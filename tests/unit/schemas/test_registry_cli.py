"""``maxlake registry``: dry runs print the diff and write nothing; --yes stores a version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maxlake.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    return tmp_path / "lake"


def test_verbs_dry_run_then_store_then_show_diff_history(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ("registry", "add-machine", "northwind-auto", "stuttgart", "block-l1", "cnc-104")
    code, out, err = _run(capsys, *add, "--type", "cnc_mill")
    assert code == 0
    assert "+ machine northwind-auto/stuttgart/block-l1/cnc-104" in out
    assert "dry run" in err
    assert not (lake / "registry").exists()
    code, out, _ = _run(capsys, *add, "--type", "cnc_mill", "--yes", "--reason", "new")
    assert (code, out.splitlines()[-1]) == (0, "stored registry version 1 (1 change(s))")
    for verb in (
        ("add-defect-code", "reflow_oven", "SOLDER_BRIDGE"),
        ("add-alarm", "cnc_mill", "CNC-4001", "--severity", "300", "--text", "Door"),
        ("add-unit", "spm", "1 / minute"),
        (
            "add-tag",
            "cnc_mill",
            "stroke_rate",
            "--unit",
            "spm",
            "--min",
            "0",
            "--max",
            "300",
            "--nominal",
            "120",
        ),
    ):
        code, _, _ = _run(capsys, "registry", *verb, "--yes", "--reason", "r", "--author", "me")
        assert code == 0
    code, out, _ = _run(capsys, "registry", "history")
    assert [line.split()[0] for line in out.splitlines()] == ["v0", "v1", "v2", "v3", "v4", "v5"]
    assert "by me: r" in out
    code, out, _ = _run(capsys, "registry", "diff", "1", "5")
    assert "+ tag cnc_mill/stroke_rate" in out
    assert out.splitlines()[-1] == "4 change(s) from version 1 to 5"
    code, out, _ = _run(capsys, "registry", "show", "--version", "1")
    assert out.startswith("# registry version 1: ")
    assert 'id = "cnc-104"' in out
    assert "stroke_rate" not in out
    code, out, _ = _run(capsys, "registry", "show", "--json")
    assert json.loads(out)["units"] == [
        {"symbol": "spm", "definition": "1 / minute", "description": ""}
    ]


def test_apply_refuses_a_unit_change_without_migration_and_names_the_file(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = tmp_path / "degf.toml"
    change.write_text(
        "[machine_types.cnc_mill]\n"
        'tags = [{ tag = "spindle_temp", unit = "degF", min = 50.0, max = 194.0, '
        "nominal = 100.0 }]\n"
    )
    code, _, err = _run(capsys, "registry", "apply", str(change), "--yes", "--reason", "r")
    assert code == 1
    assert "tag cnc_mill/spindle_temp changes unit" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tenants]]\nid = "acme.eu"\nname = "A"\nindustry = "x"\n')
    code, _, err = _run(capsys, "registry", "apply", str(bad))
    assert code == 1
    assert "tenants[4].id: String should match pattern" in err
    assert not (lake / "registry").exists()


def test_schema_command_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "registry", "schema")
    assert code == 0
    assert json.loads(out)["title"] == "maxlake asset registry"


def test_the_dry_run_of_a_unit_change_says_it_needs_a_migration_note(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retype = ["registry", "add-tag", "cnc_mill", "spindle_temp", "--unit", "degF"]
    retype += ["--min", "50", "--max", "190", "--nominal", "100"]
    code, out, err = _run(capsys, *retype)
    assert code == 0
    assert "re-types rows: unit" in out
    assert "re-run with --yes --reason '...' --migration '...' to store them" in err
    assert "without --migration it would be refused: tag cnc_mill/spindle_temp changes" in err
    code, _, err = _run(capsys, *retype, "--migration", "degF from v2 on")
    assert "--migration '...'" not in err
    assert "would be refused" not in err
