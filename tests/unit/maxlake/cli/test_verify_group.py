"""``maxlake lake verify`` names the consumer group whose committed offsets it checked the lake
against: run from a shell without the lake's MAXLAKE_GROUP_ID, it used the default group's
offsets and said nothing about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maxlake.cli import lake_cmd, main
from streams import offsets, topics


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    (root / "README").write_text("a lake")
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    monkeypatch.delenv("MAXLAKE_GROUP_ID", raising=False)
    monkeypatch.setattr(topics, "require_broker", lambda settings: None)
    monkeypatch.setattr(lake_cmd, "_existing_topics", lambda settings, wanted: [])
    monkeypatch.setattr(offsets, "group_offsets", lambda settings, wanted: [])


@pytest.mark.usefixtures("lake")
def test_verify_names_the_default_group_and_says_it_is_shared(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["lake", "verify"]) == 0
    out = capsys.readouterr().out
    assert "checked against consumer group maxlake-ingest's committed offsets" in out
    assert "if this lake's workers run with their own MAXLAKE_GROUP_ID, set it here too" in out


@pytest.mark.usefixtures("lake")
def test_verify_json_names_the_group(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAXLAKE_GROUP_ID", "plant-a-ingest")
    assert main(["lake", "verify", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert (report["consumer_group"], report["group_shared"]) == ("plant-a-ingest", False)
    assert main(["lake", "verify", "--no-kafka", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["consumer_group"] is None
