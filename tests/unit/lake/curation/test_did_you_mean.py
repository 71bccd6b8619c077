"""A misspelled name gets the closest valid one: reference sets, jobs, parameters, datasets,
splits (a version number never: 'v9' is not a typo of 'v1')."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.curation import DatasetNotFound, SpecError, build_dataset, show
from lake.curation.jobs import PARAMS
from lake.curation.jobs.errors import JobParamError
from lake.curation.plugins import resolve_job
from lake.curation.spec import resolve_spec
from tests.unit.lake.curation.test_build_helpers import JOBS, registry, seeded_lake, spec


def test_a_misspelled_reference_set_name_suggests_the_closest() -> None:
    with pytest.raises(SpecError) as info:
        resolve_spec("predictive-maintenance-dem")
    assert "(did you mean predictive-maintenance-demo?)" in str(info.value)
    assert "(reference: anomaly-windows, " in str(info.value)


def test_a_misspelled_job_suggests_the_closest() -> None:
    with pytest.raises(SpecError, match=r"unknown job 'predictive_maintenace' \(did you mean "):
        resolve_job("predictive_maintenace", where="spec.toml")


def test_misspelled_job_parameters_are_all_named_with_the_closest() -> None:
    with pytest.raises(JobParamError) as info:
        PARAMS["predictive_maintenance"]({"horizn_h": 2, "tgas": ["vib"]})
    text = str(info.value)
    assert "'horizn_h' is not a parameter of this job (did you mean horizon_h?)" in text
    assert "parameter 'tgas' is not a parameter of this job (did you mean tags?)" in text


def test_a_misspelled_dataset_or_split_suggests_the_closest_but_a_version_does_not(
    tmp_path: Path,
) -> None:
    store = seeded_lake(tmp_path)
    build_dataset(store, spec(), registry=registry(), jobs=JOBS)

    with pytest.raises(DatasetNotFound, match=r"no dataset 'spindel' \(did you mean spindle\?\)"):
        show("spindel", lake_root=tmp_path)
    with pytest.raises(DatasetNotFound) as info:
        show("spindle", 9, lake_root=tmp_path)
    assert str(info.value) == "no version of spindle 'v9' (available: v1)"
