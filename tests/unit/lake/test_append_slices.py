"""An append hands delta-rs its rows in slices (less memory held at once): the same rows,
schema, files and row groups land as when the whole table was handed over (the order of rows
inside a file may differ: a Delta table's rows have none), and a commit retried after a
conflict writes every row again, not the rest of a used-up stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError

import lake.delta
from lake import BatchWriter, DeltaStore, quarantine_table, silver_table
from lake.tables import DUPLICATES, RUNS
from tests.unit.lake.batches import (
    captured_batch,
)

TABLES = (silver_table("telemetry"), quarantine_table("telemetry"), DUPLICATES, RUNS)
_SLICE = 64
"""Rows per slice in these tests: a 400-event batch's silver table is several slices."""


def _layout(root: Path, name: str) -> list[tuple[str, int, int]]:
    """Per data file: its partition directory, row groups and rows."""
    return sorted(
        (
            str(path.parent.relative_to(root / name)),
            pq.ParquetFile(path).metadata.num_row_groups,
            pq.ParquetFile(path).metadata.num_rows,
        )
        for path in (root / name).rglob("*.parquet")
    )


def _rows(store: DeltaStore, name: str) -> pa.Table:
    rows = store.read(name)
    assert rows is not None
    rows = rows.drop_columns([c for c in ("finished_at", "write_ms") if c in rows.schema.names])
    keys = [f.name for f in rows.schema if not pa.types.is_nested(f.type)]
    return rows.sort_by([(k, "ascending") for k in keys])


def test_a_sliced_append_lands_what_the_whole_table_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = captured_batch(tmp_path / "capture")
    assert batch.silver.num_rows > 3 * _SLICE
    monkeypatch.setattr(lake.delta, "WRITE_SLICE_ROWS", _SLICE)
    BatchWriter(DeltaStore(tmp_path / "sliced")).write(batch)
    with monkeypatch.context() as previous:  # the previous code: the whole table at once
        previous.setattr(lake.delta, "in_slices", lambda data: data)
        BatchWriter(DeltaStore(tmp_path / "whole")).write(batch)

    sliced, whole = DeltaStore(tmp_path / "sliced"), DeltaStore(tmp_path / "whole")
    for name in TABLES:
        got, want = _rows(sliced, name), _rows(whole, name)
        assert want.num_rows > 0, name
        assert got.schema == want.schema, name
        assert got.equals(want), name
        assert _layout(tmp_path / "sliced", name) == _layout(tmp_path / "whole", name), name


def test_slices_share_the_table_s_buffers_and_keep_its_rows_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lake.delta, "WRITE_SLICE_ROWS", _SLICE)
    table = pa.table({"offset": pa.array(range(1000), pa.int64())})
    small = table.slice(0, _SLICE)
    assert lake.delta.in_slices(small) is small

    stream = lake.delta.in_slices(table)

    assert isinstance(stream, pa.RecordBatchReader)
    batches = list(stream)
    assert [b.num_rows for b in batches] == [_SLICE] * (1000 // _SLICE) + [1000 % _SLICE]
    start, end = _span(table.column("offset").chunk(0))
    for part in batches:
        at, _ = _span(part.column(0))
        assert start <= at < end  # a view into the table's buffer, not a copy
    assert pa.Table.from_batches(batches).equals(table)


def _span(array: pa.Array) -> tuple[int, int]:
    data = array.buffers()[1]
    assert data is not None
    offset = array.offset * 8
    return data.address + offset, data.address + data.size


def test_a_retried_commit_writes_every_row_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt reads the whole stream, then its commit fails: the retry must not be
    handed the used-up stream (an empty append) but a new one."""
    monkeypatch.setattr(lake.delta, "WRITE_SLICE_ROWS", _SLICE)
    table = pa.table({"offset": pa.array(range(1000), pa.int64()), "date": ["d"] * 1000})
    attempts: list[int] = []

    def fails_once(target: Any, data: Any, **kwargs: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            assert sum(b.num_rows for b in data) == 1000
            raise CommitFailedError("another writer committed first")
        write_deltalake(target, data, **kwargs)

    monkeypatch.setattr(lake.delta, "write_deltalake", fails_once)
    store = DeltaStore(tmp_path / "lake")

    store.append("t", table, partition_by=("date",), txns={"app": 7})

    assert len(attempts) == 2
    got = store.read("t")
    assert got is not None
    assert sorted(got.column("offset").to_pylist()) == list(range(1000))
    assert store.txn_versions("t", ["app"]) == {"app": 7}
