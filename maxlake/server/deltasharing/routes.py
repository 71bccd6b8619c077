"""The Delta Sharing REST endpoints under :data:`PREFIX`, and the signed file route.

Every request leaves exactly one row in ``ops/audit``: ``action`` is ``sharing.<operation>``,
``dataset``/``split``/``version`` are the schema, table and table version, ``rows`` the rows a
query hands out, ``detail`` the file count and the hints. Reads that hand out data (query, file)
are audited before the answer; when that write fails, nothing is served (503).

Not implemented, answered with the protocol's 400 error: change data feed (``/changes``),
``timestamp``, ``startingVersion``/``endingVersion`` in a query, ``startingTimestamp`` on
``/version``, and the ``delta`` response format (a client asking for ``delta`` only). Predicate
hints are accepted and ignored (one file per table: nothing to skip), as the protocol allows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from aiohttp import web

from lake.access import AuditEntry, Decision, Principal
from lake.curation.manifest import Manifest, file_sha256
from maxlake.server.context import CONTEXT, ServiceContext
from maxlake.server.deltasharing import actions, catalog
from maxlake.server.deltasharing.errors import error_response
from maxlake.server.deltasharing.openapi import OPENAPI_PATHS
from maxlake.server.deltasharing.paging import PageError, paginate
from maxlake.server.deltasharing.paths import FILES, PREFIX
from maxlake.server.deltasharing.schema import schema_string
from maxlake.server.signing import SignatureError

__all__ = ["OPENAPI_PATHS", "routes"]

NDJSON = "application/x-ndjson"
CAPABILITIES = "delta-sharing-capabilities"
_TABLE = PREFIX + "/shares/{share}/schemas/{schema}/tables/{table}"
OPT_IN_PARAM = "allow_failed_quality"
QUALITY_HEADER = "X-Maxlake-Quality"
_UNSUPPORTED_QUERY = ("timestamp", "startingVersion", "endingVersion", "startingTimestamp")

routes = web.RouteTableDef()


class _Refused(Exception):
    """A request refused before its operation ran; carries the audited error response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


Operation = Callable[[web.Request, ServiceContext, Principal], Awaitable[web.StreamResponse]]


async def _serve(request: web.Request, op: str, operation: Operation) -> web.StreamResponse:
    """Authenticate, run ``operation``; a refusal on the way is audited and answered."""
    ctx = request.app[CONTEXT]
    try:
        principal = await _principal(request, ctx, op)
        return await operation(request, ctx, principal)
    except _Refused as refused:
        return refused.response


async def _principal(request: web.Request, ctx: ServiceContext, op: str) -> Principal:
    try:
        principal = await ctx.authenticate(request)
    except web.HTTPTooManyRequests as throttled:  # already audited by authenticate
        detail = json.loads(throttled.text or "{}").get("error", {}).get("detail", "throttled")
        retry = {"Retry-After": throttled.headers.get("Retry-After", "1")}
        raise _Refused(error_response(429, detail, headers=retry)) from None
    if principal is not None:
        return principal
    token = _bearer(request)
    expired = await asyncio.to_thread(ctx.access.expired_at, token) if token else None
    if expired is not None:
        detail = f"the profile's token expired at {expired}; ask the data owner for a new profile"
    else:
        detail = "a valid bearer token is required (Authorization: Bearer <profile bearerToken>)"
    raise await _refusal(request, ctx, op, Decision("unauthenticated", 401, detail))


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _refusal(
    request: web.Request,
    ctx: ServiceContext,
    op: str,
    decision: Decision,
    *,
    principal: Principal | None = None,
    ref: catalog.TableRef | None = None,
) -> _Refused:
    """Audit a refused request; the exception to raise carries the protocol error."""
    manifest = decision.manifest
    well_formed = decision.outcome not in ("invalid", "unauthenticated")
    asked = f" (asked: {ref.share}.{ref.schema}.{ref.table})" if ref and not well_formed else ""
    entry = AuditEntry(
        f"sharing.{op}",
        decision.outcome,
        principal=principal.name if principal is not None else None,
        dataset=(manifest.name if manifest else ref.schema if ref else None)
        if well_formed
        else None,
        version=manifest.version if manifest else None,
        split=ref.table if ref and well_formed else None,
        status=decision.status,
        detail=(decision.detail + asked)[:500],
    )
    await ctx.audit(request, entry)
    return _Refused(error_response(decision.status, decision.detail))


