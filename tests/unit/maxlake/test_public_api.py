"""The top-level ``maxlake`` API and the package facades export what users import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lake
import lake.curation
import maxlake
import maxlake.errors
import maxlake.settings
import schemas
import streams
import streams.producer


def test_the_top_level_names_are_the_packages_own() -> None:
    assert maxlake.PlantProducer is streams.producer.PlantProducer
    assert maxlake.Settings is maxlake.settings.Settings
    assert maxlake.load is lake.curation.load
    assert maxlake.MaxlakeError is maxlake.errors.MaxlakeError
    assert maxlake.EventKind is schemas.EventKind
    assert set(maxlake.__all__) <= set(dir(maxlake))
    for name in maxlake.__all__:
        assert getattr(maxlake, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = maxlake.nope


def test_facades_list_only_names_they_define() -> None:
    for package in (maxlake, schemas, streams, lake, lake.curation):
        for name in package.__all__:
            assert hasattr(package, name), f"{package.__name__}.{name}"
    assert streams.PlantProducer is streams.producer.PlantProducer


def test_importing_maxlake_loads_no_component() -> None:
    code = (
        "import sys, maxlake, maxlake.settings, maxlake.errors; "
        "print(sorted(m for m in ('streams', 'lake', 'schemas', 'polars') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_a_feature_job_loads_no_writer_nor_pandas() -> None:
    """``lake`` and ``lake.curation`` import their modules on first use, so a job (the
    curation benchmark's child, a plugin) does not pay ~110 MiB for deltalake's writer,
    pyarrow.dataset and pandas."""
    code = (
        "import sys, lake.curation.jobs; "
        "print(sorted(m for m in ('pandas', 'pyarrow.dataset', 'lake.delta', 'lake.curation.build')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
