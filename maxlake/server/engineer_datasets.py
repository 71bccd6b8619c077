"""The operator's view of the curated datasets, for the status page: ``GET /api/datasets`` and
``GET /api/datasets/{name}``.

Data engineers only (:func:`maxlake.server.engineer.require_engineer`). They see every dataset,
whatever the grants, and each version's summary as ``maxlake datasets show`` prints it
(:func:`lake.curation.summary_lines`), with the ``/v1/datasets`` path a model team with a grant
reads it from. Model teams keep using ``/v1/datasets`` (:mod:`maxlake.server.datasets`), which
shows only what their grants allow.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from lake.curation import (
    CuratedArea,
    DatasetNotFound,
    InvalidDatasetRef,
    list_datasets,
    one_line,
    parse_ref,
    summary_lines,
)
from maxlake.server.context import CONTEXT
from maxlake.server.engineer import (
    ERROR_SCHEMA,
    engineer_get,
    error_response,
    json_response,
    require_engineer,
)

__all__ = ["OPENAPI_PATHS", "dataset_versions", "routes"]

routes = web.RouteTableDef()


@routes.get("/api/datasets")
async def api_datasets(request: web.Request) -> web.Response:
    """Every curated dataset (name, purpose, description, versions, latest active)."""
    _, refusal = await require_engineer(request)
    if refusal is not None:
        return refusal
    found = await asyncio.to_thread(list_datasets, request.app[CONTEXT].curated)
    return json_response(
        {
            "datasets": [
                {
                    "name": d.name,
                    "purpose": d.purpose,
                    "description": d.description,
                    "versions": list(d.versions),
                    "latest": d.latest,
                    "failed_quality": list(d.failed_quality),
                }
                for d in found
            ]
        }
    )


@routes.get("/api/datasets/{name}")
async def api_dataset(request: web.Request) -> web.Response:
    """Every version of one dataset, newest first, with its summary."""
    _, refusal = await require_engineer(request)
    if refusal is not None:
        return refusal
    try:
        name, _ = parse_ref(request.match_info["name"])
    except InvalidDatasetRef as exc:
        return error_response(400, "invalid", str(exc))
    area = request.app[CONTEXT].curated
    try:
        versions = await asyncio.to_thread(dataset_versions, area, name)
    except DatasetNotFound as exc:
        return error_response(404, "not_found", str(exc))
    return json_response({"name": name, "versions": versions})


def dataset_versions(area: CuratedArea, name: str) -> list[dict[str, Any]]:
    """Each published version of ``name``, newest first: ``version``, ``status``,
    ``created_at``, ``rows``, ``quality_passed``, ``one_line``, ``summary`` (lines) and ``api``
    (its manifest's path in the dataset API).

    Raises:
        DatasetNotFound: ``name`` has no published version.
    """
    numbers = area.versions(name)
    if not numbers:
        raise DatasetNotFound("dataset", name, area.names())
    out = []
    for number in reversed(numbers):
        manifest = area.manifest(name, number)
        out.append(
            {
                "version": number,
                "status": manifest.status,
                "created_at": manifest.created_at,
                "rows": manifest.rows,
                "quality_passed": manifest.quality_passed,
                "one_line": one_line(manifest),
                "summary": summary_lines(manifest),
                "api": f"/v1/datasets/{name}/versions/{number}",
            }
        )
    return out


OPENAPI_PATHS: dict[str, Any] = {
    "/api/datasets": engineer_get(
        "Every curated dataset with its versions (data engineers' view)",
        "getDatasetsOverview",
        "{datasets: [{name, purpose, description, versions, latest, failed_quality}]}",
    ),
    "/api/datasets/{name}": engineer_get(
        "Every version of one dataset with its summary (data engineers' view)",
        "getDatasetVersionsOverview",
        "{name, versions: [{version, status, created_at, rows, quality_passed, one_line, "
        "summary, api}]}, newest first",
        [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        **{"404": {"description": "no such dataset", **ERROR_SCHEMA}},
    ),
}
