"""A small real lake for the build and catalog tests: silver tables written with deltalake
(through :class:`DeltaStore`) under ``tmp_path``, the packaged registry, and a tiny feature job
of our own so these tests do not depend on the reference jobs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import polars as pl
import pyarrow as pa

from lake import DeltaStore, silver_schema, silver_table
from lake.curation import DatasetSpec, FeatureInfo, JobInputs, JobOutput, parse_spec
from lake.tables import SILVER_PARTITIONS
from schemas import Registry, load_registry

T0 = datetime(2026, 1, 5, tzinfo=UTC)
TENANT = "northwind-auto"
STUTTGART = ("stuttgart", "block-l1", ("cnc-101", "cnc-102", "cnc-103"))
PUEBLA = ("puebla", "housing-l1", ("cnc-201", "cnc-202"))
JOB_NAME = "tag_means"

Reading = tuple[str, str, str, datetime, str, float]
"""(plant, line, machine, event_time, tag, value) of ``TENANT``."""


@cache
def registry() -> Registry:
    """The packaged alliance registry."""
    return load_registry()


def readings(day: int, *, value: float = 30.0) -> list[Reading]:
    """One spindle_temp reading per machine of both plants, every 6 h of day ``day``."""
    out: list[Reading] = []
    for plant, line, machines in (STUTTGART, PUEBLA):
        for i, machine in enumerate(machines):
            for hour in (0, 6, 12, 18):
                when = T0 + timedelta(days=day, hours=hour, minutes=i)
                out.append((plant, line, machine, when, "spindle_temp", value + i + hour / 6))
    return out


def write_telemetry(store: DeltaStore, rows: Sequence[Reading], *, first_offset: int = 0) -> int:
    """Append rows to ``silver/telemetry``; returns the new table version."""
    records = [
        {
            "event_id": f"t-{first_offset + i}",
            "schema_version": 1,
            "tenant": TENANT,
            "plant": plant,
            "line": line,
            "machine": machine,
            "event_time": when,
            "sent_time": None,
            "date": when.date(),
            "reading_index": 0,
            "tag": tag,
            "value": value,
            "unit": "degC",
            "quality": "GOOD",
            "kafka_topic": f"maxlake.{TENANT}.telemetry",
            "kafka_partition": 0,
            "kafka_offset": first_offset + i,
            "ingested_at": when + timedelta(seconds=1),
        }
        for i, (plant, line, machine, when, tag, value) in enumerate(rows)
    ]
    table = pa.Table.from_pylist(records, schema=silver_schema("telemetry"))
    return store.append(silver_table("telemetry"), table, partition_by=SILVER_PARTITIONS, txns={})


def write_inspection(
    store: DeltaStore,
    serial: str,
    machines: Sequence[str],
    when: datetime,
    *,
    result: str = "PASS",
    defects: Sequence[str] = (),
    lot: str = "lot-1",
) -> int:
    """Append one inspection of a Stuttgart part made by ``machines`` (5 min process)."""
    return write_inspections(store, [(serial, machines, when, result, defects, lot)])


Inspection = tuple[str, Sequence[str], datetime, str, Sequence[str], str]
"""(serial, machines, inspected at, result, defect codes, lot) of a Stuttgart part."""


def write_inspections(store: DeltaStore, parts: Sequence[Inspection]) -> int:
    """Append inspections of Stuttgart parts (5 min process each) in one commit."""
    plant, line, _ = STUTTGART
    records = [
        {
            "event_id": f"i-{serial}",
            "schema_version": 1,
            "tenant": TENANT,
            "plant": plant,
            "line": line,
            "machine": "cnc-103",
            "event_time": when,
            "sent_time": None,
            "date": when.date(),
            "part_serial": serial,
            "lot": lot,
            "machines": list(machines),
            "process_start": when - timedelta(minutes=5),
            "process_end": when,
            "result": result,
            "defect_codes": list(defects),
            "dimensions": [],
            "kafka_topic": f"maxlake.{TENANT}.inspection",
            "kafka_partition": 0,
            "kafka_offset": 0,
            "ingested_at": when,
        }
        for serial, machines, when, result, defects, lot in parts
    ]
    table = pa.Table.from_pylist(records, schema=silver_schema("inspection"))
    return store.append(silver_table("inspection"), table, partition_by=SILVER_PARTITIONS, txns={})


def write_down_event(store: DeltaStore, machine: str, when: datetime) -> int:
    """Append a DOWN state of Stuttgart ``machine`` at ``when`` to ``silver/machine_event``."""
    plant, line, _ = STUTTGART
    record = {
        "event_id": f"m-{machine}-{when.isoformat()}",
        "schema_version": 1,
        "tenant": TENANT,
        "plant": plant,
        "line": line,
        "machine": machine,
        "event_time": when,
        "sent_time": None,
        "date": when.date(),
        "event_type": "STATE",
        "state": "DOWN",
        "alarm_code": None,
        "alarm_severity": None,
        "alarm_text": None,
        "kafka_topic": f"maxlake.{TENANT}.machine_event",
        "kafka_partition": 0,
        "kafka_offset": 0,
        "ingested_at": when,
    }
    table = pa.Table.from_pylist([record], schema=silver_schema("machine_event"))
    return store.append(
        silver_table("machine_event"), table, partition_by=SILVER_PARTITIONS, txns={}
    )


def tag_means(inputs: JobInputs) -> JobOutput:
    """Mean and count of each (machine, tag); label: mean above the tag's nominal value.

    The last machine (by id) is the test split, the rest train; the number of inspections seen
    goes into an extra file, so tests can see what the job received.
    """
    threshold = float(inputs.params.get("threshold", 0.0))
    keys = ["tenant", "plant", "line", "machine", "tag"]
    rows = (
        inputs.source("telemetry")
        .group_by(keys)
        .agg(pl.col("value").mean().alias("mean_value"), pl.len().alias("readings"))
        .join(inputs.machines.lazy(), on=["tenant", "plant", "line", "machine"], how="left")
        .join(inputs.tags.lazy(), on=["machine_type", "tag"], how="left")
        .with_columns(
            (pl.col("mean_value") > pl.col("nominal") + threshold).cast(pl.Int8).alias("hot")
        )
        .select(*keys, "mean_value", "readings", "hot")
        .sort(keys)
        .collect()
    )
    last = rows.get_column("machine").max() if rows.height else ""
    test = pl.col("machine") == last
    inspections = inputs.source("inspection").select("part_serial").collect()["part_serial"]
    return JobOutput(
        splits={"train": rows.filter(~test), "test": rows.filter(test)},
        features=[
            FeatureInfo("mean_value", "degC", "mean reading"),
            FeatureInfo("readings", "1", "number of readings"),
        ],
        label_columns=["hot"],
        key_columns=keys,
        files={"seen.json": json.dumps(sorted(inspections.to_list())).encode()},
    )


JOBS = {JOB_NAME: tag_means}


def spec(name: str = "spindle", **extra: object) -> DatasetSpec:
    """A spec of :func:`tag_means` over ``TENANT``; ``extra`` adds or replaces top-level keys."""
    doc: dict[str, object] = {
        "name": name,
        "description": "spindle temperature means",
        "purpose": "predictive-maintenance-research",
        "job": JOB_NAME,
        "filters": {"tenants": [TENANT]},
        **extra,
    }
    return parse_spec(doc, jobs=JOBS)


def seeded_lake(root: Path) -> DeltaStore:
    """A lake with two days of telemetry (two commits: versions 0 and 1)."""
    store = DeltaStore(root)
    write_telemetry(store, readings(0))
    write_telemetry(store, readings(1), first_offset=1000)
    return store
