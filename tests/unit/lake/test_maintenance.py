"""Maintenance on real Delta tables: compaction, vacuum and checkpoints keep every row and the
exactly-once bookkeeping, also while a writer keeps appending."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lake import DeltaStore, TableNotFound, app_id
from lake.maintenance import checkpoint, compact, discover_tables, table_status, vacuum

YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)


def _batch(first: int, n: int, day: date) -> pa.Table:
    return pa.table(
        {
            "tenant": pa.array(["t1"] * n),
            "date": pa.array([day] * n, pa.date32()),
            "kafka_topic": pa.array(["maxlake.t1.telemetry"] * n),
            "kafka_partition": pa.array([0] * n, pa.int32()),
            "kafka_offset": pa.array(range(first, first + n), pa.int64()),
        }
    )


def _append(store: DeltaStore, first: int, n: int, day: date) -> None:
    store.append(
        "silver/telemetry",
        _batch(first, n, day),
        partition_by=("tenant", "date"),
        txns={app_id("maxlake.t1.telemetry", 0): first + n - 1},
    )


def _rows(store: DeltaStore) -> list[int]:
    rows = store.read("silver/telemetry", columns=["kafka_offset"])
    assert rows is not None
    return sorted(rows["kafka_offset"].to_pylist())


def test_compaction_merges_closed_partitions_and_keeps_rows_and_versions(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    for i in range(10):
        _append(store, i * 10, 10, YESTERDAY)
    _append(store, 100, 10, datetime.now(UTC).date())
    before = table_status(store, "silver/telemetry")
    assert before.files == 11

    metrics = compact(store, "silver/telemetry")

    after = table_status(store, "silver/telemetry")
    assert metrics["numFilesRemoved"] == 10, "only the closed (yesterday) partition is compacted"
    assert after.files == 2
    assert _rows(store) == list(range(110))
    versions = store.txn_versions("silver/telemetry", [app_id("maxlake.t1.telemetry", 0)])
    assert versions == {"maxlake.t1.telemetry/0": 109}


def test_compaction_beside_a_writer_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    for i in range(20):
        _append(store, i * 5, 5, YESTERDAY)
    writer_store = DeltaStore(tmp_path)

    def keep_writing() -> None:
        for i in range(20, 40):
            _append(writer_store, i * 5, 5, datetime.now(UTC).date())

    thread = threading.Thread(target=keep_writing)
    thread.start()
    compact(DeltaStore(tmp_path), "silver/telemetry")
    thread.join()
    assert _rows(DeltaStore(tmp_path)) == list(range(200))


def test_vacuum_dry_run_lists_then_apply_deletes_only_unreferenced(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    for i in range(5):
        _append(store, i * 10, 10, YESTERDAY)
    compact(store, "silver/telemetry")
    listed = vacuum(store, "silver/telemetry", retention_hours=0, dry_run=True)
    assert len(listed) == 5
    assert len(vacuum(store, "silver/telemetry", retention_hours=0, dry_run=True)) == 5
    deleted = vacuum(store, "silver/telemetry", retention_hours=0, dry_run=False)
    assert sorted(deleted) == sorted(listed)
    assert _rows(DeltaStore(tmp_path)) == list(range(50))
    assert vacuum(store, "silver/telemetry", retention_hours=0, dry_run=False) == []


def test_checkpoint_and_discovery(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    for i in range(3):
        _append(store, i, 1, YESTERDAY)
    assert discover_tables(store) == ["silver/telemetry"]
    assert checkpoint(store, "silver/telemetry") == 2
    assert list((tmp_path / "silver/telemetry/_delta_log").glob("*.checkpoint.parquet"))
    assert _rows(DeltaStore(tmp_path)) == [0, 1, 2]


def test_an_unknown_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(TableNotFound, match="no Delta table 'silver/nope'"):
        table_status(DeltaStore(tmp_path), "silver/nope")
    with pytest.raises(TableNotFound):
        compact(DeltaStore(tmp_path), "silver/nope")