async def _allowed(request: web.Request, ctx: ServiceContext, op: str, entry: AuditEntry) -> None:
    """Audit an allowed request; a failed write refuses it (503), nothing is served untraced."""
    try:
        await ctx.audit(request, entry)
    except Exception as exc:  # any audit failure must stop the answer
        detail = f"the access could not be audited, not served: {type(exc).__name__}"
        raise _Refused(error_response(503, detail)) from exc


def _page(items: list[Any], request: web.Request, **kwargs: Any) -> dict[str, object]:
    return paginate(items, request.query, **kwargs).body()


async def _listing(
    request: web.Request,
    ctx: ServiceContext,
    principal: Principal,
    op: str,
    build: Callable[[], dict[str, object]],
    *,
    dataset: str | None = None,
) -> web.Response:
    try:
        body = build()
    except PageError as exc:
        raise await _refusal(
            request, ctx, op, Decision("invalid", 400, str(exc)), principal=principal
        ) from exc
    items = body.get("items")
    rows = len(items) if isinstance(items, list) else None
    entry = AuditEntry(
        f"sharing.{op}", "allowed", principal=principal.name, dataset=dataset, rows=rows, status=200
    )
    await _allowed(request, ctx, op, entry)
    return web.json_response(body, content_type="application/json")


@routes.get(PREFIX + "/shares")
async def list_shares(request: web.Request) -> web.StreamResponse:
    """The caller's one share."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        share = ctx.settings.share_name

        def build() -> dict[str, object]:
            return _page(
                [share],
                request,
                key=str,
                render=lambda s: {"name": s, "id": catalog.share_id(s)},
            )

        return await _listing(request, ctx, principal, "list_shares", build)

    return await _serve(request, "list_shares", run)


@routes.get(PREFIX + "/shares/{share}")
async def get_share(request: web.Request) -> web.StreamResponse:
    """One share by name."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref = catalog.TableRef.of(request.match_info["share"], "")
        await _check_share(request, ctx, principal, "get_share", ref)
        share = {"name": ref.share, "id": catalog.share_id(ref.share)}
        return await _listing(request, ctx, principal, "get_share", lambda: {"share": share})

    return await _serve(request, "get_share", run)


@routes.get(PREFIX + "/shares/{share}/schemas")
async def list_schemas(request: web.Request) -> web.StreamResponse:
    """The datasets of the share."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref, manifests = await _visible(request, ctx, principal, "list_schemas")

        def build() -> dict[str, object]:
            return _page(
                manifests,
                request,
                key=lambda m: m.name,
                render=lambda m: {"name": m.name, "share": ref.share},
            )

        return await _listing(request, ctx, principal, "list_schemas", build)

    return await _serve(request, "list_schemas", run)


@routes.get(PREFIX + "/shares/{share}/schemas/{schema}/tables")
async def list_tables(request: web.Request) -> web.StreamResponse:
    """The splits of one dataset's newest servable version."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref = catalog.TableRef.of(request.match_info["share"], request.match_info["schema"])
        manifest = await _decide(request, ctx, principal, "list_tables", ref, None)

        def build() -> dict[str, object]:
            return _page(
                sorted(manifest.splits),
                request,
                key=str,
                render=lambda split: _table_item(ref.share, manifest.name, split),
            )

        return await _listing(request, ctx, principal, "list_tables", build, dataset=manifest.name)

    return await _serve(request, "list_tables", run)


