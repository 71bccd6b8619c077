"""Exception text names the class once; every error has its package's base and one marker."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from kafka.errors import KafkaTimeoutError

from infra.errors import InfraError
from lake.access import OUTCOMES
from lake.access.errors import AccessDenied, AccessError
from lake.curation.errors import CurationError
from lake.errors import LakeError
from lake.sharing.errors import SharingError
from maxlake.errors import (
    ERROR_CODES,
    MaxlakeError,
    TerminalError,
    TransientError,
    exception_text,
)
from quality.errors import QualityError
from schemas.errors import SchemasError
from streams.errors import StreamsError


def test_the_class_is_named_once() -> None:
    assert exception_text(KafkaTimeoutError()) == "KafkaTimeoutError"
    assert exception_text(KafkaTimeoutError("no broker")) == "KafkaTimeoutError: no broker"
    assert exception_text(ValueError("bad")) == "ValueError: bad"
    assert exception_text(ValueError()) == "ValueError"


PACKAGE_BASES: dict[str, type[MaxlakeError]] = {
    "schemas": SchemasError,
    "lake": LakeError,
    "lake.curation": CurationError,
    "lake.sharing": SharingError,
    "lake.access": AccessError,
    "quality": QualityError,
    "streams": StreamsError,
    "infra": InfraError,
}


def _package_base(module: str) -> type[MaxlakeError]:
    prefix = max((p for p in PACKAGE_BASES if module == p or module.startswith(p + ".")), key=len)
    return PACKAGE_BASES[prefix]


def _error_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for root in ("schemas", "lake", "quality", "streams", "infra"):
        package = importlib.import_module(root)
        names = [root] + [
            m.name for m in pkgutil.walk_packages(package.__path__, prefix=root + ".")
        ]
        for name in names:
            module = importlib.import_module(name)
            for obj in vars(module).values():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == name
                    and not obj.__name__.startswith("_")
                ):
                    found.append(obj)
    return found


def test_every_error_has_its_package_base_and_one_retry_marker() -> None:
    classes = _error_classes()
    assert len(classes) > 30
    for cls in classes:
        base = _package_base(cls.__module__)
        assert issubclass(cls, base), f"{cls.__module__}.{cls.__name__} is not a {base.__name__}"
        if cls not in PACKAGE_BASES.values():
            retry = (issubclass(cls, TransientError), issubclass(cls, TerminalError))
            assert sum(retry) == 1, f"{cls.__name__}: transient or terminal, exactly one"


def test_every_error_code_and_audit_outcome_comes_from_the_one_catalogue() -> None:
    assert tuple(OUTCOMES) == ("allowed", *ERROR_CODES)
    assert {status for status, _ in ERROR_CODES.values()} == {400, 401, 403, 404, 429, 500}
    coded = {cls.__name__: cls.code for cls in _subclasses(MaxlakeError) if cls.code}
    assert coded == {
        "DatasetNotFound": "not_found",
        "FailedQualityRefused": "denied",
        "InvalidDatasetRef": "invalid",
        "PullTargetTaken": "invalid",
        "VersionRevoked": "revoked",
    }
    assert set(coded.values()) <= set(ERROR_CODES)
    assert AccessDenied("not_found", "no version").code == "not_found"


def _subclasses(cls: type[MaxlakeError]) -> list[type[MaxlakeError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out
