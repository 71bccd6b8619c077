"""``datasets build`` checks a spec before any data is read and reports every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.curation import SpecError
from lake.curation.precheck import check_spec
from lake.curation.spec import reference_specs

_DEMO = reference_specs()["predictive-maintenance-demo"].read_text()


def _spec(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = _DEMO
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_a_bad_date_and_a_misspelled_job_are_reported_together(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        ("[filters]\n", '[filters]\nstart = "2026-13-01T00:00:00Z"\n'),
        ('name = "predictive_maintenance"', 'name = "predictive_maintenace"'),
    )

    with pytest.raises(SpecError) as info:
        check_spec(path)

    assert [key for key, _ in info.value.problems] == ["filters.start", "job"]
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 2 problems:"
    assert lines[1].startswith("  filters.start: '2026-13-01T00:00:00Z' is not an RFC 3339 time")
    assert lines[2].startswith(
        "  job: unknown job 'predictive_maintenace' (did you mean predictive_maintenance?)"
    )


def test_document_problems_and_a_job_parameter_are_reported_together(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        ("horizon_h = 1", "horizn_h = 1"),
        ('purpose = "predictive-maintenance-research"', 'purpose = " "'),
        ("[filters]\n", "[filters]\ntenant = 1\n"),
    )

    with pytest.raises(SpecError) as info:
        check_spec(path)

    keys = [key for key, _ in info.value.problems]
    assert keys == ["purpose", "filters.tenant", "job.horizn_h"]
    assert "(did you mean horizon_h?)" in str(info.value)


def test_a_single_problem_names_the_file_and_key(tmp_path: Path) -> None:
    path = _spec(tmp_path, ("horizon_h = 1", "horizn_h = 1"))
    with pytest.raises(SpecError) as info:
        check_spec(path)
    assert str(info.value).startswith(
        f"{path}: job.horizn_h: is not a parameter of this job (did you mean horizon_h?) "
        "(valid: cuts, drop_unobserved_horizon, horizon_h, "
    )
    with pytest.raises(SpecError) as info:
        check_spec(_spec(tmp_path, ("[filters]\n", '[filters]\nstart = "x"\n')))
    assert str(info.value).startswith(f"{tmp_path / 'spec.toml'}: filters.start: 'x' is not")
    assert check_spec("predictive-maintenance-demo").name == "predictive-maintenance-demo"


def test_every_job_parameter_problem_is_reported_at_once_in_the_spec_form(
    tmp_path: Path,
) -> None:
    path = tmp_path / "multi.toml"
    path.write_text(
        'name = "aw-trial"\npurpose = "anomaly-detection-research"\n'
        '[filters]\nstart = "2026-02-01T00:00:00Z"\nend = "2026-01-01T00:00:00Z"\n'
        '[job]\nname = "anomaly_windows"\nrate = "10 seconds"\nsequence_lenght = 60\n'
        "fill_limt = 3\nsplit = { train = 0.7, validaton = 0.3 }\n"
        'split_by = "plant_tim"\n'
    )
    with pytest.raises(SpecError) as info:
        check_spec(path)
    valid = "cuts, fill_limit, qualities, rate, sequence_length, split, split_by, tags"
    assert str(info.value).splitlines() == [
        f"{path}: 7 problems:",
        "  filters.end: must be after filters.start (2026-02-01T00:00:00Z)",
        "  job.fill_limt: is not a parameter of this job (did you mean fill_limit?) "
        f"(valid: {valid})",
        "  job.sequence_lenght: is not a parameter of this job (did you mean sequence_length?) "
        f"(valid: {valid})",
        "  job.rate: must be a duration like '10s', '5m', '1h' (got '10 seconds')",
        "  job.split.validaton: is not a split (did you mean validation?) "
        "(valid: train, validation, test)",
        "  job.split: misses validation, test (a table with exactly the keys train, validation, "
        "test)",
        "  job.split_by: 'plant_tim' is not an option (did you mean plant_time?) "
        "(valid: plant_time, time)",
    ]
