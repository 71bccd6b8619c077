"""``maxlake simulate --tenants`` with a tenant the packaged registry lacks says where to go."""

from __future__ import annotations

import pytest

from maxlake.cli import main


def test_an_onboarded_tenant_unknown_to_the_packaged_registry_gets_the_way_to_simulate_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--tenants", "newco-motors", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "unknown tenants ['newco-motors']" in err
    assert "northwind-auto" in err
    assert "`maxlake registry show > live.toml`" in err
    assert "--registry live.toml" in err
