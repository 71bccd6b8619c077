"""Suite-wide settings: keep Great Expectations from phoning home on a closed network."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

pytest_plugins = ["tests.s3_server"]

REALDATA_ENV = "MAXLAKE_REALDATA_DIR"
"""Where the public reference data lives; default ``../shared/realdata`` beside the repo."""


def realdata_dir() -> Path:
    """The real-data folder: ``$MAXLAKE_REALDATA_DIR`` or ``<repo>/../shared/realdata``.

    A missing folder fails the test that needs it with one line naming the path and the
    variable (never a skip: the data is part of the test environment).
    """
    env = os.environ.get(REALDATA_ENV)
    repo = Path(__file__).resolve().parent.parent
    folder = Path(env) if env else repo.parent / "shared" / "realdata"
    if not folder.is_dir():
        pytest.fail(
            f"real data folder {folder} is missing: put the NASA C-MAPSS files there "
            f"(see /work/shared/realdata/README.md) or set {REALDATA_ENV}",
            pytrace=False,
        )
    return folder
