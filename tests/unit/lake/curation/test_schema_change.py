"""A registry change that adds feature columns is detected, explained and pinnable."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lake import DeltaStore
from lake.curation import (
    Manifest,
    SchemaChanged,
    build_dataset,
    curated_root,
    parse_spec,
    summary_lines,
)
from lake.curation.jobs.errors import JobInputError
from lake.curation.published import published_manifest
from schemas import Registry, parse_registry
from tests.unit.lake.curation.test_build_helpers import (
    T0,
    TENANT,
    registry,
    seeded_lake,
    write_down_event,
)

ALLIANCE_TYPES = ["cnc_mill", "formation_cell", "pick_place", "reflow_oven", "rolling_stand"]
STATS = 7  # mean, std, min, max, last, slope, count


def with_turbofan() -> Registry:
    """The packaged registry plus a machine type of two tags that no machine of the set has."""
    doc = registry().document()
    doc["machine_types"]["turbofan"] = {
        "description": "reference engines",
        "tags": [
            {"tag": "T30", "unit": "degR", "min": 0.0, "max": 2000.0, "nominal": 1590.0},
            {"tag": "Nf", "unit": "rpm", "min": 0.0, "max": 3000.0, "nominal": 2388.0},
        ],
    }
    return parse_registry(doc, source="test registry")


def pm_spec(name: str, **job: Any) -> Any:
    filters: dict[str, Any] = {"tenants": [TENANT]}
    if "machine_types" in job:
        filters["machine_types"] = job.pop("machine_types")
    doc = {
        "name": name,
        "purpose": "predictive-maintenance-research",
        "job": {"name": "predictive_maintenance", **job},
        "filters": filters,
    }
    return parse_spec(doc)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DeltaStore:
    """Two days of spindle temperatures and one DOWN state (each test builds its own names)."""
    lake = seeded_lake(tmp_path_factory.mktemp("lake"))
    write_down_event(lake, "cnc-101", T0 + timedelta(days=1, hours=14))
    return lake


def build(store: DeltaStore, spec: Any, reg: Registry, version: int | None = None) -> Manifest:
    return build_dataset(store, spec, registry=reg, registry_version=version)


def test_a_new_machine_type_adds_columns_and_the_next_version_says_so(store: DeltaStore) -> None:
    first = build(store, pm_spec("pm"), registry(), 3)
    assert first.schema_change == {"previous_version": 0, "changed": False}
    assert first.registry_version == 3

    second = build_dataset(
        store,
        pm_spec("pm"),
        registry=with_turbofan(),
        registry_version=4,
        registry_notes=["v4 2026-12-01T14:10:00+00:00 maxlake import cmapss: import: fd001"],
    )

    change = second.schema_change
    assert change is not None
    assert change["changed"] is True
    assert change["previous_version"] == 1
    assert len(change["added"]) == 2 * STATS
    assert change["removed"] == []
    assert "T30__mean" in change["added"]
    assert "Nf__slope" in change["added"]
    assert change["added_tags_by_machine_type"] == {"turbofan": ["Nf", "T30"]}
    assert change["registry_versions"] == [3, 4]
    assert change["spec_changed"] is False
    assert change["pin"]["machine_types"] == ALLIANCE_TYPES
    assert "spindle_temp" in change["pin"]["tags"]
    assert "T30" not in change["pin"]["tags"]

    text = "\n".join(summary_lines(second))
    assert "schema     CHANGED since pm@v1: 14 feature column(s) added (Nf__count" in text
    assert "cause: the added columns are the tags of registry machine type turbofan" in text
    assert "registry version 3 -> 4" in text
    assert "registry change since pm@v1: v4 2026-12-01T14:10:00+00:00 maxlake import" in text
    assert '[filters] machine_types = ["cnc_mill", "formation_cell",' in text

    published = published_manifest(second)["schema_change"]
    assert published["added"] == change["added"]
    assert published["added_tags_by_machine_type"] == "<redacted>"
    assert published["registry_notes"] == "<redacted>"
    assert published["pin"]["machine_types"] == "<redacted>"
    card = (Path(curated_root(store.root).root) / "pm" / "v2" / "README.md").read_text()
    assert "- CHANGED since pm@v1: 14 feature column(s) added" in card
    assert "turbofan" not in card
    assert "cmapss" not in card
    stored = json.loads(
        (Path(curated_root(store.root).root) / "pm" / "v2" / "manifest.json").read_bytes()
    )
    assert stored["schema_change"] == change

    with pytest.raises(SchemaChanged, match=r"14 removed .*no longer in the registry: Nf, T30"):
        build_dataset(store, pm_spec("pm"), registry=registry(), require_same_columns=True)
    assert not (Path(curated_root(store.root).root) / "pm" / "v3").exists()


def test_a_set_scoped_to_its_machine_types_keeps_its_columns(store: DeltaStore) -> None:
    scoped = pm_spec("pm-scoped", machine_types=ALLIANCE_TYPES)
    first = build(store, scoped, registry())
    second = build(store, scoped, with_turbofan())

    assert second.features == first.features
    assert second.schema_change == {"previous_version": 1, "changed": False}
    assert "  schema     same feature columns as pm-scoped@v1" in summary_lines(second)
    unscoped = build(store, pm_spec("pm-all"), registry())
    assert [f["name"] for f in unscoped.features] == [f["name"] for f in first.features]


def test_pinned_tags_keep_the_columns_and_a_tag_the_registry_lacks_fails(
    store: DeltaStore,
) -> None:
    pinned = pm_spec("pm-tags", tags=["spindle_temp", "vibration_rms"])
    first = build(store, pinned, registry())
    second = build(store, pinned, with_turbofan())
    assert len(first.features) == 1 + 2 * STATS
    assert second.schema_change == {"previous_version": 1, "changed": False}

    with pytest.raises(JobInputError, match=r"\[job\] tags \['spindle_tmp'\] are not tags"):
        build(store, pm_spec("pm-typo", tags=["spindle_tmp"]), registry())
