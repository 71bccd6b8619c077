"""A rebuild on an unchanged lake publishes no copy of the newest version by default, and says
which version already holds that content; ``--publish-identical`` publishes it and says so."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lake.curation import list_datasets, parse_spec
from maxlake.cli import datasets_run
from maxlake.cli.demo_sets import ensure_demo_contracts
from maxlake.settings import Settings
from tests.unit.lake.curation.test_build_helpers import seeded_lake


def _args(*, publish_identical: bool) -> argparse.Namespace:
    return argparse.Namespace(
        registry=None,
        allow_failed_quality=False,
        reset_withheld=[],
        require_same_columns=False,
        publish_identical=publish_identical,
    )


def test_an_identical_rebuild_publishes_nothing_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    seeded_lake(root)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    settings = Settings()
    purpose = "predictive-maintenance-research"
    ensure_demo_contracts(settings, [purpose], say=lambda _: None)
    job = "tests.unit.lake.curation.test_build_helpers:tag_means"
    spec = parse_spec({"name": "spindle", "purpose": purpose, "job": {"name": job}})

    assert datasets_run.build(_args(publish_identical=False), spec) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["version"], first["published"]) == (1, True)

    assert datasets_run.build(_args(publish_identical=False), spec) == 0
    out, err = capsys.readouterr()
    again = json.loads(out)
    assert (again["version"], again["published"]) == (1, False)
    assert again["content_hash"] == first["content_hash"]
    assert "datasets: unchanged: the build is identical to spindle@v1 (same content hash" in err
    assert "nothing was published" in err
    assert "--publish-identical" in err
    assert [d.versions for d in list_datasets(settings)] == [(1,)]

    assert datasets_run.build(_args(publish_identical=True), spec) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["version"] == 2
    assert "identical to spindle@v1 (same content hash, same spec): published as v2" in err
