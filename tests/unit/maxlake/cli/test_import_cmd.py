"""What ``maxlake import cmapss`` tells the user to do next."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import streams.cmapss
from maxlake.cli import main
from streams.cmapss.importer import ImportReport


def test_the_import_points_at_the_live_registry_never_at_pinning_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_import(settings: Any, **kwargs: Any) -> ImportReport:
        del settings, kwargs
        return ImportReport(
            subset="fd001",
            engines={"train": 2, "test": 1},
            events=10,
            sent=10,
            skipped=0,
            epoch=datetime(2026, 11, 1, tzinfo=UTC),
            cycle_s=600,
            registry=tmp_path / "reference" / "registry.toml",
            registry_version=4,
            ground_truth=tmp_path / "ground_truth.csv",
            seconds=0.1,
        )

    monkeypatch.setattr(streams.cmapss, "import_cmapss", fake_import)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path))
    monkeypatch.setenv("MAXLAKE_REGISTRY_POLL_S", "5")
    args = ["import", "cmapss", "--train", "t", "--test", "t", "--rul", "r"]

    assert main(args) == 0

    out = capsys.readouterr().out
    assert "worker --registry" not in out
    assert "registry.toml" not in out
    assert "registry: live version 4 holds the engines" in out
    assert "within 5 s" in out
