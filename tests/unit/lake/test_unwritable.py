"""A failed lake write is classified by its operating-system cause, not by its first words."""

from __future__ import annotations

import errno

import pytest

from lake.unwritable import unwritable_cause

FULL = (
    "Failed to parse parquet: External: Generic LocalFileSystem error: Unable to copy data to "
    "file: No space left on device (os error 28)"
)
READ_ONLY_NEW_TABLE = (
    "Could not create local directory: /lake/silver/x\nError: Os { code: 30, kind: "
    'ReadOnlyFilesystem, message: "Read-only file system" }'
)


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (Exception(FULL), "disk_full"),
        (Exception(READ_ONLY_NEW_TABLE), "read_only"),
        (OSError(errno.EACCES, "Permission denied"), "permission_denied"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "quota_exceeded"),
    ],
)
def test_the_cause_is_read_from_the_os_error_code(exc: Exception, cause: str) -> None:
    found = unwritable_cause(exc)
    assert found is not None
    assert found.cause == cause
    assert "os error" in found.detail
    assert found.next_step


def test_a_cause_deep_in_the_exception_chain_is_found() -> None:
    outer = RuntimeError("commit failed")
    outer.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    found = unwritable_cause(outer)
    assert found is not None
    assert found.cause == "disk_full"


def test_other_failures_are_not_an_unwritable_lake() -> None:
    assert unwritable_cause(ValueError("Failed to parse parquet: bad magic")) is None
    assert unwritable_cause(OSError(errno.ENOENT, "No such file or directory")) is None
