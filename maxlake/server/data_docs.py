"""The Great Expectations Data Docs, served read-only to data engineers.

``maxlake quality docs`` writes a static site to ``MAXLAKE_DATA_DOCS_DIR`` (default
``.maxlake/data_docs``, from the working directory). Its pages hold sample values of the
validated rows (quarantined ones included), so they are for data engineers only:

* ``GET /api/data-docs`` (the bearer token of a ``data_engineer``, as every status-page route)
  answers whether a site exists, its pages (newest validation first) and a path prefix
  ``/data-docs/<principal>/<expires>/<signature>/`` signed by the server
  (:meth:`maxlake.server.signing.UrlSigner.scope_grant`, ``MAXLAKE_SHARE_URL_TTL_S``). A
  browser cannot add an ``Authorization`` header to a link, and the site's pages link to each
  other relatively, so the grant lives in the path: the status page fetches the prefix with
  its token and links to pages under it.
* ``GET /data-docs/<principal>/<expires>/<signature>/<path>`` serves one file of the site when
  the signature matches, has not expired, and the principal still exists with the same token
  and is still a data engineer (removing the principal or replacing its token ends its links
  at once). Every file served or refused is one ``data_docs`` row in ``ops/audit``.

The path may only name a regular file under the site folder with a known static suffix (HTML,
CSS, images, fonts): every segment must match :data:`_SEGMENT` (no ``..``, no hidden files, no
backslash or NUL), and the resolved file must still lie under the resolved folder (a symbolic
link out of it is refused). Files are sent with a Content-Security-Policy ``sandbox`` without
scripts (an opaque origin: a hostile sample value cannot run, reach the status page's
``sessionStorage`` or load anything from another host), so GX's CDN scripts and styles do not
load; the pages are readable without them, and the status page lists the validation pages
itself because GX's index builds its table with those scripts.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from lake.access import AuditEntry, PrincipalError
from maxlake.server.context import CONTEXT
from maxlake.server.engineer import (
    ENGINEER_KIND,
    ERROR_SCHEMA,
    NO_STORE,
    engineer_get,
    error_response,
    json_response,
    require_engineer,
)
from maxlake.server.signing import SignatureError

__all__ = ["OPENAPI_PATHS", "SCOPE", "list_pages", "resolve_file", "routes"]

routes = web.RouteTableDef()

SCOPE = "/data-docs/"
MAX_PAGES = 100
_SEGMENT = re.compile(r"^[A-Za-z0-9_@+=-][A-Za-z0-9_.@+=-]{0,254}$")
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".svg": "image/svg+xml",
    ".otf": "font/otf",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
_POLICY = (
    "sandbox; default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_RUN_TIME = re.compile(r"^(\d{8}T\d{6})(?:\.\d+)?Z$")


def resolve_file(root: Path, path: str) -> Path | None:
    """The regular file ``path`` (``/``-separated, relative) names under ``root``, or None
    when the path is not allowed (see the module doc) or names no such file."""
    segments = path.split("/")
    if not path or not all(_SEGMENT.fullmatch(s) for s in segments):
        return None
    if Path(segments[-1]).suffix.lower() not in _TYPES:
        return None
    try:
        base = root.resolve()
        target = base.joinpath(*segments).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return None
    except (OSError, RuntimeError):  # a name too long for the OS, a symbolic link loop
        return None
    return target


def list_pages(root: Path) -> list[dict[str, Any]]:
    """The site's validation pages (newest run first, at most :data:`MAX_PAGES`) and
    expectation-suite pages: ``type``, ``suite``, ``run_time`` (ISO 8601 UTC or None),
    ``path`` (relative to the site); only pages :func:`resolve_file` would serve."""
    validations = []
    for page in (root / "validations").rglob("*.html"):
        rel = page.relative_to(root).parts
        if len(rel) < 5 or not all(_SEGMENT.fullmatch(part) for part in rel):
            continue
        match = _RUN_TIME.fullmatch(rel[-2])
        run_time = (
            datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat()
            if match
            else None
        )
        validations.append(
            {
                "type": "validation",
                "suite": ".".join(rel[1:-3]),
                "run_time": run_time,
                "path": "/".join(rel),
            }
        )
    validations.sort(key=lambda p: (p["run_time"] or "", p["path"]), reverse=True)
    suites = [
        {
            "type": "expectations",
            "suite": ".".join(page.relative_to(root / "expectations").with_suffix("").parts),
            "run_time": None,
            "path": page.relative_to(root).as_posix(),
        }
        for page in sorted((root / "expectations").rglob("*.html"))
        if all(_SEGMENT.fullmatch(part) for part in page.relative_to(root).parts)
    ]
    return validations[:MAX_PAGES] + suites


def _site(request: web.Request) -> Path:
    return request.app[CONTEXT].settings.data_docs_dir.resolve()


@routes.get("/api/data-docs")
async def api_data_docs(request: web.Request) -> web.Response:
    """Where the Data Docs are, their pages, and a signed prefix to open them under."""
    principal, refusal = await require_engineer(request)
    if refusal is not None or principal is None:
        return refusal or error_response(401, "unauthenticated", "a token is required")
    ctx = request.app[CONTEXT]
    root = _site(request)
    index = root / "index.html"
    if not await asyncio.to_thread(index.is_file):
        return json_response(
            {
                "available": False,
                "dir": str(root),
                "detail": f"no Data Docs in {root}: run `maxlake quality docs` (it writes "
                "MAXLAKE_DATA_DOCS_DIR) where `maxlake serve` runs, or point "
                "MAXLAKE_DATA_DOCS_DIR at the site",
            }
        )
    pages = await asyncio.to_thread(list_pages, root)
    mtime = (await asyncio.to_thread(index.stat)).st_mtime
    built = datetime.fromtimestamp(mtime, UTC).isoformat()
    grant, expires_ms = ctx.signer.scope_grant(_scope(principal.key_id), principal.name)
    prefix = SCOPE + grant
    return json_response(
        {
            "available": True,
            "dir": str(root),
            "built_at": built,
            "prefix": prefix,
            "index": prefix + "index.html",
            "expires_at_ms": expires_ms,
            "pages": pages,
        }
    )


@routes.get(SCOPE + "{principal}/{expires}/{signature}/{path:.*}")
async def data_docs_file(request: web.Request) -> web.StreamResponse:
    """One file of the Data Docs site under a signed prefix (see the module doc)."""
    name, expires, signature = (
        request.match_info[k] for k in ("principal", "expires", "signature")
    )
    path = request.match_info["path"] or "index.html"
    if not await asyncio.to_thread(_still_granted, request, name, expires, signature):
        detail = "this Data Docs link is not valid (expired, altered or its principal changed)"
        await _audit(request, "denied", 403, None, f"{detail}: {name}: {path}")
        return error_response(403, "denied", detail + "; open Data Docs again from /status")
    target = await asyncio.to_thread(resolve_file, _site(request), path)
    if target is None:
        await _audit(request, "not_found", 404, name, path)
        return error_response(404, "not_found", "no such Data Docs file")
    await _audit(request, "allowed", 200, name, path)
    headers = {
        **NO_STORE,
        "Content-Type": _TYPES[target.suffix.lower()],
        "Content-Security-Policy": _POLICY,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    return web.FileResponse(target, headers=headers)


def _still_granted(request: web.Request, name: str, expires: str, signature: str) -> bool:
    """Whether the segments are a valid grant to ``name``, still a data engineer with the
    token the grant was signed for."""
    ctx = request.app[CONTEXT]
    try:
        principal = ctx.access.get(name)
        ctx.signer.verify_scope(_scope(principal.key_id), name, expires, signature)
    except (PrincipalError, SignatureError):
        return False
    return principal.kind == ENGINEER_KIND


def _scope(key_id: str | None) -> str:
    """The signed scope: the site and the principal's current key id (a new token ends the
    old links)."""
    return f"{SCOPE}{key_id or '-'}/"


async def _audit(
    request: web.Request, outcome: str, status: int, name: str | None, detail: str
) -> None:
    entry = AuditEntry("data_docs", outcome, principal=name, status=status, detail=detail[:300])
    await request.app[CONTEXT].audit(request, entry)


OPENAPI_PATHS: dict[str, Any] = {
    "/api/data-docs": engineer_get(
        "Whether Data Docs exist, their pages and a signed prefix to open them",
        "getDataDocs",
        "{available, dir, built_at, prefix, index, expires_at_ms, pages: [{type, suite, "
        "run_time, path}]} or {available: false, dir, detail}",
    ),
    SCOPE + "{principal}/{expires}/{signature}/{path}": {
        "get": {
            "summary": "One file of the Data Docs site under a prefix from /api/data-docs",
            "operationId": "getDataDocsFile",
            "security": [],
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in ("principal", "expires", "signature", "path")
            ],
            "responses": {
                "200": {"description": "the file (HTML, CSS, image or font), sandboxed"},
                "403": {
                    "description": "expired, altered, or the principal changed",
                    **ERROR_SCHEMA,
                },
                "404": {"description": "no such file under the site (or a path not allowed)"},
            },
        }
    },
}