@routes.get(PREFIX + "/shares/{share}/all-tables")
async def list_all_tables(request: web.Request) -> web.StreamResponse:
    """Every split of every dataset of the share."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref, manifests = await _visible(request, ctx, principal, "list_all_tables")
        tables = [(m.name, split) for m in manifests for split in sorted(m.splits)]

        def build() -> dict[str, object]:
            return _page(
                tables,
                request,
                key=lambda t: f"{t[0]}.{t[1]}",
                render=lambda t: _table_item(ref.share, t[0], t[1]),
            )

        return await _listing(request, ctx, principal, "list_all_tables", build)

    return await _serve(request, "list_all_tables", run)


@routes.get(_TABLE + "/version")
async def table_version(request: web.Request) -> web.StreamResponse:
    """The newest servable dataset version, in the ``Delta-Table-Version`` header."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref = _table_ref(request)
        await _reject_unsupported(request, ctx, principal, "table_version", dict(request.query))
        manifest = await _decide(request, ctx, principal, "table_version", ref, None)
        entry = _entry("table_version", principal, manifest, ref)
        await _allowed(request, ctx, "table_version", entry)
        return web.Response(status=200, headers={"Delta-Table-Version": str(manifest.version)})

    return await _serve(request, "table_version", run)


@routes.get(_TABLE + "/metadata")
async def table_metadata(request: web.Request) -> web.StreamResponse:
    """Protocol and metadata of a table at the newest servable version."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref = _table_ref(request)
        await _check_format(request, ctx, principal, "table_metadata")
        manifest = await _decide(request, ctx, principal, "table_metadata", ref, None)
        meta = await _metadata(ctx, manifest, ref, with_version=False)
        await _allowed(
            request, ctx, "table_metadata", _entry("table_metadata", principal, manifest, ref)
        )
        return _ndjson([actions.protocol_line(), meta], manifest)

    return await _serve(request, "table_metadata", run)


@routes.post(_TABLE + "/query")
async def query(request: web.Request) -> web.StreamResponse:
    """The file of a table at the newest or a pinned version, with a signed short-lived URL."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref = _table_ref(request)
        await _check_format(request, ctx, principal, "query")
        body = await _query_body(request, ctx, principal)
        await _reject_unsupported(request, ctx, principal, "query", body)
        version, limit = body.get("version"), body.get("limitHint")
        manifest = await _decide(request, ctx, principal, "query", ref, version)
        split = str(ref.table)
        with_version = version is not None
        meta = await _metadata(ctx, manifest, ref, with_version=with_version)
        path = f"{FILES}/{manifest.name}/v{manifest.version}/{split}.parquet"
        opted = bool(catalog.opts_in(ctx, ref.share))
        params, expires_ms = ctx.signer.query(_signed_path(path, opted), principal.name)
        if opted:
            params += f"&{OPT_IN_PARAM}=1"
        file = actions.file_line(
            manifest,
            split,
            url=f"{_endpoint(request, ctx)}{path.removeprefix(PREFIX)}?{params}",
            size=int(meta["metaData"]["size"]),
            expiration_ms=expires_ms,
            with_version=with_version,
        )
        entry = _entry(
            "query",
            principal,
            manifest,
            ref,
            rows=manifest.splits[split].rows,
            detail=f"files=1 limitHint={limit} version={'pinned' if with_version else 'latest'}"
            + (f" {OPT_IN_PARAM}" if opted else ""),
        )
        await _allowed(request, ctx, "query", entry)
        return _ndjson([actions.protocol_line(), meta, file], manifest)

    return await _serve(request, "query", run)


@routes.get(_TABLE + "/changes")
async def changes(request: web.Request) -> web.StreamResponse:
    """Change data feed: not offered (a dataset version never changes once published)."""

    async def run(request: web.Request, ctx: ServiceContext, principal: Principal) -> Any:
        ref = _table_ref(request)
        detail = (
            "change data feed is not offered: a dataset version never changes; "
            "read a version with a query and 'version'"
        )
        raise await _refusal(
            request, ctx, "changes", Decision("invalid", 400, detail), principal=principal, ref=ref
        )

    return await _serve(request, "changes", run)


