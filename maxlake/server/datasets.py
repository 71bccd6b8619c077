"""Dataset routes: list what a token may see, show a manifest, download a split.

Every request, allowed or not, leaves one row in ``ops/audit`` (see :mod:`lake.access.audit`).
A download is audited *before* the first byte is sent; when the audit write fails the data is
not served (503). The read decision is :func:`maxlake.server.deltasharing.catalog.check`
(:func:`lake.access.check_read` against the service's stores), the one Delta Sharing uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from aiohttp import web

from lake.access import AuditEntry, Decision
from lake.curation import list_datasets
from lake.curation.card import CARD_FILE, stored_card
from lake.curation.manifest import MANIFEST_FILE, Manifest, file_sha256
from lake.curation.published import published_manifest_bytes
from maxlake.errors import TerminalError
from maxlake.server.context import CONTEXT, ServiceContext
from maxlake.server.deltasharing import catalog

__all__ = ["OPENAPI_PATHS", "routes"]

routes = web.RouteTableDef()

ARROW_STREAM = "application/vnd.apache.arrow.stream"
QUALITY_HEADER = "X-Maxlake-Quality"
"""``passed`` or ``failed``: whether the version passed its output checks."""
_BATCH_ROWS = 65_536


@routes.get("/v1/datasets")
async def list_visible(request: web.Request) -> web.Response:
    """Datasets the token holds a grant for that have a servable version; a version that
    failed its output checks is listed with ``"quality": "failed"`` (downloads need
    ``?allow_failed_quality=true``)."""
    ctx = request.app[CONTEXT]
    principal = await ctx.authenticate(request)
    if principal is None:
        return await _refuse(
            request, ctx, "list", Decision("unauthenticated", 401, "a valid token is required")
        )
    visible: list[dict[str, Any]] = []
    for summary in await asyncio.to_thread(list_datasets, ctx.curated):
        if not principal.may_read(summary.name) or summary.latest is None:
            continue
        decision = await asyncio.to_thread(
            _check, ctx, principal, summary.name, None, None, allow_failed_quality=True
        )
        if decision.allowed and decision.manifest is not None:
            m = decision.manifest
            visible.append(
                {
                    "name": summary.name,
                    "latest": m.version,
                    "purpose": summary.purpose,
                    "description": summary.description,
                    "splits": {n: s.rows for n, s in m.splits.items()},
                    "quality": "passed" if m.quality_passed else "failed",
                    "failed_checks": m.quality_failed,
                }
            )
    entry = AuditEntry("list", "allowed", principal=principal.name, rows=len(visible), status=200)
    await ctx.audit(request, entry)
    return web.json_response({"datasets": visible})


@routes.get("/v1/datasets/{name}")
async def show_latest(request: web.Request) -> web.Response:
    """The manifest of the newest active version."""
    return await _show(request, None)


@routes.get("/v1/datasets/{name}/versions/{version}")
async def show_version(request: web.Request) -> web.Response:
    """The manifest of one version (``3``, ``v3`` or ``latest``)."""
    return await _show(request, _version(request))


@routes.get("/v1/datasets/{name}/versions/{version}/splits/{split}")
async def download(request: web.Request) -> web.StreamResponse:
    """One split as Parquet (``?format=parquet``, default) or an Arrow IPC stream (``arrow``)."""
    ctx = request.app[CONTEXT]
    name, version, split = (
        request.match_info["name"],
        _version(request),
        request.match_info["split"],
    )
    fmt = request.query.get("format", "parquet")
    allow_failed = _allow_failed(request)
    principal = await ctx.authenticate(request)
    decision = await asyncio.to_thread(
        _check, ctx, principal, name, version, split, allow_failed_quality=allow_failed
    )
    if decision.allowed and fmt not in ("parquet", "arrow"):
        decision = Decision("invalid", 400, f"format {fmt!r} is not 'parquet' or 'arrow'")
    manifest = decision.manifest
    if not decision.allowed or manifest is None:
        return await _refuse(
            request,
            ctx,
            "download",
            decision,
            principal=principal,
            name=name,
            version=version,
            split=split,
        )
    info = manifest.splits[split]
    path = await asyncio.to_thread(
        ctx.curated.local_file, manifest.name, manifest.version, info.file, info.sha256
    )
    if await asyncio.to_thread(file_sha256, path) != info.sha256:
        broken = Decision("error", 500, "the stored split does not match its manifest; not served")
        return await _refuse(
            request,
            ctx,
            "download",
            broken,
            principal=principal,
            name=name,
            version=version,
            split=split,
        )
    filename = f"{manifest.name}-v{manifest.version}-{split}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Maxlake-Content-Hash": manifest.content_hash,
        "X-Maxlake-Rows": str(manifest.splits[split].rows),
        QUALITY_HEADER: _quality(manifest),
    }
    entry = AuditEntry(
        "download",
        "allowed",
        principal=principal.name if principal else None,
        dataset=manifest.name,
        version=manifest.version,
        split=split,
        format=fmt,
        rows=manifest.splits[split].rows,
        status=200,
    )
    if request.method == "HEAD":
        await ctx.audit(request, dataclasses.replace(entry, rows=None, detail="HEAD: no data sent"))
        return web.Response(headers=headers)
    try:
        await ctx.audit(request, entry)
    except Exception as exc:  # any audit failure must stop the download
        raise web.HTTPServiceUnavailable(
            text=_error_body(503, "error", f"audit write failed, not served: {type(exc).__name__}"),
            content_type="application/json",
        ) from exc
    if fmt == "parquet":
        return web.FileResponse(
            path, headers={**headers, "Content-Type": "application/vnd.apache.parquet"}
        )
    response = web.StreamResponse(headers={**headers, "Content-Type": ARROW_STREAM})
    await response.prepare(request)
    chunks = _arrow_stream(str(path))
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/v1/datasets/{name}/versions/{version}/files/{file}")
async def side_file(request: web.Request) -> web.StreamResponse:
    """A side file of a version: ``manifest.json`` (redacted), the data card ``README.md`` or one
    of the manifest's ``files``.

    The job's extra files (normalisation statistics, label description, ...) are listed in the
    manifest's ``files`` with their sha256; a file whose bytes no longer match is not served.
    The data card is rendered again from the manifest (:func:`lake.curation.card.stored_card`).
    A version that failed its output checks is served only with ``?allow_failed_quality=true``
    (as its splits); every answer carries ``X-Maxlake-Quality``.
    """
    ctx = request.app[CONTEXT]
    name, wanted = request.match_info["name"], request.match_info["file"]
    version = _version(request)
    principal = await ctx.authenticate(request)
    decision = await asyncio.to_thread(
        _check, ctx, principal, name, version, None, allow_failed_quality=_allow_failed(request)
    )
    manifest = decision.manifest
    card = b""
    if decision.allowed and manifest is not None and wanted == CARD_FILE:
        try:
            card = await asyncio.to_thread(stored_card, ctx.curated, manifest)
        except TerminalError as exc:
            decision = Decision("error", 500, f"{exc}; not served", manifest)
    elif decision.allowed and manifest is not None and wanted != MANIFEST_FILE:
        if wanted not in manifest.files:
            known = ", ".join([MANIFEST_FILE, CARD_FILE, *sorted(manifest.files)])
            decision = Decision(
                "not_found", 404, f"no side file {wanted!r} (files: {known})", manifest
            )
        else:
            side = await asyncio.to_thread(
                ctx.curated.local_file,
                manifest.name,
                manifest.version,
                wanted,
                manifest.files[wanted],
            )
            if await asyncio.to_thread(file_sha256, side) != manifest.files[wanted]:
                detail = "the stored file does not match its manifest; not served"
                decision = Decision("error", 500, detail, manifest)
    if not decision.allowed or manifest is None:
        return await _refuse(
            request, ctx, "file", decision, principal=principal, name=name, version=version
        )
    entry = AuditEntry(
        "file",
        "allowed",
        principal=principal.name if principal else None,
        dataset=manifest.name,
        version=manifest.version,
        status=200,
        detail=wanted,
    )
    await ctx.audit(request, entry)
    quality = {QUALITY_HEADER: _quality(manifest)}
    if wanted == MANIFEST_FILE:
        return web.Response(
            body=published_manifest_bytes(manifest),
            content_type="application/json",
            headers=quality,
        )
    if wanted == CARD_FILE:
        return web.Response(
            body=card, content_type="text/markdown", charset="utf-8", headers=quality
        )
    return web.FileResponse(side, headers={"Content-Type": "application/octet-stream", **quality})


async def _show(request: web.Request, version: str | None) -> web.Response:
    ctx = request.app[CONTEXT]
    name = request.match_info["name"]
    principal = await ctx.authenticate(request)
    decision = await asyncio.to_thread(
        _check, ctx, principal, name, version, None, show=True, allow_failed_quality=True
    )
    manifest = decision.manifest
    if not decision.allowed or manifest is None:
        return await _refuse(
            request, ctx, "show", decision, principal=principal, name=name, version=version
        )
    entry = AuditEntry(
        "show",
        "allowed",
        principal=principal.name if principal else None,
        dataset=manifest.name,
        version=manifest.version,
        rows=manifest.rows,
        status=200,
    )
    await ctx.audit(request, entry)
    return web.Response(
        body=published_manifest_bytes(manifest),
        content_type="application/json",
        headers={QUALITY_HEADER: _quality(manifest)},
    )


_TRUE = ("true", "1", "yes")


def _allow_failed(request: web.Request) -> bool:
    """Whether the request opts in to a version that failed its output checks
    (``?allow_failed_quality=true``, ``1`` or ``yes``)."""
    return request.query.get("allow_failed_quality", "false").lower() in _TRUE


def _quality(manifest: Manifest) -> str:
    return "passed" if manifest.quality_passed else "failed"


def _check(
    ctx: ServiceContext,
    principal: Any,
    name: str,
    version: str | None,
    split: str | None,
    *,
    show: bool = False,
    allow_failed_quality: bool = False,
) -> Decision:
    """The service's one read decision (:func:`maxlake.server.deltasharing.catalog.check`),
    except that ``show`` lets a revoked version's summary be read (its status says revoked)."""
    decision = catalog.check(ctx, principal, name, version, split, allow_failed_quality)
    if show and decision.outcome == "revoked":
        return Decision("allowed", 200, decision.detail, decision.manifest)
    return decision


