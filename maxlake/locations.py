"""Where a file area lives: a local path or an object-store URI. The one place that decides.

The lake root and every area that may live apart from it (contracts, principals, curated sets)
is a string: a local folder (relative or absolute, ``file://`` allowed) or a URI of one of
:data:`OBJECT_STORE_SCHEMES`. :func:`normalize_location` checks and normalises it; the settings
validate with it and :class:`lake.location.LakeLocation` is built on it.
"""

from __future__ import annotations

import re

__all__ = ["OBJECT_STORE_SCHEMES", "is_object_store", "normalize_location"]

OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def normalize_location(text: str, *, what: str = "location") -> str:
    """``text`` as a location: ``file://`` and trailing slashes removed.

    Args:
        text: a local path or an object-store URI (``s3://bucket/prefix``).
        what: how messages name the value (``MAXLAKE_CONTRACTS_DIR``, ``lake root``).

    Raises:
        ValueError: the text is empty, has an unsupported scheme, looks like a URI without
            ``//`` (``s3:/bucket``) or names no bucket.
    """
    root = text.strip()
    if root.startswith("file://"):
        root = root.removeprefix("file://")
    if not root:
        raise ValueError(f"{what} is empty: give a local path or an object-store URI")
    valid = f"a local path or one of {', '.join(s + '://' for s in OBJECT_STORE_SCHEMES)}"
    match = _SCHEME.match(root)
    if match is not None:
        scheme = match.group(1)
        if scheme not in OBJECT_STORE_SCHEMES:
            raise ValueError(f"{what} {text!r}: scheme {scheme!r} is not supported (use {valid})")
        if not root.startswith(f"{scheme}://"):
            raise ValueError(f"{what} {text!r} is not a URI (write {scheme}://bucket/prefix)")
        if not root.removeprefix(f"{scheme}://").strip("/"):
            raise ValueError(f"{what} {text!r} names no bucket (write {scheme}://bucket/prefix)")
    return root.rstrip("/") or "/"


def is_object_store(root: str) -> bool:
    """Whether a normalised location is an object-store URI (else a local path)."""
    return "://" in root