@routes.get(FILES + "/{name}/v{version:[0-9]+}/{split}.parquet")
async def file(request: web.Request) -> web.StreamResponse:
    """A split's Parquet file behind a signed URL (GET with ranges, or HEAD)."""
    ctx = request.app[CONTEXT]
    op = "file_head" if request.method == "HEAD" else "file"
    name, version, split = (
        request.match_info["name"],
        request.match_info["version"],
        request.match_info["split"],
    )
    ref = catalog.TableRef(ctx.settings.share_name, name, split)
    opted = request.query.get(OPT_IN_PARAM) == "1"
    try:
        signed = ctx.signer.verify(_signed_path(request.path, opted), request.query)
    except SignatureError as exc:
        refused = await _refusal(request, ctx, op, Decision("denied", 403, str(exc)), ref=ref)
        return refused.response
    principal = await asyncio.to_thread(_principal_named, ctx, signed.principal)
    decision = await asyncio.to_thread(catalog.check, ctx, principal, name, version, split, opted)
    if decision.status == 401:
        decision = Decision("denied", 403, f"principal {signed.principal!r} no longer exists")
    manifest = decision.manifest
    if decision.allowed and manifest is not None:
        path = await asyncio.to_thread(_split_path, ctx, manifest, split)
        if await asyncio.to_thread(file_sha256, path) != manifest.splits[split].sha256:
            decision = Decision("error", 500, "the stored split does not match its manifest")
    if not decision.allowed or manifest is None:
        refused = await _refusal(request, ctx, op, decision, principal=principal, ref=ref)
        return refused.response
    assert principal is not None
    detail = _range(request, manifest.splits[split].rows)
    entry = AuditEntry(**{**_entry(op, principal, manifest, ref).__dict__, "format": "parquet"})
    entry = dataclasses.replace(entry, detail=detail)
    try:
        await _allowed(request, ctx, op, entry)
    except _Refused as refused:
        return refused.response
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


def _signed_path(path: str, opted: bool) -> str:
    """What a file URL's signature covers: its path, and the opt-in of the share that issued
    it (a URL of the plain share cannot be turned into one that reads a failed version)."""
    return f"{path}?{OPT_IN_PARAM}" if opted else path


def _principal_named(ctx: ServiceContext, name: str) -> Principal | None:
    return next((p for p in ctx.access.list() if p.name == name), None)


def _range(request: web.Request, rows: int) -> str:
    """What a file request sent, for its audit row. The rows a read handed out are on its
    ``sharing.query`` row (one per signed URL); the file requests behind it carry none, so
    summing ``rows`` counts each read once however many range requests the client made."""
    if request.method == "HEAD":
        return "HEAD: no data sent"
    wanted = request.headers.get("Range")
    if wanted:
        return f"range {wanted[:60]} of the split's file ({rows:,} rows)"
    return f"whole file ({rows:,} rows)"


async def _visible(
    request: web.Request, ctx: ServiceContext, principal: Principal, op: str
) -> tuple[catalog.TableRef, list[Manifest]]:
    """The share asked for (checked) and the newest servable manifest of each granted set."""
    ref = catalog.TableRef.of(request.match_info["share"], "")
    opted = await _check_share(request, ctx, principal, op, ref)
    manifests = await asyncio.to_thread(catalog.visible, ctx, principal, allow_failed_quality=opted)
    return ref, manifests


async def _check_share(
    request: web.Request,
    ctx: ServiceContext,
    principal: Principal,
    op: str,
    ref: catalog.TableRef,
) -> bool:
    """Whether the share asked for opts in to failed-quality versions (refused: unknown)."""
    opted = catalog.opts_in(ctx, ref.share)
    if opted is None:
        decision = catalog.unknown_share(ctx, ref.share)
        raise await _refusal(request, ctx, op, decision, principal=principal)
    return opted


async def _decide(
    request: web.Request,
    ctx: ServiceContext,
    principal: Principal,
    op: str,
    ref: catalog.TableRef,
    version: int | None,
) -> Manifest:
    decision = await asyncio.to_thread(catalog.resolve, ctx, principal, ref, version)
    if not decision.allowed or decision.manifest is None:
        raise await _refusal(request, ctx, op, decision, principal=principal, ref=ref)
    return decision.manifest