def _version(request: web.Request) -> str | None:
    version = request.match_info["version"]
    return None if version == "latest" else version


async def _refuse(
    request: web.Request,
    ctx: ServiceContext,
    action: str,
    decision: Decision,
    *,
    principal: Any = None,
    name: str | None = None,
    version: str | None = None,
    split: str | None = None,
) -> web.Response:
    """Audit a refused request and answer with the decision's status and a JSON error."""
    manifest = decision.manifest
    well_formed = decision.outcome not in ("invalid", "unauthenticated")
    entry = AuditEntry(
        action,
        decision.outcome,
        principal=principal.name if principal is not None else None,
        dataset=(manifest.name if manifest else name) if well_formed else None,
        version=manifest.version if manifest else None,
        split=split if well_formed else None,
        status=decision.status,
        detail=decision.detail
        if well_formed
        else f"{decision.detail} (asked: {name!r}, {version!r}, {split!r})"[:500],
    )
    await ctx.audit(request, entry)
    headers = {"WWW-Authenticate": 'Bearer realm="maxlake"'} if decision.status == 401 else None
    return web.Response(
        status=decision.status,
        text=_error_body(decision.status, decision.outcome, decision.detail),
        content_type="application/json",
        headers=headers,
    )


def _error_body(status: int, outcome: str, detail: str) -> str:
    return json.dumps({"error": {"status": status, "outcome": outcome, "detail": detail}})


