"""JSON Schema (2020-12) documents of the event schemas, as published to plant integrators.

The documents describe what the decoder accepts; a few rules are only enforced by the decoder
(event-time window, topic tenant, ``process_end >= process_start``) and are stated in each
document's ``description``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from schemas.kinds import ENVELOPE_REQUIRED, ID_PATTERN, SUPPORTED_VERSIONS, EventKind

__all__ = [
    "RFC3339_PATTERN",
    "event_json_schema",
    "published_dir",
    "schema_file_name",
]

RFC3339_PATTERN = r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$"


def published_dir() -> Path:
    """The packaged ``schemas/published`` directory: the baseline of compatibility checks."""
    return Path(str(files("schemas") / "published"))


def schema_file_name(kind: EventKind | str, version: int) -> str:
    """File name of a published document, e.g. ``telemetry.v1.schema.json``."""
    return f"{EventKind(kind).value}.v{version}.schema.json"


def _timestamp(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "format": "date-time",
        "pattern": RFC3339_PATTERN,
        "description": description,
    }


def event_json_schema(
    kind: EventKind,
    version: int,
    body: tuple[dict[str, Any], list[str], list[dict[str, Any]]],
) -> dict[str, Any]:
    """Assemble the document of one event schema from the envelope and the kind's body parts."""
    body_props, body_required, rules = body
    ident = {"type": "string", "pattern": ID_PATTERN}
    envelope: dict[str, Any] = {
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "unique per event; a resend keeps it",
        },
        "schema_version": {"type": "integer", "enum": sorted(SUPPORTED_VERSIONS)},
        "kind": {"const": kind.value},
        "tenant": {**ident, "description": "must equal the tenant of the topic"},
        "plant": ident,
        "line": ident,
        "machine": ident,
        "event_time": _timestamp(
            "when it happened; at most 300 s ahead and 400 days behind ingest time"
        ),
        "sent_time": {
            "anyOf": [_timestamp("when the producer sent it"), {"type": "null"}],
        },
    }
    doc: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:maxlake:contract:{kind.value}:v{version}",
        "title": f"maxlake {kind.value} event v{version}",
        "description": (
            f"One {kind.value} event per Kafka message (UTF-8 JSON object). Unknown fields are "
            "ignored. NaN and Infinity are not JSON and are rejected."
        ),
        "type": "object",
        "required": [*ENVELOPE_REQUIRED, *body_required],
        "properties": {**envelope, **body_props},
    }
    if rules:
        doc["allOf"] = rules
    return doc
