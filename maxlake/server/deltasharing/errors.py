"""Protocol error responses: ``{"errorCode": ..., "message": ...}`` with the HTTP status.

The status follows the service's read decision (:class:`lake.access.Decision`); the error code
is the one the Delta Sharing reference server uses for that status.
"""

from __future__ import annotations

import json

from aiohttp import web

__all__ = ["ERROR_CODES", "error_response"]

ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "METHOD_NOT_ALLOWED",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """A protocol error (``Content-Type: application/json``); 401 carries ``WWW-Authenticate``."""
    body = {"errorCode": ERROR_CODES.get(status, "INTERNAL_ERROR"), "message": message}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="maxlake"'
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )
