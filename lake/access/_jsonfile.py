"""The bytes of a JSON file of the access folder (written by ``LakeFiles``: atomically, and
with mode 0600 on a local disk)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["private_json"]


def private_json(doc: Any) -> bytes:
    """``doc`` (JSON values only) as indented, key-sorted UTF-8 JSON."""
    return json.dumps(doc, indent=2, sort_keys=True).encode("utf-8")
