"""``maxlake quality suites`` lists every suite with its version and expectation names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maxlake.cli import main
from quality import load_suites


def test_suites_json_lists_versions_and_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quality", "suites", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for kind, spec in load_suites().items():
        assert doc[kind.value]["suite_version"] == spec.suite_version
        names = [e["name"] for e in doc[kind.value]["expectations"]]
        assert names == [e.name for e in spec.expectations]


def test_bad_suites_dir_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quality", "suites", "--dir", str(tmp_path / "nope")]) == 1
    assert "suites directory does not exist" in capsys.readouterr().err
