"""What every route of the dataset service shares: settings, stores, the audit writer and the
failed-authentication backoff (:class:`lake.access.backoff.Backoff`)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from lake import DeltaStore
from lake.access import AccessStore, AuditEntry, AuditLog, Principal, access_dir
from lake.access.backoff import Backoff
from lake.curation import CuratedArea
from lake.sharing import ContractStore, contracts_dir
from maxlake.server.signing import UrlSigner
from maxlake.settings import Settings

__all__ = ["AUDITED", "CONTEXT", "KEY_ID", "OPENAPI_PATHS_KEY", "ServiceContext", "audited_target"]

AUDITED = web.RequestKey("maxlake_audited", bool)
"""Request key set once the request has its audit row."""
KEY_ID = web.RequestKey[str | None]("maxlake_key_id")
"""Request key holding the key id of the token presented (None when none or malformed)."""


SECRET_PARAMETERS = frozenset({"token", "access_token", "signature"})
"""Query parameters whose values an audit row never holds (a token someone put in a URL, a
signed link's signature)."""
_TOKEN_TEXT = re.compile(r"(mxl_[0-9a-f]{16}_)[A-Za-z0-9_-]+")


def audited_target(request: web.Request) -> str:
    """``request``'s path and query as audit rows and logs record them: the values of
    :data:`SECRET_PARAMETERS` and the secret part of anything shaped like a token
    (``mxl_<key id>_<secret>``, keeping the key id) replaced by ``<redacted>``."""
    query = [
        f"{k}=<redacted>" if k.lower() in SECRET_PARAMETERS else f"{k}={_redact(v)}"
        for k, v in request.query.items()
    ]
    return _redact(request.path) + ("?" + "&".join(query) if query else "")


def _redact(text: str) -> str:
    return _TOKEN_TEXT.sub(r"\1<redacted>", text)


@dataclass
class ServiceContext:
    """Stores behind the service; blocking work runs in threads (see :meth:`audit`)."""

    settings: Settings
    access: AccessStore
    contracts: ContractStore
    audit_log: AuditLog
    signer: UrlSigner
    curated: CuratedArea
    backoff: Backoff = field(default_factory=Backoff)
    _audit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: list[tuple[AuditEntry, datetime, asyncio.Future[None]]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceContext:
        """Stores at the configured places."""
        return cls(
            settings=settings,
            access=AccessStore(access_dir(settings)),
            contracts=ContractStore(contracts_dir(settings)),
            audit_log=AuditLog(DeltaStore.from_settings(settings)),
            signer=UrlSigner(_url_key(settings), ttl_s=settings.share_url_ttl_s),
            curated=CuratedArea.of(settings),
            backoff=Backoff(
                free_failures=settings.auth_backoff_failures,
                window_s=settings.auth_backoff_window_s,
            ),
        )

    async def authenticate(self, request: web.Request) -> Principal | None:
        """The principal of the request's ``Authorization: Bearer`` token, or None.

        Raises:
            web.HTTPTooManyRequests: the token's key id or the client address is in backoff
                after repeated failures (audited as ``throttled``; no scrypt is computed).
        """
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        key_id = AccessStore.key_id(token)
        request[KEY_ID] = key_id
        wait = self.backoff.retry_after(key_id, request.remote)
        if wait > 0:
            detail = f"too many failed attempts; retry in {wait:.0f} s"
            await self.audit(
                request, AuditEntry("authenticate", "throttled", status=429, detail=detail)
            )
            raise web.HTTPTooManyRequests(
                text=json.dumps(
                    {"error": {"status": 429, "outcome": "throttled", "detail": detail}}
                ),
                content_type="application/json",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        principal = await asyncio.to_thread(self.access.authenticate, token)
        if principal is None:
            self.backoff.failed(key_id, request.remote)
        else:
            self.backoff.succeeded(key_id, request.remote)
        return principal

    async def audit(self, request: web.Request, entry: AuditEntry) -> None:
        """Record one audit row for ``request``; returns once it is committed.

        Rows are group-committed: while one Delta commit runs, the rows of other requests
        wait and go into the next commit together, so a flood of requests costs one commit
        per batch, not one per request.

        Raises:
            Exception: the commit that held this row failed (the row is not recorded).
        """
        request[AUDITED] = True
        row = replace(
            entry,
            channel="http",
            client=request.remote,
            method=request.method,
            key_id=entry.key_id or (request.get(KEY_ID) if entry.principal is None else None),
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, datetime.now(UTC), done))
        async with self._audit_lock:
            if not done.done():
                batch, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(
                        self.audit_log.record_many, [(r, at) for r, at, _ in batch]
                    )
                except Exception as exc:
                    for _, _, waiter in batch:
                        waiter.set_exception(exc)
                else:
                    for _, _, waiter in batch:
                        waiter.set_result(None)
        await done


def _url_key(settings: Settings) -> bytes | None:
    key = settings.share_url_key
    return key.get_secret_value().encode() if key is not None else None


CONTEXT: web.AppKey[ServiceContext] = web.AppKey("maxlake_context", ServiceContext)
OPENAPI_PATHS_KEY: web.AppKey[dict[str, Any]] = web.AppKey("maxlake_openapi_paths", dict)
"""The OpenAPI ``paths`` of every route module of the app, merged when the app is built."""
