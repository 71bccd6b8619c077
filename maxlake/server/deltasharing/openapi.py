"""OpenAPI entries of the Delta Sharing routes (served in ``/openapi.json``)."""

from typing import Any

from maxlake.server.deltasharing.paths import FILES, PREFIX

__all__ = ["OPENAPI_PATHS"]

_TABLE = PREFIX + "/shares/{share}/schemas/{schema}/tables/{table}"


def _op(summary: str, operation_id: str, *, method: str = "get") -> dict[str, Any]:
    return {
        method: {
            "summary": summary,
            "operationId": operation_id,
            "tags": ["delta-sharing"],
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "as the Delta Sharing protocol specifies"},
                "4XX": {"description": 'protocol error: {"errorCode": ..., "message": ...}'},
            },
        }
    }


OPENAPI_PATHS: dict[str, Any] = {
    PREFIX + "/shares": _op("Delta Sharing: list shares", "dsListShares"),
    PREFIX + "/shares/{share}": _op("Delta Sharing: get share", "dsGetShare"),
    PREFIX + "/shares/{share}/schemas": _op("Delta Sharing: list schemas", "dsListSchemas"),
    PREFIX + "/shares/{share}/schemas/{schema}/tables": _op(
        "Delta Sharing: list tables", "dsListTables"
    ),
    PREFIX + "/shares/{share}/all-tables": _op("Delta Sharing: list all tables", "dsAllTables"),
    _TABLE + "/version": _op("Delta Sharing: table version (header)", "dsTableVersion"),
    _TABLE + "/metadata": _op("Delta Sharing: table metadata (ndjson)", "dsTableMetadata"),
    _TABLE + "/query": _op("Delta Sharing: read a table (ndjson)", "dsQuery", method="post"),
    _TABLE + "/changes": _op("Delta Sharing: change data feed (not offered: 400)", "dsChanges"),
    FILES + "/{name}/v{version}/{split}.parquet": {
        "get": {
            "summary": "A split's Parquet file behind a signed, short-lived URL",
            "operationId": "dsFile",
            "tags": ["delta-sharing"],
            "security": [],
            "responses": {
                "200": {"description": "Parquet bytes (ranges supported)"},
                "403": {"description": "unsigned, altered or expired URL, or no longer granted"},
            },
        }
    },
}
