"""``maxlake demo``'s last step: the three reference sets from what the demo ingested.

A new user must get three non-empty sets: simulated plants (the demo's simulator, two tenants)
go through the real ingest pipeline (decode, Great Expectations, Delta) into a lake under
``tmp_path``, then the demo's own function adds its sharing contracts and builds the packaged
demo specs. No Kafka: that part of the demo has its own tests. Twelve hours of factory time at
a 40 s tick (readings still close enough for the 10 s anomaly grid's 3-bucket fill) keep it
small; the demo streams ~16 h at 10 s.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lake import BatchWriter, DeltaStore
from lake.curation import list_datasets, load, show
from lake.location import LakeLocation
from lake.registry_store import RegistryStore
from maxlake.cli.demo_sets import build_demo_sets, ensure_demo_contracts
from maxlake.settings import Settings
from schemas import load_registry
from schemas.registry_diff import merge_documents
from streams.ingest import IngestPipeline, RawMessage
from streams.simulator import Simulator
from tests.unit.lake.batches import gateway

_LINE = re.compile(
    r"^(?P<name>[a-z-]+)@v1: train (?P<train>[\d,]+), validation (?P<validation>[\d,]+), "
    r"test (?P<test>[\d,]+) (?P<unit>.+?)(?:  (?P<warnings>\d+) warnings?)?$"
)


def _simulated_lake(root: Path, hours: float) -> Settings:
    settings = Settings(lake_root=str(root))
    start = (datetime.now(UTC) - timedelta(hours=hours + 1)).replace(minute=0, second=0)
    registry = load_registry()
    tenants = [t.id for t in registry.tenants][:2]
    sim = Simulator(
        registry, seed=7, start=start.replace(microsecond=0), tick_s=40.0, tenants=tenants
    )
    by_topic: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for event in sim.events(hours * 3600):
        by_topic[(event.kind, event.topic(settings))].append(event.payload)
    pipeline = IngestPipeline(settings, gateway(), BatchWriter(DeltaStore(root)), worker="test")
    for (kind, topic), payloads in sorted(by_topic.items()):
        pipeline.process(
            kind, [RawMessage(topic, 0, i, None, b"k", p) for i, p in enumerate(payloads)]
        )
    return settings


def _add_live_tag(settings: Settings, machine_type: str, tag: str) -> int:
    """Store a live registry version with ``tag`` added to ``machine_type`` (as ``maxlake
    registry add-tag`` does); returns the version."""
    store = RegistryStore(LakeLocation.from_settings(settings))
    base = store.get()
    partial = {"machine_types": {machine_type: {"tags": [_NEW_TAG | {"tag": tag}]}}}
    document = merge_documents(base.registry.document(), partial, source="test")
    return store.commit(document, base=base, author="test", reason="new sensor").version


_NEW_TAG = {"unit": "degC", "min": 0.0, "max": 100.0, "nominal": 40.0}


@pytest.mark.slow
def test_the_demo_builds_three_non_empty_reference_sets_with_the_live_registry(
    tmp_path: Path,
) -> None:
    settings = _simulated_lake(tmp_path / "lake", hours=12)
    live = _add_live_tag(settings, "cnc_mill", "gearbox_temp")
    said: list[str] = []

    built = build_demo_sets(settings, say=said.append)

    assert [s.name for s in built] == [
        "predictive-maintenance-demo",
        "part-quality-demo",
        "anomaly-windows-demo",
    ]
    units = {}
    for demo_set in built:
        match = _LINE.match(demo_set.line)
        assert match is not None, demo_set.line
        for split in ("train", "validation", "test"):
            assert int(match[split].replace(",", "")) > 0, demo_set.line
            frame = load(demo_set.name, version=1, split=split, lake_root=tmp_path / "lake")
            assert frame.height == int(match[split].replace(",", ""))
        units[demo_set.name] = match["unit"]
    assert units == {
        "predictive-maintenance-demo": "machine windows of 15 min",
        "part-quality-demo": "inspected parts",
        "anomaly-windows-demo": "steps of 10 s (60 per sequence)",
    }
    assert sum("sharing contract" in line for line in said) == len(load_registry().tenants)
    pm = show("predictive-maintenance-demo", 1, lake_root=tmp_path / "lake")
    assert pm.registry_version == live  # `datasets build`'s registry, not the packaged file
    assert "gearbox_temp__mean" in {f["name"] for f in pm.features}
    assert f"live registry v{live}" in said[-3]
    nulls = [w for w in built[0].warnings if "[feature_not_all_null:" in w]
    assert len(nulls) == 1, built[0].warnings  # every all-null column: one line, in words
    assert "gearbox_temp (" in nulls[0], nulls[0]  # the new tag, and the types not simulated

    again = build_demo_sets(settings, say=said.append)  # nothing new in the lake
    for first, second in zip(built, again, strict=True):
        assert second.version == 1, second.line
        assert second.line == (
            f"{first.line}  unchanged: this build is identical to {first.name}@v1 (same content "
            "hash, same spec), nothing published"
        )
    assert [d.versions for d in list_datasets(lake_root=tmp_path / "lake")] == [(1,)] * 3

    purposes = ["anomaly-detection-research", "predictive-maintenance-research"]
    ensure_demo_contracts(settings, purposes, say=said.append)  # a second run: all in force
    assert sum("sharing contract" in line for line in said) == len(load_registry().tenants)
