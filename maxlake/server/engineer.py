"""What the data engineers' routes share: the bearer check and the JSON answers.

The status page, its quarantine samples, the operator's dataset overview and the Data Docs name
tenants, topics and sample values, so they answer only to the bearer token of a principal of
kind ``data_engineer`` (401 without a valid token, 403 for model teams and plants; refusals are
recorded in ``ops/audit``).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from lake.access import AuditEntry, Principal
from maxlake.server.context import CONTEXT, audited_target

__all__ = [
    "ENGINEER_KIND",
    "ERROR_SCHEMA",
    "NO_STORE",
    "REFUSALS",
    "engineer_get",
    "error_response",
    "json_response",
    "require_engineer",
    "with_body_schema",
]

ENGINEER_KIND = "data_engineer"
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def require_engineer(request: web.Request) -> tuple[Principal | None, web.Response | None]:
    """The data engineer behind the request's bearer token, or the audited 401/403 answer.

    Returns:
        ``(principal, None)`` for a data engineer, ``(None, refusal)`` otherwise.

    Raises:
        web.HTTPTooManyRequests: the token or address is in backoff (see
            :meth:`ServiceContext.authenticate`).
    """
    ctx = request.app[CONTEXT]
    principal = await ctx.authenticate(request)
    if principal is None:
        outcome, status = "unauthenticated", 401
        detail = (
            "a data engineer's token is required as 'Authorization: Bearer mxl_...' "
            "(`maxlake access principal add NAME --kind data_engineer` prints one)"
        )
    elif principal.kind != ENGINEER_KIND:
        outcome, status = "denied", 403
        detail = f"principal {principal.name!r} is a {principal.kind}, not a {ENGINEER_KIND}"
    else:
        return principal, None
    entry = AuditEntry(
        "status",
        outcome,
        principal=principal.name if principal else None,
        status=status,
        detail=f"{detail} ({audited_target(request)})",
    )
    await ctx.audit(request, entry)
    response = error_response(status, outcome, detail)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="maxlake"'
    return None, response


def json_response(document: dict[str, Any]) -> web.Response:
    """``document`` as an uncached JSON answer."""
    return web.Response(
        text=json.dumps(document), content_type="application/json", headers=NO_STORE
    )


def error_response(status: int, outcome: str, detail: str) -> web.Response:
    """The service's JSON error body (``{"error": {status, outcome, detail}}``)."""
    body = {"error": {"status": status, "outcome": outcome, "detail": detail}}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=NO_STORE
    )


ERROR_SCHEMA = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
REFUSALS: dict[str, Any] = {
    "400": {"description": "malformed parameter", **ERROR_SCHEMA},
    "401": {"description": "missing or invalid token", **ERROR_SCHEMA},
    "403": {"description": "the token is not a data engineer's", **ERROR_SCHEMA},
}
"""OpenAPI responses of a refused data engineer's route."""


def engineer_get(
    summary: str,
    operation_id: str,
    answer: str,
    parameters: list[dict[str, Any]] | None = None,
    **responses: Any,
) -> dict[str, Any]:
    """The OpenAPI path item of a data engineer's JSON ``GET`` route; ``answer`` describes
    the 200 body, ``responses`` adds others (``{"404": {...}}`` as ``**{"404": ...}``)."""
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": operation_id,
        "security": [{"bearer": []}],
        "responses": {
            "200": {
                "description": answer,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **responses,
            **REFUSALS,
        },
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def with_body_schema(path_item: dict[str, Any], schema: str) -> dict[str, Any]:
    """``path_item`` (from :func:`engineer_get`) with its 200 body described by the component
    schema named ``schema`` instead of any object."""
    answer = path_item["get"]["responses"]["200"]
    answer["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return path_item
