"""``topics create``, ``worker`` and ``access principal add`` refuse a ``--tenant`` that is not
in the live registry before doing anything, as ``status --tenant`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.broker import free_port
from lake.access import AccessStore, access_dir
from maxlake.cli import main
from maxlake.settings import Settings

KNOWN = "known: circuitry-electronics, ironbridge-steel, northwind-auto, voltcell-batteries"
NEWCO = (
    '[[tenants]]\nid = "newco"\nname = "NewCo"\nindustry = "x"\n'
    '[[tenants.plants]]\nid = "p1"\nname = "P1"\n'
    '[[tenants.plants.lines]]\nid = "l1"\nname = "L1"\n'
    'machines = [{ id = "m1", machine_type = "cnc_mill" }]\n'
)


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty lake (the packaged registry) and no broker."""
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("MAXLAKE_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    return tmp_path / "lake"


@pytest.mark.parametrize(
    "argv",
    [
        ["topics", "create", "--tenant", "northwind-auto", "--tenant", "northwind"],
        ["worker", "--tenant", "northwind"],
        ["access", "principal", "add", "team-x", "--kind", "model_team", "--tenant", "northwind"],
    ],
)
def test_a_misspelled_tenant_is_refused_with_the_close_match(
    lake: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "maxlake: error: --tenant 'northwind' is not a tenant of the registry "
        f"(did you mean northwind-auto?); {KNOWN}"
    ), err
    assert not AccessStore(access_dir(Settings())).list()


def test_an_unknown_tenant_gets_the_known_ones(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topics", "create", "--tenant", "nope"]) == 1
    assert f"'nope' is not a tenant of the registry; {KNOWN}" in capsys.readouterr().err


def test_a_tenant_of_the_live_registry_is_accepted(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["access", "principal", "add", "newco-team", "--kind", "model_team", "--tenant", "newco"]
    assert main(argv) == 1
    fragment = tmp_path / "newco.toml"
    fragment.write_text(NEWCO)
    assert main(["registry", "apply", str(fragment), "--yes", "--reason", "joins"]) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert [(p.name, p.tenant) for p in AccessStore(access_dir(Settings())).list()] == [
        ("newco-team", "newco")
    ]
