"""check_accounting finds every planted violation of the invariant, and nothing in a clean lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from lake import BatchWriter, DeltaStore, quarantine_table, silver_table
from lake.accounting import check_accounting
from lake.tables import QUARANTINE_PARTITIONS, RUNS
from tests.unit.lake.batches import (
    TOPIC,
    Crash,
    CrashingStore,
    messages,
    pipeline,
    with_bad_input,
)

N = 300


def _clean_lake(root: Path) -> DeltaStore:
    events = with_bad_input(N)
    pipeline(root).process("telemetry", messages([e.payload for e in events]))
    return DeltaStore(root)


def test_a_clean_lake_passes(tmp_path: Path) -> None:
    report = check_accounting(_clean_lake(tmp_path), committed={(TOPIC, 0): N})
    assert report.ok, report.violations
    assert report.runs_consumed["telemetry"] == N


def test_an_offset_in_both_silver_and_quarantine_is_reported(tmp_path: Path) -> None:
    store = _clean_lake(tmp_path)
    silver = store.read(silver_table("telemetry"), columns=["kafka_offset"])
    quarantine = store.read(quarantine_table("telemetry"))
    assert silver is not None
    assert quarantine is not None
    victim = int(pc.min(silver["kafka_offset"]).as_py())
    planted = quarantine.slice(0, 1)
    planted = planted.set_column(
        planted.schema.get_field_index("kafka_offset"), "kafka_offset", pa.array([victim])
    )
    store.append(
        quarantine_table("telemetry"), planted, partition_by=QUARANTINE_PARTITIONS, txns={}
    )

    report = check_accounting(store, committed={(TOPIC, 0): N})

    assert not report.ok
    problems = [v for v in report.violations if "more than one place" in v.problem]
    assert [(v.topic, v.partition, v.offsets) for v in problems] == [(TOPIC, 0, (victim,))]
    assert any("validation_runs counts" in v.problem for v in report.violations)


def test_a_committed_offset_missing_from_the_lake_is_reported(tmp_path: Path) -> None:
    store = _clean_lake(tmp_path)

    report = check_accounting(store, committed={(TOPIC, 0): N + 3})

    lost = [v for v in report.violations if "lost" in v.problem]
    assert [(v.topic, v.partition, v.offsets) for v in lost] == [(TOPIC, 0, (N, N + 1, N + 2))]


def test_offsets_below_the_log_start_are_not_required(tmp_path: Path) -> None:
    events = with_bad_input(N)
    pipeline(tmp_path).process(
        "telemetry", messages([e.payload for e in events], first_offset=1000)
    )
    report = check_accounting(
        DeltaStore(tmp_path), committed={(TOPIC, 0): 1000 + N}, start_offsets={(TOPIC, 0): 1000}
    )
    assert report.ok, report.violations


def test_an_event_id_twice_in_silver_is_reported(tmp_path: Path) -> None:
    store = _clean_lake(tmp_path)
    silver = store.read(silver_table("telemetry"))
    assert silver is not None
    row = silver.slice(0, 1)
    row = row.set_column(row.schema.get_field_index("kafka_offset"), "kafka_offset", pa.array([N]))
    store.append(silver_table("telemetry"), row, partition_by=None, txns={})

    report = check_accounting(store)

    assert any("in silver at several offsets" in v.problem for v in report.violations)


def test_a_run_row_missing_is_reported(tmp_path: Path) -> None:
    store = _clean_lake(tmp_path)
    DeltaTable(store.uri(RUNS)).delete()

    report = check_accounting(store)

    assert any("validation_runs counts 0" in v.problem for v in report.violations)


def test_a_batch_whose_worker_died_before_its_run_row_says_so_and_heals_on_restart(
    tmp_path: Path,
) -> None:
    """``lake verify`` right after a kill -9 between the silver commit and the runs row."""
    payloads = [e.payload for e in with_bad_input(N)]
    crashing = BatchWriter(CrashingStore(tmp_path, RUNS))
    with pytest.raises(Crash):
        pipeline(tmp_path, crashing).process("telemetry", messages(payloads))

    report = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): 0})
    lines = [str(v) for v in report.violations]
    assert lines == [
        f"telemetry: ops/validation_runs counts 0 consumed offsets but the lake holds {N:,} (a "
        "worker wrote a batch and stopped before recording its validation run, as after a "
        "kill -9: a restarted worker records it; check again once every worker runs and the "
        "lag is 0)"
    ]

    pipeline(tmp_path).process("telemetry", messages(payloads))
    healed = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): N})
    assert healed.ok, [str(v) for v in healed.violations]


def test_rows_written_twice_at_the_same_offset_are_reported(tmp_path: Path) -> None:
    store = _clean_lake(tmp_path)
    rows = store.read(silver_table("telemetry"))
    assert rows is not None
    victim = int(pc.min(rows["kafka_offset"]).as_py())
    again = rows.filter(pc.equal(rows["kafka_offset"], victim))
    store.append(silver_table("telemetry"), again, partition_by=None, txns={})

    report = check_accounting(store, committed={(TOPIC, 0): N})

    problems = [v for v in report.violations if "readings once each" in v.problem]
    assert [(v.topic, v.partition, v.offsets) for v in problems] == [(TOPIC, 0, (victim,))]
    assert any("written 2 times" in v.problem for v in report.violations)


def test_a_batch_with_repeated_offsets_is_written_once(tmp_path: Path) -> None:
    events = with_bad_input(N)
    batch = messages([e.payload for e in events])
    pipeline(tmp_path).process("telemetry", [*batch, *batch[: N // 2]])

    report = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): N})

    assert report.ok, report.violations
    assert report.runs_consumed["telemetry"] == N
