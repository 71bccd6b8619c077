"""The manifest as any reader outside the lake operators sees it: one redaction for every channel.

The stored ``manifest.json`` keeps everything needed to rebuild and to revoke (the spec's tenant
and plant filters, the contract ids, the revocation note, per-company counts). What is served
over HTTP, written by ``datasets pull`` and ``lake.curation.pull`` and quoted in the data card
leaves out what names a company or shows which companies a version holds, so that two versions'
published manifests differ only in figures (rows, hashes, label counts, linkage shares), not in
structure:

* the spec's ``tenants``, ``plants`` and ``machine_types`` filters become a count
  (``"<2 redacted>"``; the spec is the same for every version, but a machine type can be one
  company's, and the published manifest names none);
* ``contracts`` becomes ``"<redacted>"``: a list of contracts, even of opaque ids, is one entry
  per company, and an entry missing from the next version says that one company withdrew;
* ``sharing`` keeps what is the same whoever contributes (enforced, purpose, group size) and the
  disclosure report's linkage figures, not the counts of companies, excluded companies,
  suppressed or published machine types and compared versions;
* ``quality`` keeps the verdict and the failed blocking checks; the per-column results (a
  "feature not all null" result per tag says which machine types have rows) are left out;
* ``job_meta``'s per-plant or per-line split cuts (one entry per plant or line: a company's
  shape) become ``"<redacted>"``; under contracts, cuts in the set's own clock that every plant
  happens to share (``cuts``: the keyed time shifts put all plants' cuts on one instant) are
  published the same way, as ``cuts_by_plant``, so whether plants coincide (which changes when
  a company joins or leaves) is not shown; the source tables' row counts and the registry
  hash (a hash of the included companies' machines) are left out;
* pinned split cuts (``cuts`` of the spec's ``params``, its ``[job]`` table, and of
  ``job_meta``) of a version built under contracts become ``"<redacted>"``: they are in lake
  time, and each plant's rows switch split at the cut plus the plant's keyed time shift, so
  the instant and the published rows together would give every plant's shift away;
* ``quality`` keeps of the warnings and their details only the per-split checks
  (``split_rows:``, ``split_label_classes:``; they name splits and labels, not machines);
* a revocation note (it quotes the contract id and the revoking company's reason) becomes
  ``"a contract this version was built under was revoked"``;
* the feature-schema change against the previous version (``schema_change``) keeps the
  columns (they are in both versions' schemas anyway), the changed tags and whether the spec
  changed; the machine types the added tags belong to, the registry versions, the registry
  changes (their authors and reasons may name a company) and the machine types of the pin
  hint are ``"<redacted>"``, and ``registry_version`` is left out.
"""

from __future__ import annotations

import json
from typing import Any

from lake.curation.manifest import Manifest

__all__ = ["REDACTED", "REVOKED_NOTE", "published_manifest", "published_manifest_bytes"]

REVOKED_NOTE = "a contract this version was built under was revoked"
REDACTED = "<redacted>"
_SHARING_KEPT = ("enforced", "stage", "purpose", "min_group_size")
_DISCLOSURE_KEPT = ("rows", "exact_share", "exact_key", "nearest_share", "tolerance")
_QUALITY_KEPT = ("suite", "success", "failed")
_SPLIT_CHECKS = ("split_rows:", "split_label_classes:")
_STRUCTURE_META = ("cuts_by_plant", "cuts_by_line")
_SCHEMA_REDACTED = ("added_tags_by_machine_type", "registry_versions", "registry_notes")


def published_manifest(manifest: Manifest) -> dict[str, Any]:
    """The JSON object of ``manifest`` with company-naming values redacted (see module doc)."""
    doc: dict[str, Any] = json.loads(manifest.to_json())
    filters = doc.get("spec", {}).get("filters", {})
    for key in ("tenants", "plants", "machine_types"):
        if key in filters:
            filters[key] = f"<{len(filters[key])} redacted>"
    doc["contracts"] = REDACTED if doc.get("contracts") else []
    sharing = doc.get("sharing")
    if sharing is not None:
        kept = {k: sharing[k] for k in _SHARING_KEPT if k in sharing}
        if "disclosure" in sharing:
            report = sharing["disclosure"]
            kept["disclosure"] = {k: report[k] for k in _DISCLOSURE_KEPT if k in report}
        doc["sharing"] = kept
    quality = doc.get("quality", {})
    doc["quality"] = {k: quality[k] for k in _QUALITY_KEPT if k in quality}
    for key in ("warnings", "details"):
        if key in quality:
            doc["quality"][key] = [str(w) for w in quality[key] if str(w).startswith(_SPLIT_CHECKS)]
    if manifest.enforced and doc.get("job_meta", {}).get("cuts_pinned"):
        doc["job_meta"]["cuts"] = REDACTED
        params = doc.get("spec", {}).get("params")
        if isinstance(params, dict) and "cuts" in params:
            params["cuts"] = REDACTED
    meta = doc.get("job_meta", {})
    if manifest.enforced and meta.get("cuts_clock") == "set" and "cuts" in meta:
        meta["cuts_by_plant"] = meta.pop("cuts")
    for key in _STRUCTURE_META:
        if key in meta:
            meta[key] = REDACTED
    doc["registry_hash"] = REDACTED
    for source in doc.get("sources", {}).values():
        source.pop("rows", None)
    change = doc.get("schema_change")
    if isinstance(change, dict) and change.get("changed"):
        for key in _SCHEMA_REDACTED:
            if key in change:
                change[key] = REDACTED
        if isinstance(change.get("pin"), dict):
            change["pin"]["machine_types"] = REDACTED
    doc.pop("registry_version", None)
    if doc.get("status_reason"):
        doc["status_reason"] = REVOKED_NOTE if doc.get("status") == "revoked" else REDACTED
    return doc


def published_manifest_bytes(manifest: Manifest) -> bytes:
    """:func:`published_manifest` as indented, key-sorted JSON with a final newline."""
    return (json.dumps(published_manifest(manifest), indent=2, sort_keys=True) + "\n").encode()
