"""Jobs as plug-ins: the "Write your own job" example of docs/DATASETS.md, run as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import polars as pl
import pytest

from lake.curation import SpecError, build_dataset, curated_root, parse_spec
from lake.curation.jobs import JOBS
from lake.curation.plugins import available_jobs, resolve_job
from tests.unit.lake.curation.test_build_helpers import TENANT, registry, seeded_lake

DOC = Path(__file__).resolve().parents[4] / "docs" / "DATASETS.md"


def _example(language: str) -> str:
    """The first ``language`` code block of the "Write your own job" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Write your own job") :]
    section = section[: section.find("\n## ", 5)]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block in the 'Write your own job' section"
    return match.group(1)


def test_the_documented_job_builds_without_editing_maxlake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "code" / "my_team"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(_example("python"))
    monkeypatch.syspath_prepend(str(tmp_path / "code"))

    doc = tomllib.loads(_example("toml"))
    doc["filters"] = {"tenants": [TENANT]}
    spec = parse_spec(doc)
    assert spec.job == "my_team.jobs:readings_per_machine"

    store = seeded_lake(tmp_path / "lake")
    manifest = build_dataset(store, spec, registry=registry())

    assert manifest.job == "my_team.jobs:readings_per_machine"
    folder = Path(curated_root(tmp_path / "lake").root) / spec.name / "v1"
    train = pl.read_parquet(folder / "train.parquet")
    assert train.get_column("readings").sum() == 40
    assert train.height == 5


def test_builtin_jobs_include_remaining_useful_life() -> None:
    assert "remaining_useful_life" in JOBS
    assert "remaining_useful_life" in available_jobs()
    assert resolve_job("remaining_useful_life", where="x") is JOBS["remaining_useful_life"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("no_such_job", "unknown job 'no_such_job' \\(valid: anomaly_windows"),
        ("no_such_module_xyz:job", "cannot import module 'no_such_module_xyz'"),
        ("lake.curation.jobs:no_such_function", "has no function 'no_such_function'"),
        ("lake.curation.jobs:JOBS", "is a dict, not a job function"),
    ],
)
def test_bad_job_references_fail_with_the_spec_named(name: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem) as info:
        resolve_job(name, where="spec.toml")
    assert "spec.toml" in str(info.value)
