"""One line for a failure the command line did not raise on purpose: its cause and the next step.

Kafka client and pydantic errors are recognised by the module that defines them, so describing
a failure never imports a Kafka client or pydantic (``maxlake --help`` stays light).
"""

from __future__ import annotations

import errno
import re
import sys
from typing import TYPE_CHECKING

from maxlake.errors import BROKER_START_HINT, exception_text

if TYPE_CHECKING:
    from pydantic import ValidationError

_BROKER_UNREACHABLE = frozenset(
    {"NoBrokersAvailable", "KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError"}
)


def _kafka_class(exc: BaseException) -> str | None:
    for cls in type(exc).__mro__:
        if cls.__module__.split(".")[0] in {"kafka", "aiokafka"}:
            return cls.__name__
    return None


def _instance_of(exc: BaseException, module: str, name: str) -> bool:
    """``isinstance(exc, module.name)`` without importing ``module`` (loaded if ``exc`` is one)."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def describe_failure(exc: BaseException) -> str:
    """The message after ``maxlake: error:`` for ``exc``; names the cause and the next step."""
    if _instance_of(exc, "pydantic_core", "ValidationError"):
        validation: ValidationError = exc  # type: ignore[assignment]
        if validation.title == "Settings":
            return f"{settings_problems(validation)}; fix or unset the variable"
    if _instance_of(exc, "pydantic_settings", "SettingsError"):
        field = re.search(r'field "(\w+)"', str(exc))
        variable = f"MAXLAKE_{field.group(1).upper()}" if field else "a MAXLAKE_* variable"
        return f"{variable} cannot be parsed (a JSON value is expected); fix or unset it"
    kafka = _kafka_class(exc)
    if kafka is not None:
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & _BROKER_UNREACHABLE:
            return f"cannot reach the Kafka broker ({exception_text(exc)}); {BROKER_START_HINT}"
        return f"Kafka refused the request ({exception_text(exc)}); run with -v for details"
    store = _object_store_failure(exc)
    if store is not None:
        return store
    if isinstance(exc, PermissionError):
        return (
            f"permission denied: {exc.filename or exc}; choose a location you can write to "
            "or fix its permissions"
        )
    if isinstance(exc, FileNotFoundError):
        return f"no such file or directory: {exc.filename or exc}; check the path"
    if isinstance(exc, NotADirectoryError):
        return (
            f"not a directory: {exc.filename or exc} (a part of the path is a file); check the path"
        )
    if isinstance(exc, IsADirectoryError):
        return f"is a directory: {exc.filename or exc}; give a file's path"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device holding {exc.filename or 'the output'}; free space"
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return f"read-only file system: {exc.filename or exc}; choose a writable location"
    return (
        f"unexpected {type(exc).__name__}: {exc}; run again with -v for the traceback and report it"
    )


_S3_CODE = re.compile(r"<Code>([^<]+)</Code>(?:\s*<Message>([^<]*)</Message>)?")
_S3_NEXT_STEP = {
    "NoSuchBucket": "create the bucket or fix the bucket in MAXLAKE_LAKE_ROOT",
    "InvalidAccessKeyId": "check the access key in MAXLAKE_LAKE_STORAGE_OPTIONS",
    "SignatureDoesNotMatch": "check the secret key in MAXLAKE_LAKE_STORAGE_OPTIONS",
    "AccessDenied": "grant these credentials access to the bucket, or use others",
    "ExpiredToken": "renew the session token in MAXLAKE_LAKE_STORAGE_OPTIONS",
}


def _object_store_failure(exc: BaseException) -> str | None:
    """One line for an object-store error (obstore, deltalake) that carries the server's error
    code, else None. The text is cut before the request ids and the library's debug dump."""
    modules = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    text = str(exc)
    if not modules & {"obstore", "deltalake"} and "S3 error" not in text:
        return None
    found = _S3_CODE.search(text)
    if found is not None:
        code, message = found.group(1), (found.group(2) or "").strip()
        step = _S3_NEXT_STEP.get(code, "check MAXLAKE_LAKE_ROOT and MAXLAKE_LAKE_STORAGE_OPTIONS")
        return (
            f"the object store refused the request: {code}"
            + (f" ({message})" if message else "")
            + f"; {step}"
        )
    if "error sending request" in text or "Connection refused" in text:
        return (
            "cannot reach the object store (connection failed); check AWS_ENDPOINT_URL in "
            "MAXLAKE_LAKE_STORAGE_OPTIONS and that the server is running"
        )
    return None


def settings_problems(exc: ValidationError) -> str:
    """Each invalid setting of ``exc`` as ``MAXLAKE_<NAME>: <problem>``, joined by ``; ``.

    The values themselves are not repeated (a secret may be among them); a location's own
    message quotes its value.
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        variable = f"MAXLAKE_{str(error['loc'][0]).upper()}" if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            message += _unit_and_range(str(error["loc"][0]))
        problems.append(message if message.startswith(variable) else f"{variable}: {message}")
    return "; ".join(problems)


def _unit_and_range(name: str) -> str:
    """`` (a whole number of <unit>, <ge> to <le>)`` for a setting that declares its unit and
    both bounds (``json_schema_extra={"unit": ...}``, ``ge``, ``le``), else nothing."""
    from annotated_types import Ge, Le  # noqa: PLC0415 - pydantic's, loaded with the settings

    from maxlake.settings import Settings  # noqa: PLC0415 - the settings load lazily

    field = Settings.model_fields.get(name)
    extra = field.json_schema_extra if field is not None else None
    if field is None or not isinstance(extra, dict) or "unit" not in extra:
        return ""
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if low is None or high is None:
        return ""
    return f" (a whole number of {extra['unit']}, {low:,} to {high:,})"
