"""Why the lake cannot be written: a write failure classified by its cause.

deltalake reports a full disk as ``DeltaError("Failed to parse parquet: ... No space left on
device (os error 28)")`` and a read-only mount as ``... Read-only file system (os error 30)``
(or ``TableNotFoundError("Could not create local directory ...")`` for a new table): the
message's first words are misleading, the operating-system error code is not. This module reads
that code (from the message or from an ``OSError`` in the exception chain) and names the cause
and what the operator does about it. Failures it does not recognise are not classified: they
are bugs or bad data, not an unwritable lake, and keep their usual handling.
"""

from __future__ import annotations

import errno
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CAUSES", "LakeUnwritable", "unwritable_cause", "where_unwritable"]

_OS_ERROR = re.compile(r"os error (\d+)|Os \{ code: (\d+)")


@dataclass(frozen=True)
class LakeUnwritable:
    """An environmental reason the lake refuses writes; retrying later may succeed.

    Attributes:
        cause: ``disk_full``, ``read_only``, ``permission_denied``, ``quota_exceeded`` or
            ``io_error`` (a label value in metrics and status).
        detail: the operating system's words, e.g. ``No space left on device (os error 28)``.
        next_step: what the operator does so that the worker resumes by itself.
    """

    cause: str
    detail: str
    next_step: str


_CAUSES: dict[int, tuple[str, str, str]] = {
    errno.ENOSPC: (
        "disk_full",
        "No space left on device",
        "free space on the lake's volume (maxlake lake vacuum --apply, or grow the volume)",
    ),
    errno.EROFS: (
        "read_only",
        "Read-only file system",
        "remount the lake's volume read-write",
    ),
    errno.EACCES: (
        "permission_denied",
        "Permission denied",
        "give the worker's user write permission on the lake root",
    ),
    errno.EPERM: (
        "permission_denied",
        "Operation not permitted",
        "give the worker's user write permission on the lake root (or clear the immutable flag)",
    ),
    errno.EDQUOT: (
        "quota_exceeded",
        "Disk quota exceeded",
        "raise the quota of the worker's user or free space on the lake's volume",
    ),
    errno.EIO: (
        "io_error",
        "Input/output error",
        "check the lake's disk or mount (dmesg); the worker retries the batch",
    ),
}

CAUSES: tuple[str, ...] = tuple(dict.fromkeys(cause for cause, _, _ in _CAUSES.values()))
"""Every cause :func:`unwritable_cause` may name."""


def unwritable_cause(exc: BaseException) -> LakeUnwritable | None:
    """The environmental cause of a failed lake write, or None when ``exc`` is something else.

    Looks at ``exc`` and its ``__cause__``/``__context__`` chain for an ``OSError`` errno or an
    ``os error N`` in the message (how deltalake's Rust core reports it).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = current.errno if isinstance(current, OSError) else None
        if code is None:
            match = _OS_ERROR.search(str(current))
            if match:
                code = int(match.group(1) or match.group(2))
        if code in _CAUSES:
            cause, words, next_step = _CAUSES[code]
            return LakeUnwritable(cause, f"{words} (os error {code})", next_step)
        current = current.__cause__ or current.__context__
    return None


def where_unwritable(lake_root: str, cause: LakeUnwritable) -> str:
    """Where the lake refuses writes, for the operator: ``on /data/lake`` and, on a full local
    disk, ``(1,234,567 bytes free of 64,000,000)`` of its volume. An object-store URI is named
    as it is (its free space is not the worker's to read)."""
    if "://" in lake_root:
        return f"on {lake_root}"
    where = f"on {lake_root}"
    if cause.cause != "disk_full":
        return where
    path = Path(lake_root).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return where
    return f"{where} ({usage.free:,} bytes free of {usage.total:,})"
