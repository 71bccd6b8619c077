"""Fixtures of a real S3-compatible server (moto, in server mode) on loopback.

One server per session; each test gets its own bucket, so tests never see each other's
objects. Registered for the whole suite by ``pytest_plugins`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from infra.s3 import LocalS3
from lake.location import LakeLocation


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """The session's S3 server."""
    with LocalS3() as server:
        yield server


@pytest.fixture
def s3_lake(s3_server: LocalS3) -> LakeLocation:
    """A lake root ``s3://<fresh bucket>/lake`` with the storage options that reach it."""
    bucket = s3_server.create_bucket(f"lake-{uuid.uuid4().hex[:12]}")
    return LakeLocation(f"{bucket}/lake", s3_server.storage_options())