async def _check_format(
    request: web.Request, ctx: ServiceContext, principal: Principal, op: str
) -> None:
    """A client that accepts only ``responseformat=delta`` is refused (parquet is served)."""
    capabilities = request.headers.get(CAPABILITIES, "")
    for part in capabilities.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "responseformat" and "parquet" not in value.lower().split(","):
            detail = "this server answers in responseformat=parquet only (use_delta_format=False)"
            raise await _refusal(
                request, ctx, op, Decision("invalid", 400, detail), principal=principal
            )


async def _query_body(
    request: web.Request, ctx: ServiceContext, principal: Principal
) -> dict[str, Any]:
    problem = None
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        body, problem = {}, "the request body is not JSON"
    if not problem and not isinstance(body, dict):
        problem = "the request body is not a JSON object"
    for key in ("version", "limitHint"):
        value = body.get(key) if isinstance(body, dict) else None
        if value is not None and (type(value) is not int or value < 0):
            problem = f"{key} must be a non-negative integer, not {value!r}"
    if problem:
        raise await _refusal(
            request, ctx, "query", Decision("invalid", 400, problem), principal=principal
        )
    return dict(body)


async def _reject_unsupported(
    request: web.Request,
    ctx: ServiceContext,
    principal: Principal,
    op: str,
    params: dict[str, Any],
) -> None:
    given = [k for k in _UNSUPPORTED_QUERY if params.get(k) is not None]
    if given:
        detail = f"{', '.join(given)} is not supported by this server; pin a table version instead"
        raise await _refusal(
            request, ctx, op, Decision("invalid", 400, detail), principal=principal
        )


async def _metadata(
    ctx: ServiceContext, manifest: Manifest, ref: catalog.TableRef, *, with_version: bool
) -> dict[str, Any]:
    split = str(ref.table)
    path = await asyncio.to_thread(_split_path, ctx, manifest, split)
    schema = await asyncio.to_thread(pq.read_schema, path)
    size = (await asyncio.to_thread(path.stat)).st_size
    return actions.metadata_line(
        manifest,
        split,
        table_id=catalog.table_id(ref.share, manifest.name, split),
        schema_string=schema_string(schema),
        size=size,
        with_version=with_version,
    )


def _split_path(ctx: ServiceContext, manifest: Manifest, split: str) -> Path:
    info = manifest.splits[split]
    return ctx.curated.local_file(manifest.name, manifest.version, info.file, info.sha256)


def _table_ref(request: web.Request) -> catalog.TableRef:
    info = request.match_info
    return catalog.TableRef.of(info["share"], info["schema"], info["table"])


def _table_item(share: str, schema: str, table: str) -> dict[str, str]:
    return {
        "name": table,
        "schema": schema,
        "share": share,
        "shareId": catalog.share_id(share),
        "id": catalog.table_id(share, schema, table),
    }


def _entry(
    op: str,
    principal: Principal,
    manifest: Manifest,
    ref: catalog.TableRef,
    *,
    rows: int | None = None,
    detail: str = "",
) -> AuditEntry:
    return AuditEntry(
        f"sharing.{op}",
        "allowed",
        principal=principal.name,
        dataset=manifest.name,
        version=manifest.version,
        split=ref.table,
        rows=rows,
        status=200,
        detail=detail,
    )


def _endpoint(request: web.Request, ctx: ServiceContext) -> str:
    configured = ctx.settings.share_endpoint
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}{PREFIX}"


def _ndjson(lines: list[dict[str, Any]], manifest: Manifest) -> web.Response:
    return web.Response(
        body=actions.ndjson(lines),
        headers={
            "Content-Type": f"{NDJSON}; charset=utf-8",
            "Delta-Table-Version": str(manifest.version),
            QUALITY_HEADER: "passed" if manifest.quality_passed else "failed",
        },
    )
