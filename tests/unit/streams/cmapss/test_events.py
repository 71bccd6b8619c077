"""C-MAPSS cycles as telemetry events: valid under the event schema, deterministic, registered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from lake.location import LakeLocation
from lake.registry_store import RegistryStore
from maxlake.settings import Settings
from schemas import EventKind, event_schema_for, load_registry
from schemas.registry import default_registry_path
from streams.cmapss import (
    MACHINE_TYPE,
    TAGS,
    TENANT,
    build_events,
    find_files,
    read_runs,
    reference_registry,
    register,
)
from streams.cmapss.assets import registry_fragment
from tests.conftest import realdata_dir

EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def test_one_event_per_cycle_with_24_readings_in_nasa_units() -> None:
    runs = read_runs(find_files(realdata_dir() / "cmapss")[0])
    events = build_events("fd001", "train", runs, EPOCH, 600)

    assert len(events) == 20_631
    event_id, machine, payload = events[1]
    assert (event_id, machine) == ("fd001-train-001-c0002", "fd001-train-001")
    doc = orjson.loads(payload)
    assert doc["tenant"] == TENANT
    assert doc["event_time"] == "2026-11-01T00:10:00Z"
    units = {r["tag"]: r["unit"] for r in doc["readings"]}
    assert len(units) == 24
    assert units["T24"] == "degR"
    assert units["P30"] == "psia"
    assert units["Nc"] == "rpm"
    assert units["W31"] == "lbm/s"
    assert doc["readings"][3] == {"tag": "T2", "value": 518.67, "unit": "degR"}
    assert build_events("fd001", "train", runs, EPOCH, 600)[1] == events[1]


def test_every_fd001_reading_is_within_the_registered_range() -> None:
    runs = read_runs(find_files(realdata_dir() / "cmapss")[0])
    for tag in TAGS:
        column = runs.values[:, tag.column]
        assert tag.min <= column.min(), tag.tag
        assert column.max() <= tag.max, tag.tag


def test_events_decode_as_valid_telemetry() -> None:
    runs = read_runs(find_files(realdata_dir() / "cmapss")[0])
    payloads = [p for _, _, p in build_events("fd001", "train", runs, EPOCH, 600)[:50]]
    event_schema = event_schema_for(EventKind.TELEMETRY)
    decoded = event_schema.decode(payloads, tenant=TENANT, now=datetime(2026, 11, 30, tzinfo=UTC))
    assert decoded.rejections == []
    assert decoded.rows.num_rows == 50 * 24


def test_register_adds_a_live_registry_version_once(tmp_path: Path) -> None:
    settings = Settings(lake_root=str(tmp_path / "lake"))
    folder = tmp_path / "lake" / "reference" / "cmapss" / "fd001"
    folder.mkdir(parents=True)
    (folder / "import.json").write_text(
        '{"subset": "fd001", "train_engines": [1, 2], "test_engines": [1]}'
    )

    path = register(settings)

    store = RegistryStore(LakeLocation.from_settings(settings))
    assert store.latest_version() == 1
    live = store.get()
    assert live.author == "maxlake import cmapss"
    for registry in (live.registry, load_registry(path)):
        assert registry.machine_type_of(TENANT, "fd001", "train", "fd001-train-002") == MACHINE_TYPE
        assert registry.machine_type_of(TENANT, "fd001", "test", "fd001-test-001") == MACHINE_TYPE
        assert registry.machine_types[MACHINE_TYPE].tag("Ps30") is not None
    seed = load_registry(default_registry_path())
    assert {t.id for t in seed.tenants} < {t.id for t in live.registry.tenants}
    assert path == reference_registry(settings)

    register(settings)
    assert store.latest_version() == 1


def test_fragment_lists_each_subset_as_a_plant() -> None:
    text = registry_fragment({"fd001": ([1], [1]), "fd003": ([1, 2], [3])})
    assert text.count("[[tenants.plants]]") == 2
    assert 'id = "fd003-test-003"' in text
    assert "fd002" not in text
