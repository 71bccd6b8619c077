"""``maxlake contracts add`` says when a contract shares telemetry but no tag of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxlake.cli import main

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
