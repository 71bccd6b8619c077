"""Numbers that make no sense (a zero or negative rate, an empty window, a negative retention)
are usage errors (exit 2, the option named) before the command does anything; they crashed with
ZeroDivisionError or ValueError inside the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxlake.cli import main
from maxlake.cli.argtypes import non_negative_int, positive_float, positive_int


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["simulate", "--rate", "0"], "--rate: must be a finite number greater than 0"),
        (["simulate", "--rate", "-5"], "--rate: must be a finite number greater than 0"),
        (["simulate", "--rate", "inf"], "--rate: must be a finite number greater than 0"),
        (["simulate", "--duration", "-1"], "--duration: must be a finite number greater than 0"),
        (["simulate", "--scale", "0"], "--scale: must be 1 or more"),
        (["status", "--window", "0s"], "--window: invalid duration '0s': must be more than 0"),
        (["lake", "vacuum", "--retention-hours", "-1"], "--retention-hours: must be 0 or more"),
        (["demo", "--rate", "0"], "--rate: must be a finite number greater than 0"),
    ],
)
def test_nonsense_numbers_are_usage_errors(
    argv: list[str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_sensible_numbers_still_parse() -> None:
    assert positive_float("0.5") == 0.5
    assert non_negative_int("0") == 0
    assert positive_int("3") == 3


def test_a_contract_revocation_needs_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    with pytest.raises(SystemExit) as exited:
        main(["contracts", "revoke", "northwind-pm"])
    assert exited.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err
