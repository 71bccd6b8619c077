"""The status page for data engineers: ``GET /status`` and the JSON behind it.

``/status`` is one self-contained HTML page (``static/status.html``: inline CSS, inline JS,
charts drawn as inline SVG, nothing fetched from elsewhere). It holds no data itself: its script
reads ``/api/status`` (:func:`streams.status.collect_status`), ``/api/status/history``
(:func:`streams.status.status_history`), ``/api/quarantine`` (here), ``/api/datasets``
(:mod:`maxlake.server.engineer_datasets`) and ``/api/data-docs`` (:mod:`maxlake.server.data_docs`)
with the token it was given and renders them.

The JSON routes name tenants, topics, quarantine reasons, payloads and the lake's path, so they
require the bearer token of a principal of kind ``data_engineer``
(:func:`maxlake.server.engineer.require_engineer`). Every request gets one row in ``ops/audit``
(refusals from the check, the rest from the app's middleware). The page takes the token from its
URL fragment (``/status#token=mxl_...``, which browsers never send to a server or put in a
``Referer``) or from a form, keeps it in the tab's ``sessionStorage`` and sends it as
``Authorization: Bearer``; a ``?token=`` query parameter is deliberately not accepted, since it
would end up in proxy logs and browser history.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from maxlake.errors import ConfigError
from maxlake.server.context import CONTEXT
from maxlake.server.engineer import (
    NO_STORE,
    engineer_get,
    error_response,
    json_response,
    require_engineer,
    with_body_schema,
)
from schemas import EventKind
from streams.replay import escape_payload, quarantine_page
from streams.status import check_tenants, collect_status, status_history

__all__ = ["OPENAPI_PATHS", "page_html", "parse_duration", "routes"]

routes = web.RouteTableDef()

MAX_WINDOW = timedelta(days=7)
MAX_BUCKETS = 2000
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_COUNT = re.compile(r"[0-9]{1,9}")
"""A whole number in ASCII digits (``str.isdigit`` also takes ``²``, which ``int`` refuses)."""
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


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
    """The HTML page (no token needed: it holds no data until its script is given one); 400
    when a ``token`` is in the query, which proxies log and browsers keep in their history."""
    if "token" in request.query:
        detail = (
            "a token in the query string is not accepted (it lands in logs and browser "
            "history): open /status#token=... (the fragment stays in the browser)"
        )
        return error_response(400, "invalid", detail)
    html, policy = page_html()
    headers = {
        **NO_STORE,
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
    headers = {**NO_STORE, "Content-Security-Policy": "default-src 'none'"}
    return web.Response(text=_INDEX, content_type="text/html", headers=headers)


@routes.get("/api/status")
async def api_status(request: web.Request) -> web.Response:
    """:func:`streams.status.collect_status`; ``?window=`` (1h), ``?tenant=``, ``?kafka=0``."""
    _, refusal = await require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        window, tenants, kafka = _status_params(request)
    except _BadParameter as exc:
        return error_response(400, "invalid", str(exc))
    settings = request.app[CONTEXT].settings
    try:
        await asyncio.to_thread(check_tenants, settings, tenants, option="tenant")
    except ConfigError as unknown:
        return error_response(400, "invalid", str(unknown))
    status = await asyncio.to_thread(
        collect_status, settings, window, tenants=tenants or None, kafka=kafka
    )
    return json_response(status)


@routes.get("/api/status/history")
async def api_status_history(request: web.Request) -> web.Response:
    """:func:`streams.status.status_history` for ``?window=`` (1h) and ``?bucket=`` (1m)."""
    _, refusal = await require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        window, bucket = _history_params(request)
    except _BadParameter as exc:
        return error_response(400, "invalid", str(exc))
    settings = request.app[CONTEXT].settings
    return json_response(await asyncio.to_thread(status_history, settings, window, bucket))


@routes.get("/api/quarantine")
async def api_quarantine(request: web.Request) -> web.Response:
    """One page of quarantined messages, newest first (``?limit=`` 20, at most 200;
    ``?offset=`` 0; ``?kind=``, ``?reason=``, ``?tenant=``), payloads escaped as one line of
    text (``raw_text``, first 2,000 bytes), each with ``replay`` (None: never replayed, else what
    ``maxlake quarantine replay`` did), with ``total`` (messages matching)."""
    _, refusal = await require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        offset, limit, kinds, reason, tenant = _quarantine_params(request)
    except _BadParameter as exc:
        return error_response(400, "invalid", str(exc))
    settings = request.app[CONTEXT].settings
    total, rows = await asyncio.to_thread(
        quarantine_page,
        settings,
        kinds=kinds,
        reason=reason,
        tenant=tenant,
        offset=offset,
        limit=limit,
    )
    for row in rows:
        raw: bytes = row.pop("raw")
        row["raw_bytes"] = len(raw)
        row["raw_text"] = escape_payload(raw, 2000)
    return json_response({"total": total, "offset": offset, "limit": limit, "messages": rows})


def _quarantine_params(
    request: web.Request,
) -> tuple[int, int, tuple[EventKind, ...], str | None, str | None]:
    text = request.query.get("limit", "20")
    if not _COUNT.fullmatch(text) or not 1 <= int(text) <= 200:
        raise _BadParameter(f"limit {text!r}: give a whole number from 1 to 200")
    start = request.query.get("offset", "0")
    if not _COUNT.fullmatch(start) or int(start) > 10_000_000:
        raise _BadParameter(f"offset {start!r}: give a whole number from 0 to 10,000,000")
    kind = request.query.get("kind")
    if kind is not None and kind not in {k.value for k in EventKind}:
        raise _BadParameter(f"kind {kind!r}: give one of {', '.join(k.value for k in EventKind)}")
    tenant = request.query.get("tenant")
    if tenant is not None and not _TENANT.fullmatch(tenant):
        raise _BadParameter(f"tenant {tenant!r} is not a tenant id")
    kinds = (EventKind(kind),) if kind else tuple(EventKind)
    return int(start), int(text), kinds, request.query.get("reason"), tenant


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


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


_WINDOW_PARAM = {
    "name": "window",
    "in": "query",
    "required": False,
    "description": "how far back: a positive integer and s, m, h or d; at most 7d",
    "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$", "default": "1h"},
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
    "/api/status": engineer_get(
        "Kafka lag and workers, tables, quality over the window, alerts",
        "getStatus",
        "streams.status.collect_status (see docs/OPERATIONS.md)",
        [
            _WINDOW_PARAM,
            _query(
                "tenant",
                "only these tenants' topics and quality figures (repeatable); "
                "an unknown tenant answers 400",
            ),
            {
                **_query("kafka", "0 skips the broker (lake only)"),
                "schema": {"type": "string", "enum": ["0", "1"], "default": "1"},
            },
        ],
    ),
    "/api/status/history": engineer_get(
        "Events/s, quarantine rate and consumed per time bucket, for charts",
        "getStatusHistory",
        "streams.status.status_history",
        [
            _WINDOW_PARAM,
            {
                **_query("bucket", f"bucket width; at most {MAX_BUCKETS} buckets per window"),
                "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$"},
            },
        ],
    ),
    "/api/quarantine": with_body_schema(
        engineer_get(
            "A page of quarantined messages, newest first, payload escaped as text",
            "getQuarantinedMessages",
            "{total, offset, limit, messages: [...]} (streams.replay.quarantine_page); each "
            "message's `replay` is null when never replayed",
            [
                _query("limit", "N messages per page, 1 to 200 (default 20)"),
                _query("offset", "skip the N newest matching messages (default 0)"),
                _query("kind", "one event kind"),
                _query("reason", "only messages with this reason"),
                _query("tenant", "only this tenant's messages"),
            ],
        ),
        "QuarantinePage",
    ),
}
