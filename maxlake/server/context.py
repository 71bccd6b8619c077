"""What every route of the dataset service shares: settings, stores and the audit writer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from lake import DeltaStore
from lake.access import AccessStore, AuditEntry, AuditLog, Principal, access_dir
from lake.sharing import ContractStore, contracts_dir
from maxlake.settings import Settings

__all__ = ["CONTEXT", "ServiceContext"]


@dataclass
class ServiceContext:
    """Stores behind the service; blocking work runs in threads (see :meth:`audit`)."""

    settings: Settings
    access: AccessStore
    contracts: ContractStore
    audit_log: AuditLog
    _audit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceContext:
        """Stores at the configured places."""
        return cls(
            settings=settings,
            access=AccessStore(access_dir(settings)),
            contracts=ContractStore(contracts_dir(settings)),
            audit_log=AuditLog(DeltaStore.from_settings(settings)),
        )

    async def authenticate(self, request: web.Request) -> Principal | None:
        """The principal of the request's ``Authorization: Bearer`` token, or None."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return await asyncio.to_thread(self.access.authenticate, token.strip())

    async def audit(self, request: web.Request, entry: AuditEntry) -> None:
        """Append one audit row (writes are serialised: one Delta commit at a time)."""
        async with self._audit_lock:
            await asyncio.to_thread(self.audit_log.record, _with_client(entry, request))


def _with_client(entry: AuditEntry, request: web.Request) -> AuditEntry:
    from dataclasses import replace

    return replace(entry, channel="http", client=request.remote)


CONTEXT: web.AppKey[ServiceContext] = web.AppKey("maxlake_context", ServiceContext)
