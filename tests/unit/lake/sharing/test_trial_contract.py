"""The shipped one-company trial contract (``lake/sharing/examples/trial-contract.toml``) is
valid as ``maxlake contracts add`` reads it and lets every packaged spec build from one company."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import lake.sharing
from lake.curation.spec import reference_specs
from maxlake.cli import main
from schemas.registry import load_registry

TRIAL = Path(lake.sharing.__file__).with_name("examples") / "trial-contract.toml"


def test_the_trial_contract_loads_and_covers_every_packaged_spec() -> None:
    contract = lake.sharing.parse_contract(TRIAL.read_bytes(), source=str(TRIAL))
    assert load_registry().tenant(contract.tenant) is not None
    assert not contract.suppress_rare
    assert set(contract.kinds) == {"telemetry", "machine_event", "inspection"}
    for name, path in reference_specs().items():
        with open(path, "rb") as fh:
            purpose = tomllib.load(fh)["purpose"]
        assert contract.covers(purpose), name


def test_contracts_add_stores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "silver").mkdir()
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    assert main(["contracts", "add", str(TRIAL)]) == 0
    assert main(["contracts", "list"]) == 0
    assert "northwind-auto-trial" in capsys.readouterr().out
