"""Terminal tables size each column to its widest cell, so long names never shift columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake import DeltaStore
from lake.access import AuditEntry, AuditLog
from maxlake.cli import main
from maxlake.cli.table import render_table


def test_columns_widen_to_the_longest_cell_and_numbers_align_right() -> None:
    text = render_table(
        ("NAME", "ROWS", "NOTE"),
        [("short", 5, "a"), ("a-much-longer-name-than-the-header", 1234567, None)],
        right="ROWS",
    )
    header, short, long = text.splitlines()
    assert short.index("5") + 1 == long.index("1,234,567") + len("1,234,567")
    assert header.index("ROWS") + len("ROWS") == short.index("5") + 1
    assert header.index("NOTE") == short.rindex("a") == long.rindex("-")
    assert long.endswith("-")


def test_the_audit_table_keeps_its_columns_with_a_long_dataset_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    log = AuditLog(DeltaStore(tmp_path))
    long_name = "predictive-maintenance-northwind-auto-and-partners"
    log.record(
        AuditEntry(
            "download",
            "allowed",
            principal="m",
            dataset=long_name,
            version=12,
            split="train",
            rows=81_700,
        )
    )
    log.record(AuditEntry("list", "unauthenticated", status=401))
    assert main(["audit"]) == 0
    header, first, second = capsys.readouterr().out.splitlines()
    end_of_rows = header.index("ROWS") + len("ROWS")
    assert first[end_of_rows - len("81,700") : end_of_rows] == "81,700"
    assert second[end_of_rows - 1] == "-"
    assert f"{long_name}@v12/train" in first
    assert first[header.index("OUTCOME") :].startswith("allowed")
    assert second[header.index("OUTCOME") :].startswith("unauthenticated 401")


def test_an_audit_for_a_principal_without_entries_says_so_and_names_the_close_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    AuditLog(DeltaStore(tmp_path)).record(
        AuditEntry("download", "allowed", principal="model-team", dataset="pm", rows=10)
    )
    assert main(["audit", "--principal", "model-tema"]) == 0
    assert capsys.readouterr().out == (
        "no audit entries for principal 'model-tema' (did you mean model-team?); "
        "principals with entries: model-team\n"
    )
