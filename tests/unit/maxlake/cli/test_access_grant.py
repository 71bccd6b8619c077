"""``maxlake access grant`` is where the lake operator's typo in a dataset name can be caught
(a refused pull never suggests another set's name): a name no published set and no reference
set has is granted, with a warning naming the closest existing set."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxlake.cli import main


def test_a_grant_of_an_unknown_dataset_warns_with_the_closest_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    assert main(["access", "principal", "add", "me", "--kind", "model_team"]) == 0
    capsys.readouterr()

    assert main(["access", "grant", "me", "anomaly-windos-demo"]) == 0
    said = capsys.readouterr()
    assert said.out.strip() == "me may read: anomaly-windos-demo"
    assert said.err.startswith(
        "maxlake: warning: no published dataset and no reference dataset is named "
        "'anomaly-windos-demo' (did you mean anomaly-windows-demo?); the grant is recorded "
        "anyway"
    )
    assert "`maxlake access revoke me anomaly-windos-demo` withdraws it" in said.err

    assert main(["access", "grant", "me", "anomaly-windows-demo"]) == 0
    said = capsys.readouterr()
    assert said.err == ""
    assert said.out.strip() == "me may read: anomaly-windos-demo, anomaly-windows-demo"

    published = tmp_path / "curated" / "my-own-set"
    published.mkdir(parents=True)
    assert main(["access", "grant", "me", "my-own-set"]) == 0
    assert capsys.readouterr().err == ""


def test_revoking_a_grant_the_principal_lacks_names_the_closest_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    assert main(["access", "principal", "add", "me", "--kind", "model_team"]) == 0
    assert main(["access", "grant", "me", "anomaly-windows-demo"]) == 0
    capsys.readouterr()

    assert main(["access", "revoke", "me", "anomaly-windos-demo"]) == 1
    err = capsys.readouterr().err
    assert "principal 'me' has no grant for 'anomaly-windos-demo' (did you mean " in err
    assert "anomaly-windows-demo?) (its grants: anomaly-windows-demo)" in err