def _arrow_stream(path: str) -> Iterator[bytes]:
    """An Arrow IPC stream of a Parquet file, yielded one record batch at a time."""
    parquet = pq.ParquetFile(path)
    chunks = _Chunks()
    with pa.ipc.new_stream(pa.PythonFile(chunks, mode="w"), parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            writer.write_batch(batch)
            yield chunks.take()
    yield chunks.take()


class _Chunks:
    """A write-only file object that keeps what was written until taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_NAME_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
}
_VERSION_PARAM = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "N, vN or latest (the newest active version)",
    "schema": {"type": "string", "pattern": "^(v?[1-9][0-9]{0,8}|latest)$"},
}
_SPLIT_PARAM = {**_NAME_PARAM, "name": "split"}
_ALLOW_FAILED_PARAM = {
    "name": "allow_failed_quality",
    "in": "query",
    "required": False,
    "description": "true (or 1): also serve a version that failed its output checks",
    "schema": {"type": "boolean", "default": False},
}
_FILE_PARAM = {
    "name": "file",
    "in": "path",
    "required": True,
    "description": "manifest.json (as readers see it), README.md (the data card) or one of "
    "the manifest's files (normalization.json, label.json, ...)",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
}
_REFUSALS = {
    "400": {"description": "malformed name, version, split or format", **_ERROR},
    "401": {"description": "missing or invalid token", **_ERROR},
    "403": {
        "description": "no grant, built without contracts, revoked, or failed its output checks",
        **_ERROR,
    },
    "404": {"description": "no such dataset, version or split (asked with a grant)", **_ERROR},
    "429": {
        "description": "too many failed tokens from this key id or address; see Retry-After",
        **_ERROR,
    },
}
_MANIFEST = {
    "200": {
        "description": "the manifest (spec, sources, splits, contracts, status, content hash)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Manifest"}}},
    },
    **_REFUSALS,
}
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/datasets": {
        "get": {
            "summary": "Datasets this token may read",
            "operationId": "listDatasets",
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "granted datasets with a servable version",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/DatasetList"}}
                    },
                },
                "401": _REFUSALS["401"],
                "429": _REFUSALS["429"],
            },
        }
    },
    "/v1/datasets/{name}": {
        "get": {
            "summary": "Manifest of the newest active version",
            "operationId": "showLatest",
            "security": [{"bearer": []}],
            "parameters": [_NAME_PARAM],
            "responses": _MANIFEST,
        }
    },
    "/v1/datasets/{name}/versions/{version}": {
        "get": {
            "summary": "Manifest of one version (revoked versions are shown with their status)",
            "operationId": "showVersion",
            "security": [{"bearer": []}],
            "parameters": [_NAME_PARAM, _VERSION_PARAM],
            "responses": _MANIFEST,
        }
    },
    "/v1/datasets/{name}/versions/{version}/splits/{split}": {
        "get": {
            "summary": "Download one split as Parquet or as an Arrow IPC stream",
            "operationId": "downloadSplit",
            "security": [{"bearer": []}],
            "parameters": [
                _NAME_PARAM,
                _VERSION_PARAM,
                _SPLIT_PARAM,
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": ["parquet", "arrow"],
                        "default": "parquet",
                    },
                },
                _ALLOW_FAILED_PARAM,
            ],
            "responses": {
                "200": {
                    "description": "the split; headers X-Maxlake-Content-Hash, X-Maxlake-Rows and "
                    "X-Maxlake-Quality (passed|failed)",
                    "content": {
                        "application/vnd.apache.parquet": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                **_REFUSALS,
                "503": {"description": "the access could not be audited; not served", **_ERROR},
            },
        }
    },
    "/v1/datasets/{name}/versions/{version}/files/{file}": {
        "get": {
            "summary": "A side file: the manifest, the data card or one of the job's files",
            "operationId": "getSideFile",
            "security": [{"bearer": []}],
            "parameters": [_NAME_PARAM, _VERSION_PARAM, _FILE_PARAM, _ALLOW_FAILED_PARAM],
            "responses": {
                "200": {
                    "description": "the file; header X-Maxlake-Quality (passed|failed)",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/markdown": {"schema": {"type": "string"}},
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                **_REFUSALS,
                "404": {"description": "no such dataset, version or side file", **_ERROR},
                "500": {"description": "the stored file does not match its manifest", **_ERROR},
            },
        }
    },
}
