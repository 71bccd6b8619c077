"""``maxlake contracts add`` and ``show``: what an admin adding an edited draft must be told."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxlake.cli import main
from maxlake.cli.tenants_cmd import draft_contract

_CONTRACT = """id = "newco-pm"
tenant = "northwind-auto"
purposes = ["predictive-maintenance-*"]
[share]
kinds = ["telemetry", "machine_event"]
"""


@pytest.mark.parametrize(
    ("tags_line", "warned"),
    [("tags = []\n", True), ('tags = ["spindle_temp"]\n', False), ("", False)],
)
def test_a_contract_sharing_telemetry_without_tags_is_stored_with_a_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tags_line: str,
    warned: bool,
) -> None:
    root = tmp_path / "lake"
    (root / "silver").mkdir(parents=True)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    contract = tmp_path / "newco-pm.toml"
    contract.write_text(_CONTRACT + tags_line)
    assert main(["contracts", "add", str(contract)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("newco-pm v1 (northwind-auto)")
    assert ("no reading of northwind-auto reaches any set" in err) is warned
    if warned:
        assert "tags = []" in err


def test_an_unedited_draft_purpose_is_warned_and_show_says_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    (root / "silver").mkdir(parents=True)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    contract = tmp_path / "draft.toml"
    contract.write_text(draft_contract("northwind-auto", "dpo"))
    assert main(["contracts", "add", str(contract)]) == 0
    err = capsys.readouterr().err
    assert "still has the onboarding draft's purpose 'to-be-agreed'" in err
    assert main(["contracts", "show", "northwind-auto-draft"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "# northwind-auto-draft v1: in force (the file as added follows)"
