"""Attacks of a determined partner on a real lake: the rare-type bypass and substring leaks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lake import DeltaStore, silver_schema, silver_table
from lake.curation import build_dataset
from lake.sharing import IdentifierLeak
from lake.tables import SILVER_PARTITIONS
from schemas import Registry, load_registry
from schemas.registry import default_registry_path
from tests.unit.lake.curation.test_build_helpers import (
    JOBS,
    T0,
    TENANT,
    seeded_lake,
    spec,
    write_inspection,
)
from tests.unit.lake.sharing.helpers import Sharing

RIVAL = "rival-auto"
RIVAL_REGISTRY = f"""
[[tenants]]
id = "{RIVAL}"
name = "Rival Automotive"
industry = "automotive"

[[tenants.plants]]
id = "lyon"
name = "Lyon plant"
timezone = "Europe/Paris"

[[tenants.plants.lines]]
id = "head-l1"
name = "Cylinder head line"
machines = [{{ id = "cnc-901", machine_type = "cnc_mill" }}]
"""


def _registry(tmp_path: Path) -> Registry:
    path = tmp_path / "alliance.toml"
    path.write_text(default_registry_path().read_text() + RIVAL_REGISTRY)
    return load_registry(path)


def _rival_rows(store: DeltaStore, kind: str, count: int, **body: object) -> None:
    """``count`` hourly rows of ``kind`` from the rival's one cnc_mill, with ``body`` columns."""
    rows = [
        {
            "event_id": f"{kind}-{i}",
            "schema_version": 1,
            "tenant": RIVAL,
            "plant": "lyon",
            "line": "head-l1",
            "machine": "cnc-901",
            "event_time": T0 + timedelta(hours=i),
            "sent_time": None,
            "date": T0.date(),
            "kafka_topic": f"maxlake.{RIVAL}.{kind}",
            "kafka_partition": 0,
            "kafka_offset": i,
            "ingested_at": T0 + timedelta(hours=i),
            **{k: v(i) if callable(v) else v for k, v in body.items()},
        }
        for i in range(count)
    ]
    table = pa.Table.from_pylist(rows, schema=silver_schema(kind))
    store.append(silver_table(kind), table, partition_by=SILVER_PARTITIONS, txns={})


def _rival_machine_events(store: DeltaStore) -> None:
    _rival_rows(store, "machine_event", 3, event_type="state", state="RUNNING")


def _rival_telemetry(store: DeltaStore) -> None:
    _rival_rows(
        store,
        "telemetry",
        12,
        reading_index=0,
        tag="spindle_temp",
        value=lambda i: 30.5 + i / 7,
        unit="degC",
        quality="GOOD",
    )


def _contract(cid: str, tenant: str, kinds: str, deid: str = "") -> bytes:
    return (
        f'id = "{cid}"\ntenant = "{tenant}"\npurposes = ["predictive-maintenance-*"]\n'
        f"[share]\nkinds = {kinds}\n[deidentify]\nsuppress_rare = true\n{deid}"
    ).encode()


def test_a_partner_releasing_only_machine_events_does_not_unlock_a_rare_type(
    tmp_path: Path,
) -> None:
    store = seeded_lake(tmp_path / "lake")
    _rival_machine_events(store)
    sharing = Sharing(tmp_path, min_group_size=2)
    sharing.add(_contract("nw-pm", TENANT, '["telemetry"]'))
    sharing.add(_contract("rival-pm", RIVAL, '["machine_event"]'))

    manifest = build_dataset(
        store,
        spec("spindle", filters={"tenants": [TENANT, RIVAL]}),
        registry=_registry(tmp_path),
        jobs=JOBS,
        sharing=sharing.gate,
        allow_failed_quality=True,
    )

    assert manifest.rows == 0, "northwind's cnc_mill telemetry was published alone"
    assert manifest.sharing is not None
    assert manifest.sharing["suppressed_machine_types"] == 1


def test_a_hidden_line_id_inside_a_released_serial_stops_the_build(tmp_path: Path) -> None:
    store = seeded_lake(tmp_path / "lake")
    write_inspection(store, "block-l1-11-00000001", ["cnc-101"], T0)
    sharing = Sharing(tmp_path, min_group_size=1)
    sharing.add(
        _contract("nw-pm", TENANT, '["telemetry", "inspection"]', 'release = ["part_serial"]\n')
    )

    with pytest.raises(IdentifierLeak, match=r"seen\.json"):
        build_dataset(
            store, spec("spindle"), registry=load_registry(), jobs=JOBS, sharing=sharing.gate
        )
