"""The status page for data engineers: ``GET /status`` and the JSON behind it.

``/status`` is one self-contained HTML page (``static/status.html``: inline CSS, inline JS,
charts drawn as inline SVG, nothing fetched from elsewhere). It holds no data itself: its script
reads ``/api/status`` (:func:`streams.status.collect_status`) and ``/api/status/history``
(:func:`streams.status.status_history`) with the token it was given and renders them.

The JSON routes name tenants, topics, quarantine reasons and the lake's path, so they require
the bearer token of a principal of kind ``data_engineer`` (401 without a valid token, 403 for
model teams and plants). Refusals are recorded in ``ops/audit`` like the dataset routes';
allowed reads are not, because an open page polls every 30 s and each audit row is a Delta
commit. The page takes the token from its URL fragment (``/status#token=mxl_...``, which
browsers never send to a server or put in a ``Referer``) or from a form, keeps it in the tab's
``sessionStorage`` and sends it as ``Authorization: Bearer``; a ``?token=`` query parameter is
deliberately not accepted, since it would end up in proxy logs and browser history.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from lake.access import AuditEntry, Principal
from lake.curation import list_datasets
from maxlake.server.context import CONTEXT
from schemas import EventKind
from streams.replay import escape_payload, quarantined_messages
from streams.status import collect_status, status_history

__all__ = ["OPENAPI_PATHS", "page_html", "parse_duration", "routes"]

routes = web.RouteTableDef()

ENGINEER_KIND = "data_engineer"
MAX_WINDOW = timedelta(days=7)
MAX_BUCKETS = 2000
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class _BadParameter(ValueError):
    """A query parameter the routes cannot use (answered with 400)."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h`` or ``2d`` as a timedelta.

    Raises:
        ValueError: anything else (a positive integer and one of s, m, h, d is required).
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"duration {text!r}: give a positive integer and s, m, h or d (15m)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@cache
def page_html() -> tuple[str, str]:
    """The page and its Content-Security-Policy (inline script and style allowed by hash only)."""
    html = resources.files("maxlake.server").joinpath("static/status.html").read_text("utf-8")
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    policy = (
        "default-src 'none'; "
        f"script-src {' '.join(hashes['script'])}; "
        f"style-src {' '.join(hashes['style'])}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return html, policy


@routes.get("/status")
async def status_page(request: web.Request) -> web.Response:
    """The HTML page (no token needed: it holds no data until its script is given one)."""
    del request
    html, policy = page_html()
    headers = {
        **_NO_STORE,
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    return web.Response(text=html, content_type="text/html", headers=headers)


_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>maxlake serve</title></head>
<body><h1>maxlake serve</h1><ul>
<li><a href="/status">/status</a>: the status page for data engineers (a data_engineer token)</li>
<li><a href="/openapi.json">/openapi.json</a>: every route of this server (OpenAPI 3.1)</li>
<li>/v1/datasets: curated datasets for model teams (a bearer token; see docs/DATASETS.md)</li>
</ul></body></html>
"""


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """A page naming what this server offers (no data, no token needed)."""
    del request
    headers = {**_NO_STORE, "Content-Security-Policy": "default-src 'none'"}
    return web.Response(text=_INDEX, content_type="text/html", headers=headers)


@routes.get("/api/status")
async def api_status(request: web.Request) -> web.Response:
    """:func:`streams.status.collect_status`; ``?window=`` (1h), ``?tenant=``, ``?kafka=0``."""
    refusal = await _require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        window, tenants, kafka = _status_params(request)
    except _BadParameter as exc:
        return _error(400, "invalid", str(exc))
    settings = request.app[CONTEXT].settings
    status = await asyncio.to_thread(
        collect_status, settings, window, tenants=tenants or None, kafka=kafka
    )
    return _json(status)


@routes.get("/api/status/history")
async def api_status_history(request: web.Request) -> web.Response:
    """:func:`streams.status.status_history` for ``?window=`` (1h) and ``?bucket=`` (1m)."""
    refusal = await _require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        window, bucket = _history_params(request)
    except _BadParameter as exc:
        return _error(400, "invalid", str(exc))
    settings = request.app[CONTEXT].settings
    return _json(await asyncio.to_thread(status_history, settings, window, bucket))


@routes.get("/api/quarantine")
async def api_quarantine(request: web.Request) -> web.Response:
    """The newest quarantined messages (``?limit=`` 20, at most 200; ``?kind=``, ``?reason=``,
    ``?tenant=``), payloads escaped as one line of text (``raw_text``, first 2,000 bytes)."""
    refusal = await _require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        limit, kinds, reason, tenant = _quarantine_params(request)
    except _BadParameter as exc:
        return _error(400, "invalid", str(exc))
    settings = request.app[CONTEXT].settings
    rows = await asyncio.to_thread(
        quarantined_messages, settings, kinds=kinds, reason=reason, tenant=tenant, limit=limit
    )
    for row in rows:
        raw: bytes = row.pop("raw")
        row["raw_bytes"] = len(raw)
        row["raw_text"] = escape_payload(raw, 2000)
    return _json({"messages": rows})


@routes.get("/api/datasets")
async def api_datasets(request: web.Request) -> web.Response:
    """Every curated dataset (name, purpose, versions, latest active) for the operator's view."""
    refusal = await _require_engineer(request)
    if refusal is not None:
        return refusal
    found = await asyncio.to_thread(list_datasets, request.app[CONTEXT].curated)
    return _json(
        {
            "datasets": [
                {
                    "name": d.name,
                    "purpose": d.purpose,
                    "versions": list(d.versions),
                    "latest": d.latest,
                }
                for d in found
            ]
        }
    )


def _quarantine_params(
    request: web.Request,
) -> tuple[int, tuple[EventKind, ...], str | None, str | None]:
    text = request.query.get("limit", "20")
    if not text.isdigit() or not 1 <= int(text) <= 200:
        raise _BadParameter(f"limit {text!r}: give a whole number from 1 to 200")
    kind = request.query.get("kind")
    if kind is not None and kind not in {k.value for k in EventKind}:
        raise _BadParameter(f"kind {kind!r}: give one of {', '.join(k.value for k in EventKind)}")
    tenant = request.query.get("tenant")
    if tenant is not None and not _TENANT.fullmatch(tenant):
        raise _BadParameter(f"tenant {tenant!r} is not a tenant id")
    kinds = (EventKind(kind),) if kind else tuple(EventKind)
    return int(text), kinds, request.query.get("reason"), tenant


async def _require_engineer(request: web.Request) -> web.Response | None:
    """None when the bearer token is a data engineer's; else the audited 401/403 answer."""
    ctx = request.app[CONTEXT]
    principal: Principal | None = await ctx.authenticate(request)
    if principal is None:
        outcome, status, detail = "unauthenticated", 401, "a data engineer's token is required"
    elif principal.kind != ENGINEER_KIND:
        outcome, status = "denied", 403
        detail = f"principal {principal.name!r} is a {principal.kind}, not a {ENGINEER_KIND}"
    else:
        return None
    entry = AuditEntry(
        "status",
        outcome,
        principal=principal.name if principal else None,
        status=status,
        detail=f"{detail} ({request.path})",
    )
    await ctx.audit(request, entry)
    response = _error(status, outcome, detail)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="maxlake"'
    return response


def _status_params(request: web.Request) -> tuple[timedelta, list[str], bool]:
    window = _window(request)
    tenants = request.query.getall("tenant", [])
    bad = [t for t in tenants if not _TENANT.fullmatch(t)]
    if bad:
        raise _BadParameter(f"tenant {bad[0]!r} is not a tenant id")
    kafka = request.query.get("kafka", "1")
    if kafka not in ("0", "1"):
        raise _BadParameter(f"kafka {kafka!r}: give 0 (lake only) or 1")
    return window, tenants, kafka == "1"


def _history_params(request: web.Request) -> tuple[timedelta, timedelta]:
    window = _window(request)
    bucket = _duration_param(request, "bucket", "1m")
    if window / bucket > MAX_BUCKETS:
        raise _BadParameter(f"window / bucket is more than {MAX_BUCKETS} buckets")
    return window, bucket


def _window(request: web.Request) -> timedelta:
    window = _duration_param(request, "window", "1h")
    if window > MAX_WINDOW:
        raise _BadParameter(f"window {request.query['window']!r} is longer than 7d")
    return window


def _duration_param(request: web.Request, name: str, default: str) -> timedelta:
    try:
        return parse_duration(request.query.get(name, default))
    except ValueError as exc:
        raise _BadParameter(f"{name}: {exc}") from exc


def _json(document: dict[str, Any]) -> web.Response:
    return web.Response(
        text=json.dumps(document), content_type="application/json", headers=_NO_STORE
    )


def _error(status: int, outcome: str, detail: str) -> web.Response:
    body = {"error": {"status": status, "outcome": outcome, "detail": detail}}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=_NO_STORE
    )


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_WINDOW_PARAM = {
    "name": "window",
    "in": "query",
    "required": False,
    "description": "how far back: a positive integer and s, m, h or d; at most 7d",
    "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$", "default": "1h"},
}
_REFUSALS = {
    "400": {"description": "malformed parameter", **_ERROR},
    "401": {"description": "missing or invalid token", **_ERROR},
    "403": {"description": "the token is not a data engineer's", **_ERROR},
}
OPENAPI_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "What this server offers, with links (HTML)",
            "operationId": "index",
            "security": [],
            "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
        }
    },
    "/status": {
        "get": {
            "summary": "Status page for data engineers (HTML; its script calls /api/status*)",
            "description": "Give the token in the URL fragment: /status#token=mxl_...",
            "operationId": "statusPage",
            "security": [],
            "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
        }
    },
    "/api/status": {
        "get": {
            "summary": "Kafka lag and workers, tables, quality over the window, alerts",
            "operationId": "getStatus",
            "security": [{"bearer": []}],
            "parameters": [
                _WINDOW_PARAM,
                {
                    "name": "tenant",
                    "in": "query",
                    "required": False,
                    "description": "only these tenants' topics (repeatable)",
                    "schema": {"type": "string"},
                },
                {
                    "name": "kafka",
                    "in": "query",
                    "required": False,
                    "description": "0 skips the broker (lake only)",
                    "schema": {"type": "string", "enum": ["0", "1"], "default": "1"},
                },
            ],
            "responses": {
                "200": {
                    "description": "streams.status.collect_status (see docs/OPERATIONS.md)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_REFUSALS,
            },
        }
    },
    "/api/status/history": {
        "get": {
            "summary": "Events/s, quarantine rate and consumed per time bucket, for charts",
            "operationId": "getStatusHistory",
            "security": [{"bearer": []}],
            "parameters": [
                _WINDOW_PARAM,
                {
                    "name": "bucket",
                    "in": "query",
                    "required": False,
                    "description": f"bucket width; at most {MAX_BUCKETS} buckets per window",
                    "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$"},
                },
            ],
            "responses": {
                "200": {
                    "description": "streams.status.status_history",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_REFUSALS,
            },
        }
    },
    "/api/quarantine": {
        "get": {
            "summary": "The newest quarantined messages, payload escaped as text",
            "operationId": "getQuarantinedMessages",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": text,
                    "schema": {"type": "string"},
                }
                for name, text in (
                    ("limit", "newest N messages, 1 to 200 (default 20)"),
                    ("kind", "one event kind"),
                    ("reason", "only messages with this reason"),
                    ("tenant", "only this tenant's messages"),
                )
            ],
            "responses": {
                "200": {
                    "description": "{messages: [...]} (streams.replay.quarantined_messages)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_REFUSALS,
            },
        }
    },
    "/api/datasets": {
        "get": {
            "summary": "Every curated dataset with its versions (operator's view)",
            "operationId": "getDatasetsOverview",
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "{datasets: [{name, purpose, versions, latest}]}",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_REFUSALS,
            },
        }
    },
}
