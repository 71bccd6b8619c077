"""The contract store: versioned contract files per tenant and the registry of revocations.

Layout under the contracts folder::

    <tenant>/<contract-id>/v1.toml, v2.toml, ...   accepted files, never rewritten
    revocations.jsonl                               one JSON object per revocation, append-only

The newest version of a contract is the one in force. Revoking a contract (every version) or
its newest version takes it out of force: there is no silent fallback to an older version.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lake.sharing.contract import Contract, parse_contract
from lake.sharing.errors import ContractConflict, ContractError, ContractNotFound

__all__ = ["REVOCATIONS_FILE", "ContractStore", "Revocation"]

REVOCATIONS_FILE = "revocations.jsonl"
_VERSION_FILE = re.compile(r"^v([1-9][0-9]{0,8})\.toml$")


@dataclass(frozen=True)
class Revocation:
    """One entry of the revocation registry; ``version`` None revokes every version."""

    contract: str
    version: int | None
    at: str
    reason: str

    def covers(self, contract: str, version: int) -> bool:
        """Whether this revocation applies to ``contract`` at ``version``."""
        return self.contract == contract and self.version in (None, version)


class ContractStore:
    """Contracts under one folder (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def add(self, data: bytes, *, source: str = "<contract>") -> Contract:
        """Validate ``data`` and store it as the next version of its contract id.

        Raises:
            ContractError: the file is invalid, or its id belongs to another tenant.
        """
        draft = parse_contract(data, source=source)
        owner = self._owner(draft.id)
        if owner is not None and owner != draft.tenant:
            raise ContractError(
                source, "id", f"contract {draft.id!r} belongs to tenant {owner!r}; pick a new id"
            )
        folder = self.root / draft.tenant / draft.id
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            version = max(self._versions(folder), default=0) + 1
            try:
                with open(folder / f"v{version}.toml", "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except FileExistsError:
                continue
            return parse_contract(data, source=str(folder / f"v{version}.toml"), version=version)

    def contracts(self) -> list[Contract]:
        """Every stored version of every contract, by tenant, id and version."""
        return [self._read(folder, v) for folder in self._folders() for v in self._versions(folder)]

    def get(self, contract_id: str, version: int | None = None) -> Contract:
        """One version (default: the newest) of a contract."""
        folder = next((f for f in self._folders() if f.name == contract_id), None)
        versions = self._versions(folder) if folder is not None else []
        if folder is None or not versions:
            raise ContractNotFound(contract_id, sorted({f.name for f in self._folders()}))
        wanted = versions[-1] if version is None else version
        if wanted not in versions:
            raise ContractNotFound(f"{contract_id} v{wanted}", [f"v{v}" for v in versions])
        return self._read(folder, wanted)

    def revoke(
        self, contract_id: str, version: int | None = None, *, reason: str = ""
    ) -> Revocation:
        """Append a revocation of ``contract_id`` (one version, or all when None)."""
        self.get(contract_id, version)
        entry = Revocation(
            contract_id,
            version,
            datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            reason,
        )
        line = json.dumps(entry.__dict__, sort_keys=True) + "\n"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / REVOCATIONS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def revocations(self) -> list[Revocation]:
        """Every revocation, oldest first."""
        path = self.root / REVOCATIONS_FILE
        if not path.is_file():
            return []
        out = []
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(Revocation(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise ContractError(
                    str(path), f"line {number}", f"not a revocation: {exc}"
                ) from exc
        return out

    def is_revoked(self, contract_id: str, version: int) -> bool:
        """Whether ``contract_id`` at ``version`` has been revoked."""
        return any(r.covers(contract_id, version) for r in self.revocations())

    def in_force(self, tenant: str, purpose: str) -> Contract | None:
        """The tenant's contract in force for ``purpose``, or None.

        Raises:
            ContractConflict: more than one contract of the tenant covers the purpose.
        """
        revocations = self.revocations()
        found = []
        for folder in self._folders(tenant):
            versions = self._versions(folder)
            if not versions:
                continue
            newest = self._read(folder, versions[-1])
            if any(r.covers(newest.id, newest.version) for r in revocations):
                continue
            if newest.covers(purpose):
                found.append(newest)
        if len(found) > 1:
            raise ContractConflict(tenant, purpose, [c.id for c in found])
        return found[0] if found else None

    def _owner(self, contract_id: str) -> str | None:
        return next((f.parent.name for f in self._folders() if f.name == contract_id), None)

    def _folders(self, tenant: str | None = None) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        tenants = [self.root / tenant] if tenant else sorted(self.root.iterdir())
        for tenant_dir in tenants:
            if tenant_dir.is_dir():
                yield from sorted(p for p in tenant_dir.iterdir() if p.is_dir())

    @staticmethod
    def _versions(folder: Path) -> list[int]:
        return sorted(
            int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_FILE.match(p.name))
        )

    @staticmethod
    def _read(folder: Path, version: int) -> Contract:
        path = folder / f"v{version}.toml"
        contract = parse_contract(path.read_bytes(), source=str(path), version=version)
        if contract.id != folder.name or contract.tenant != folder.parent.name:
            raise ContractError(str(path), "id", "does not match the folder it is stored in")
        return contract
