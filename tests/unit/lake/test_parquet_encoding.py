"""The Parquet encoding of the tables maxlake writes is a storage property only: zstd and no
dictionary for high-cardinality columns, with the same rows, schema and Delta statistics as
the previous writer (delta-rs's defaults: snappy, a dictionary for every column)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lake.delta
from lake import BatchWriter, DeltaStore, quarantine_table, silver_table
from lake.tables import DUPLICATES, PLAIN_COLUMNS, RUNS
from tests.unit.lake.batches import (
    CapturingWriter,
    captured_batch,
    messages,
    pipeline,
    with_bad_input,
)

TABLES = (silver_table("telemetry"), quarantine_table("telemetry"), DUPLICATES, RUNS)
_RUN_TIMINGS = ("finished_at", "write_ms")
"""Columns of the run row that differ between two writes of the same batch."""


def _sorted(rows: pa.Table) -> pa.Table:
    keys = [
        c for c in ("kafka_partition", "kafka_offset", "reading_index") if c in rows.schema.names
    ]
    rows = rows.drop_columns([c for c in _RUN_TIMINGS if c in rows.schema.names])
    return rows.sort_by([(k, "ascending") for k in keys]) if keys else rows


def _files(root: Path, name: str) -> list[Path]:
    files = sorted((root / name).rglob("*.parquet"))
    assert files, f"{name} has no data files"
    return files


def test_every_reader_sees_the_rows_and_schema_the_previous_writer_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = captured_batch(tmp_path / "capture")
    BatchWriter(DeltaStore(tmp_path / "now")).write(batch)
    with monkeypatch.context() as previous:  # the previous code: delta-rs's writer defaults
        previous.setattr(lake.delta, "writer_properties", lambda schema: None)
        BatchWriter(DeltaStore(tmp_path / "before")).write(batch)

    now, before = DeltaStore(tmp_path / "now"), DeltaStore(tmp_path / "before")
    given = {
        silver_table("telemetry"): batch.silver,
        quarantine_table("telemetry"): batch.quarantine,
        DUPLICATES: batch.duplicates,
    }
    for name in TABLES:
        got, want = now.read(name), before.read(name)
        assert got is not None
        assert want is not None
        assert want.num_rows > 0, name
        assert got.schema == want.schema, name
        if name in given:  # exactly the rows handed to the writer
            want = given[name].cast(got.schema)
        assert _sorted(got).equals(_sorted(want)), name
        polars_got = pl.read_delta(now.uri(name)).drop(_RUN_TIMINGS, strict=False)
        polars_want = pl.from_arrow(_sorted(want))
        assert isinstance(polars_want, pl.DataFrame)
        assert polars_got.sort(polars_got.columns).equals(polars_want.sort(polars_want.columns)), (
            name
        )
        # The sharing connector reads the data files with pyarrow (partition values from the
        # log, so compared without the partition columns).
        files = _sorted(pa.concat_tables(pq.read_table(f) for f in _files(tmp_path / "now", name)))
        assert files.equals(_sorted(want).select(files.schema.names)), name


def test_files_are_zstd_without_dictionaries_for_high_cardinality_columns(
    tmp_path: Path,
) -> None:
    batch = captured_batch(tmp_path / "capture")
    store = DeltaStore(tmp_path / "lake")
    BatchWriter(store).write(batch)

    for name in TABLES:
        for path in _files(tmp_path / "lake", name):
            meta = pq.ParquetFile(path).metadata
            for group in range(meta.num_row_groups):
                for i in range(meta.num_columns):
                    column = meta.row_group(group).column(i)
                    assert column.compression == "ZSTD", (name, column.path_in_schema)
                    top = column.path_in_schema.split(".")[0]
                    dictionary = "RLE_DICTIONARY" in column.encodings
                    if top in PLAIN_COLUMNS:
                        assert not dictionary, (name, column.path_in_schema, column.encodings)
                    elif top in ("tag", "unit", "machine", "stage", "worker"):
                        assert dictionary, (name, column.path_in_schema, column.encodings)
    # File skipping keeps its statistics, also for the columns without a dictionary.
    described = store.describe(silver_table("telemetry"))
    assert described is not None
    actions = described.files
    for column in ("min.event_time", "max.event_time", "min.kafka_offset", "max.event_id"):
        assert actions[column].null_count == 0, column


def test_compaction_writes_the_same_encoding(tmp_path: Path) -> None:
    events = with_bad_input(400)
    capture = CapturingWriter(DeltaStore(tmp_path / "capture"))
    runner = pipeline(tmp_path / "capture", capture)
    runner.process("telemetry", messages([e.payload for e in events[:200]]))
    runner.process("telemetry", messages([e.payload for e in events[200:]], first_offset=200))
    store = DeltaStore(tmp_path / "lake")
    writer = BatchWriter(store)
    for batch in capture.batches:
        writer.write(batch)
    name = silver_table("telemetry")
    rows = store.count(name)

    metrics = store.compact(name, partition_filters=None, target_size_bytes=256 << 20)

    assert metrics["numFilesAdded"] > 0
    assert store.count(name) == rows
    described = store.describe(name)
    assert described is not None
    for path in described.files["path"].to_pylist():
        column = pq.ParquetFile(tmp_path / "lake" / name / path).metadata.row_group(0)
        by_name = {
            column.column(i).path_in_schema: column.column(i) for i in range(column.num_columns)
        }
        assert by_name["event_id"].compression == "ZSTD"
        assert "RLE_DICTIONARY" not in by_name["event_id"].encodings
        assert "RLE_DICTIONARY" in by_name["tag"].encodings
