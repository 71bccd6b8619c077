"""The contract store: versioned contract files per tenant and the registry of revocations.

Layout under the contracts folder (a local folder or a prefix of the lake's object store)::

    <tenant>/<contract-id>/v1.toml, v2.toml, ...   accepted files, never rewritten
    revocations.jsonl                               one JSON object per revocation, append-only
                                                    (conditional writes: no revocation is lost)

The newest version of a contract is the one in force. Revoking a contract (every version) or
its newest version takes it out of force: there is no silent fallback to an older version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lake.location import LakeLocation
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
    """Contracts under one folder (a local path or an object-store location)."""

    def __init__(self, root: str | Path | LakeLocation) -> None:
        self.location = LakeLocation.of(str(root) if isinstance(root, Path) else root)
        self.files = self.location.files()

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
        folder = f"{draft.tenant}/{draft.id}"
        while True:
            version = max(self._versions(folder), default=0) + 1
            try:
                self.files.write_bytes(f"{folder}/v{version}.toml", data, mode="create")
            except FileExistsError:
                continue
            source = self.location.uri(folder, f"v{version}.toml")
            return parse_contract(data, source=source, version=version)

    def raw(self, contract: Contract) -> bytes:
        """The stored file of ``contract`` (its id and version), byte for byte."""
        return self.files.read_bytes(f"{contract.tenant}/{contract.id}/v{contract.version}.toml")

    def contracts(self) -> list[Contract]:
        """Every stored version of every contract, by tenant, id and version."""
        return [
            self._read(tenant, name, v)
            for tenant, name in self._folders()
            for v in self._versions(f"{tenant}/{name}")
        ]

    def get(self, contract_id: str, version: int | None = None) -> Contract:
        """One version (default: the newest) of a contract."""
        folders = list(self._folders())
        found = next((f for f in folders if f[1] == contract_id), None)
        versions = self._versions("/".join(found)) if found is not None else []
        if found is None or not versions:
            raise ContractNotFound(contract_id, sorted({name for _, name in folders}))
        wanted = versions[-1] if version is None else version
        if wanted not in versions:
            raise ContractNotFound(f"{contract_id} v{wanted}", [f"v{v}" for v in versions])
        return self._read(*found, wanted)

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
        line = (json.dumps(entry.__dict__, sort_keys=True) + "\n").encode()
        self.files.update(REVOCATIONS_FILE, lambda old: (old or b"") + line)
        return entry

    def revocations(self) -> list[Revocation]:
        """Every revocation, oldest first."""
        try:
            text = self.files.read_bytes(REVOCATIONS_FILE).decode("utf-8")
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(Revocation(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                where = self.location.uri(REVOCATIONS_FILE)
                detail = f"not a revocation: {exc}"
                raise ContractError(where, f"line {number}", detail) from exc
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
        for owner, name in self._folders(tenant):
            versions = self._versions(f"{owner}/{name}")
            if not versions:
                continue
            newest = self._read(owner, name, versions[-1])
            if any(r.covers(newest.id, newest.version) for r in revocations):
                continue
            if newest.covers(purpose):
                found.append(newest)
        if len(found) > 1:
            raise ContractConflict(tenant, purpose, [c.id for c in found])
        return found[0] if found else None

    def _owner(self, contract_id: str) -> str | None:
        return next((tenant for tenant, name in self._folders() if name == contract_id), None)

    def _folders(self, tenant: str | None = None) -> Iterator[tuple[str, str]]:
        """(tenant, contract id) of every contract folder, sorted."""
        tenants = [tenant] if tenant else self.files.list()[0]
        for owner in tenants:
            for name in self.files.list(owner)[0]:
                yield owner, name

    def _versions(self, folder: str) -> list[int]:
        return sorted(
            int(m.group(1)) for n in self.files.list(folder)[1] if (m := _VERSION_FILE.match(n))
        )

    def _read(self, tenant: str, name: str, version: int) -> Contract:
        path = f"{tenant}/{name}/v{version}.toml"
        source = self.location.uri(path)
        contract = parse_contract(self.files.read_bytes(path), source=source, version=version)
        if contract.id != name or contract.tenant != tenant:
            raise ContractError(source, "id", "does not match the folder it is stored in")
        return contract
