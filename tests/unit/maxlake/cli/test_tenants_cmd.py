"""``maxlake tenants onboard`` without a broker: the dry-run plan, refusals before any change,
and a draft contract that shares nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.sharing.contract import parse_contract
from maxlake.cli import main
from maxlake.cli.tenants_cmd import draft_contract


def test_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    fragment = tmp_path / "newco.toml"
    fragment.write_text(
        '[[tenants]]\nid = "newco"\nname = "NewCo"\nindustry = "x"\n'
        '[[tenants.plants]]\nid = "p1"\nname = "P1"\n'
        '[[tenants.plants.lines]]\nid = "l1"\nname = "L1"\n'
        'machines = [{ id = "m1", machine_type = "cnc_mill" }]\n'
    )
    assert main(["tenants", "onboard", str(fragment), "--no-broker-security"]) == 0
    out = capsys.readouterr()
    assert "+ machine newco/p1/l1/m1 machine_type='cnc_mill'" in out.out
    assert "maxlake.newco.telemetry" in out.out
    assert "SCRAM user" not in out.out
    assert "dry run" in out.err
    assert main(["tenants", "onboard", str(fragment)]) == 1
    out = capsys.readouterr()
    assert "SCRAM user 'newco-plant'" in out.out
    assert "no administrator credentials" in out.err
    assert "--no-broker-security. Nothing was changed" in out.err
    assert not (tmp_path / "lake").exists()


def test_an_existing_or_dotted_tenant_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    fragment = tmp_path / "t.toml"
    fragment.write_text('[[tenants]]\nid = "northwind-auto"\n')
    assert main(["tenants", "onboard", str(fragment), "--yes", "--reason", "r"]) == 1
    assert "already in registry version 0" in capsys.readouterr().err
    fragment.write_text(
        '[[tenants]]\nid = "acme.eu"\nname = "A"\nindustry = "x"\n[[tenants.plants]]\nid = "p"\n'
        'name = "P"\n[[tenants.plants.lines]]\nid = "l"\nname = "L"\n'
        'machines = [{ id = "m", machine_type = "cnc_mill" }]\n'
    )
    assert main(["tenants", "onboard", str(fragment), "--yes", "--reason", "r"]) == 1
    assert "tenants[4].id: String should match pattern" in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_the_draft_contract_pseudonymises_everything_and_shares_no_tag() -> None:
    contract = parse_contract(draft_contract("newco", "me@host").encode(), source="draft")
    assert (contract.tenant, contract.tags, contract.release) == ("newco", (), ())
    assert contract.suppress_rare
    assert not contract.releases_tenant
