"""Every module of the shipped packages stays under 600 lines (CONTRIBUTING: small modules, one
concept each); a module that grows past it is split by concept, not trimmed."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("maxlake", "streams", "quality", "lake", "schemas", "infra")
LIMIT = 600


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_packages_are_found() -> None:
    assert len(_modules()) > 100


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_under_the_line_limit(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) >= LIMIT
    }
    assert long == {}, f"modules of {LIMIT}+ lines: {long}"
