"""The lines of metadata and query responses (newline-delimited JSON, parquet format).

One split is one Parquet file, so a table version has exactly one ``file`` line. Its ``id`` is
the file's sha256 (the same file keeps its id across requests, as the protocol asks); ``stats``
carry ``numRecords`` only (min/max values of de-identified columns are not published).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lake.curation.manifest import Manifest

__all__ = ["file_line", "metadata_line", "ndjson", "protocol_line"]


def protocol_line() -> dict[str, Any]:
    """The ``protocol`` wrapper (reader version 1)."""
    return {"protocol": {"minReaderVersion": 1}}


def metadata_line(
    manifest: Manifest,
    split: str,
    *,
    table_id: str,
    schema_string: str,
    size: int,
    with_version: bool,
) -> dict[str, Any]:
    """The ``metaData`` wrapper of one split at the manifest's version."""
    spec = manifest.spec
    meta: dict[str, Any] = {
        "id": table_id,
        "name": split,
        "description": str(spec.get("description", "")),
        "format": {"provider": "parquet"},
        "schemaString": schema_string,
        "partitionColumns": [],
        "configuration": {},
        "size": size,
        "numFiles": 1,
    }
    if with_version:
        meta["version"] = manifest.version
    return {"metaData": meta}


def file_line(
    manifest: Manifest,
    split: str,
    *,
    url: str,
    size: int,
    expiration_ms: int,
    with_version: bool,
) -> dict[str, Any]:
    """The ``file`` wrapper of one split's Parquet file."""
    info = manifest.splits[split]
    file: dict[str, Any] = {
        "url": url,
        "id": info.sha256,
        "partitionValues": {},
        "size": size,
        "stats": json.dumps({"numRecords": info.rows}, separators=(",", ":")),
        "expirationTimestamp": expiration_ms,
    }
    if with_version:
        file["version"] = manifest.version
        file["timestamp"] = _millis(manifest.created_at)
    return {"file": file}


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    """One compact JSON object per line."""
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def _millis(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)
