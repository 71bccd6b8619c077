"""The registry as the build hands it to a job: tag specs (all, or of the spec's machine
types) and the hash of the frames a build used (``registry_hash`` in the manifest)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection

import polars as pl

from schemas import Registry

__all__ = ["registry_hash", "registry_tags", "selected_tags"]


def registry_tags(registry: Registry) -> pl.DataFrame:
    rows = [
        {
            "machine_type": mt.id,
            "tag": t.tag,
            "unit": t.unit,
            "min": t.min,
            "max": t.max,
            "nominal": t.nominal,
        }
        for mt in registry.machine_types.values()
        for t in mt.tags
    ]
    schema = {
        "machine_type": pl.String,
        "tag": pl.String,
        "unit": pl.String,
        "min": pl.Float64,
        "max": pl.Float64,
        "nominal": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("machine_type", "tag")


def selected_tags(tags: pl.DataFrame, machine_types: Collection[str] | None) -> pl.DataFrame:
    """The tag specs of the spec's ``filters.machine_types`` (all when None): the jobs' feature
    columns come from these, so a set scoped to its machine types keeps its columns when the
    registry gains another type."""
    if machine_types is None:
        return tags
    return tags.filter(pl.col("machine_type").is_in(list(machine_types)))


def registry_hash(machines: pl.DataFrame, tags: pl.DataFrame) -> str:
    """sha256 of the registry frames the build used (machines sorted, tags sorted)."""
    digest = hashlib.sha256()
    for frame in (machines.sort(machines.columns), tags):
        digest.update(json.dumps(frame.rows(), default=str).encode())
    return digest.hexdigest()
