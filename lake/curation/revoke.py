"""Revoking a contract: record it, then mark every dataset version that used it as revoked.

The revocation registry is the source of truth (the dataset service checks it on every
download, see :func:`revoked_contracts_of`); marking the manifests makes the status visible in
the catalog and keeps ``lake.curation`` readers (``load``, ``pull``) from reading those
versions. Marking rewrites only ``status`` and ``status_reason`` of ``manifest.json``
(atomically); the data files and the content hash stay as they were, for the audit trail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from lake.curation.area import CuratedArea
from lake.curation.manifest import Manifest
from lake.location import LakeLocation
from lake.sharing.store import ContractStore, Revocation

__all__ = ["mark_revoked", "revoke_contract", "revoked_contracts_of", "versions_under"]


def revoke_contract(
    store: ContractStore,
    curated: str | Path | LakeLocation | CuratedArea,
    contract_id: str,
    version: int | None = None,
    *,
    reason: str = "",
) -> tuple[Revocation, list[str]]:
    """Revoke ``contract_id`` (one version, or all) and mark the dataset versions using it.

    Returns:
        The revocation and the ``name@vN`` of every dataset version marked revoked.
    """
    entry = store.revoke(contract_id, version, reason=reason)
    return entry, mark_revoked(curated, entry)


def mark_revoked(
    curated: str | Path | LakeLocation | CuratedArea, revocation: Revocation
) -> list[str]:
    """Set ``status = "revoked"`` on every published version built under ``revocation``.

    Args:
        curated: the curated area (a folder or an object-store location, not the lake root).
        revocation: the revocation just recorded.
    """
    area = curated if isinstance(curated, CuratedArea) else CuratedArea(curated)
    marked: list[str] = []
    for manifest in _built_under(area, revocation.contract, revocation.version):
        if manifest.status != "revoked":
            what = f"{revocation.contract}" + (
                f" v{revocation.version}" if revocation.version is not None else ""
            )
            note = f"contract {what} revoked at {revocation.at}"
            if revocation.reason:
                note += f": {revocation.reason}"
            area.rewrite_manifest(
                dataclasses.replace(manifest, status="revoked", status_reason=note)
            )
            marked.append(f"{manifest.name}@v{manifest.version}")
    return marked


def versions_under(
    curated: str | Path | LakeLocation | CuratedArea, contract_id: str, version: int | None
) -> list[tuple[str, str]]:
    """What revoking ``contract_id`` (one version, or all when None) would mark, changing nothing.

    Returns:
        ``(name@vN, status)`` of every published version built under it, in catalog order;
        those already ``revoked`` stay as they are.
    """
    area = curated if isinstance(curated, CuratedArea) else CuratedArea(curated)
    return [(f"{m.name}@v{m.version}", m.status) for m in _built_under(area, contract_id, version)]


def _built_under(area: CuratedArea, contract_id: str, version: int | None) -> Iterator[Manifest]:
    for name in area.names():
        for number in area.versions(name):
            manifest = area.manifest(name, number)
            if any(
                str(c["id"]) == contract_id and version in (None, int(c["version"]))
                for c in manifest.contracts
            ):
                yield manifest


def revoked_contracts_of(manifest: Manifest, store: ContractStore) -> list[str]:
    """The contracts (``id vN``) a version used that are revoked now."""
    revocations = store.revocations()
    return [
        f"{c['id']} v{c['version']}"
        for c in manifest.contracts
        if any(r.covers(str(c["id"]), int(c["version"])) for r in revocations)
    ]
