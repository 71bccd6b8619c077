"""The dataset service application: one aiohttp app assembled from route modules.

Each module in :data:`ROUTE_MODULES` exposes ``routes`` (an ``aiohttp.web.RouteTableDef``) and
``OPENAPI_PATHS`` (its part of the OpenAPI document, served at ``/openapi.json``). To add a page
(a status page, say), write a module with those two names and add it to the tuple.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lake.access import AuditEntry
from maxlake.server.context import (
    AUDITED,
    CONTEXT,
    OPENAPI_PATHS_KEY,
    ServiceContext,
    audited_target,
)
from maxlake.server.deltasharing.errors import error_response
from maxlake.server.deltasharing.paths import PREFIX
from maxlake.settings import Settings

__all__ = ["ROUTE_MODULES", "build_app", "run"]

ROUTE_MODULES = (
    "maxlake.server.openapi",
    "maxlake.server.datasets",
    "maxlake.server.status_page",
    "maxlake.server.engineer_datasets",
    "maxlake.server.data_docs",
    "maxlake.server.deltasharing.routes",
)

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(settings: Settings) -> web.Application:
    """The service over the lake, contracts and principals that ``settings`` name."""
    app = web.Application(middlewares=[_json_errors])
    app[CONTEXT] = ServiceContext.from_settings(settings)
    paths: dict[str, Any] = {}
    for name in ROUTE_MODULES:
        module = importlib.import_module(name)
        app.add_routes(module.routes)
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
    app[OPENAPI_PATHS_KEY] = paths
    return app


def run(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM)."""
    host = host or settings.server_host
    port = port if port is not None else settings.server_port
    web.run_app(
        build_app(settings),
        host=host,
        port=port,
        print=lambda _: logger.info("%s", started_line(host, port)),
        access_log=None,
    )


def started_line(host: str, port: int) -> str:
    """What ``maxlake serve`` logs once it listens: where its pages are."""
    base = f"http://{host}:{port}"
    return (
        f"serving on {base}: the status page {base}/status#token=<a data_engineer token>, "
        f"the dataset API {base}/v1/datasets, every route in {base}/openapi.json; "
        "Ctrl+C stops"
    )


_ROUTER_OUTCOMES = {
    401: "unauthenticated",
    403: "denied",
    404: "not_found",
    429: "throttled",
    500: "error",
}


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (unknown route, wrong method) and a route's unexpected exception
    (logged with its traceback, answered 500) as the service's JSON error body; every request a
    route did not audit (router refusals, pages, failures) gets its audit row here."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            await _audit_unaudited(request, exc.status, exc.reason)
            raise
        await _audit_unaudited(request, exc.status, exc.reason)
        return _error(request, exc.status, "invalid", exc.reason)
    except Exception:
        logger.exception("%s %s failed", request.method, audited_target(request)[:200])
        await _audit_unaudited(request, 500, "internal error")
        detail = "the server failed on this request (its log has the cause)"
        return _error(request, 500, "error", detail)
    await _audit_unaudited(request, response.status, "")
    return response


def _error(request: web.Request, status: int, outcome: str, detail: str) -> web.Response:
    """The service's JSON error body; under the Delta Sharing prefix, the protocol's."""
    if request.path == PREFIX or request.path.startswith(f"{PREFIX}/"):
        return error_response(status, detail)
    body = {"error": {"status": status, "outcome": outcome, "detail": detail}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def _audit_unaudited(request: web.Request, status: int, reason: str) -> None:
    if request.get(AUDITED):
        return
    outcome = "allowed" if status < 400 else _ROUTER_OUTCOMES.get(status, "invalid")
    detail = f"{request.method} {audited_target(request)}"[:300] + (f": {reason}" if reason else "")
    entry = AuditEntry("request", outcome, status=status, detail=detail)
    await request.app[CONTEXT].audit(request, entry)
