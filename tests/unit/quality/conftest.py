"""One gateway per test session: building it imports Great Expectations (seconds)."""

from __future__ import annotations

import pytest

from quality import ValidationGateway
from schemas import Registry, load_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="session")
def gateway(registry: Registry) -> ValidationGateway:
    return ValidationGateway(registry)
