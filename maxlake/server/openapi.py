"""``GET /openapi.json``: the OpenAPI 3.1 document of every route module (no token needed)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lake.access import OUTCOMES
from maxlake.server.context import OPENAPI_PATHS_KEY
from maxlake.version import __version__

__all__ = ["OPENAPI_PATHS", "openapi_document", "routes"]

routes = web.RouteTableDef()

OPENAPI_PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 JSON"}},
        }
    }
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "outcome", "detail"],
                "properties": {
                    "status": {"type": "integer"},
                    "outcome": {
                        "type": "string",
                        "enum": [o for o in OUTCOMES if o != "allowed"],
                    },
                    "detail": {"type": "string"},
                },
            }
        },
    },
    "DatasetList": {
        "type": "object",
        "properties": {
            "datasets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "latest": {"type": "integer"},
                        "purpose": {"type": "string"},
                        "description": {"type": "string"},
                        "splits": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "quality": {"type": "string", "enum": ["passed", "failed"]},
                        "failed_checks": {"type": "array", "items": {"type": "string"}},
                    },
                },
            }
        },
    },
    "QuarantinePage": {
        "type": "object",
        "description": "one page of quarantined messages, newest first "
        "(streams.replay.quarantine_page)",
        "properties": {
            "total": {"type": "integer", "description": "messages matching the filters"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string"},
                        "tenant": {"type": "string"},
                        "kafka_topic": {"type": "string"},
                        "kafka_partition": {"type": "integer"},
                        "kafka_offset": {"type": "integer"},
                        "quarantined_at": {"type": "string", "format": "date-time"},
                        "stage": {"type": "string"},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "details": {"type": "array", "items": {"type": "string"}},
                        "event_id": {"type": ["string", "null"]},
                        "raw_bytes": {"type": "integer"},
                        "raw_text": {"type": "string"},
                        "replay": {
                            "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ReplayMark"}]
                        },
                    },
                },
            },
        },
    },
    "ReplayMark": {
        "type": "object",
        "description": "what `maxlake quarantine replay` did to a quarantined message (null in "
        "`replay`: never replayed, still needs attention); a final outcome (replayed, "
        "duplicate) wins over later attempts, else the newest attempt",
        "properties": {
            "outcome": {"type": "string", "enum": ["replayed", "duplicate", "still_invalid"]},
            "replayed_at": {"type": "string", "format": "date-time"},
            "replay_id": {
                "type": "string",
                "description": "the replay run (ops/replays.replay_id); a replayed message's "
                "silver rows were appended by that run",
            },
            "silver_rows": {"type": "integer"},
            "reasons": {
                "type": "array",
                "items": {"type": "string"},
                "description": "still_invalid: the reasons it failed again",
            },
            "suite_version": {"type": ["string", "null"]},
            "attempts": {"type": "integer", "description": "replay runs that selected it"},
        },
    },
    "Manifest": {
        "type": "object",
        "description": "manifest.json of a dataset version (see docs/DATASETS.md)",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "status": {"type": "string", "enum": ["active", "revoked"]},
            "status_reason": {"type": "string"},
            "contracts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "version": {"type": "integer"},
                        "sha256": {"type": "string"},
                    },
                },
            },
            "content_hash": {"type": "string"},
        },
        "additionalProperties": True,
    },
}


def openapi_document(paths: dict[str, Any]) -> dict[str, Any]:
    """The whole document around ``paths``, the merged ``OPENAPI_PATHS`` of the route modules."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "maxlake dataset service",
            "version": __version__,
            "description": "Curated, de-identified training sets for model teams. Every request "
            "is checked against the token's grants and recorded in the audit table ops/audit.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
        },
    }


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document."""
    return web.json_response(openapi_document(request.app[OPENAPI_PATHS_KEY]))
