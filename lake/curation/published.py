"""The manifest as any reader outside the lake operators sees it: one redaction for every channel.

The stored ``manifest.json`` keeps everything needed to rebuild and to revoke (the spec's tenant
and plant filters, the contract ids, the revocation note). What is served over HTTP, written by
``datasets pull`` and ``lake.curation.pull`` leaves out what names a company:

* the spec's ``tenants`` and ``plants`` filters become a count (``"<2 redacted>"``);
* each contract is shown by its per-set opaque ``ref`` (a keyed hash of the contract id and the
  dataset name, so two sets' refs cannot be matched either) and its version; the id and the
  file hash are left out;
* a revocation note (it quotes the contract id and the revoking company's reason) becomes
  ``"a contract this version was built under was revoked"``.
"""

from __future__ import annotations

import json
from typing import Any

from lake.curation.manifest import Manifest

__all__ = ["REVOKED_NOTE", "published_manifest", "published_manifest_bytes"]

REVOKED_NOTE = "a contract this version was built under was revoked"


def published_manifest(manifest: Manifest) -> dict[str, Any]:
    """The JSON object of ``manifest`` with company-naming values redacted (see module doc)."""
    doc: dict[str, Any] = json.loads(manifest.to_json())
    filters = doc.get("spec", {}).get("filters", {})
    for key in ("tenants", "plants"):
        if key in filters:
            filters[key] = f"<{len(filters[key])} redacted>"
    doc["contracts"] = [
        {"ref": str(c.get("ref", "<redacted>")), "version": c.get("version")}
        for c in doc.get("contracts", [])
    ]
    if doc.get("status_reason"):
        doc["status_reason"] = REVOKED_NOTE if doc.get("status") == "revoked" else "<redacted>"
    return doc


def published_manifest_bytes(manifest: Manifest) -> bytes:
    """:func:`published_manifest` as indented, key-sorted JSON with a final newline."""
    return (json.dumps(published_manifest(manifest), indent=2, sort_keys=True) + "\n").encode()
