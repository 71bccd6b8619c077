"""The audit table on a real Delta lake under tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from lake import DeltaStore
from lake.access import AUDIT, AUDIT_SCHEMA, AuditEntry, AuditLog
from maxlake.errors import TerminalError


def test_rows_are_appended_and_filtered(tmp_path: Path) -> None:
    log = AuditLog(DeltaStore(tmp_path))
    old = datetime(2026, 1, 1, tzinfo=UTC)
    log.record(
        AuditEntry("download", "allowed", principal="a", dataset="d", version=1, rows=5), at=old
    )
    log.record(AuditEntry("download", "denied", principal="b", dataset="d", status=403))
    log.record(AuditEntry("list", "unauthenticated", status=401))

    everything = log.read()
    assert everything.height == 3
    assert everything.get_column("outcome").to_list() == ["allowed", "denied", "unauthenticated"]
    assert log.read(principal="b").get_column("status").to_list() == [403]
    assert log.read(since=datetime.now(UTC) - timedelta(hours=1)).height == 2
    assert DeltaStore(tmp_path).version(AUDIT) == 3


def test_an_empty_trail_reads_as_no_rows(tmp_path: Path) -> None:
    assert AuditLog(DeltaStore(tmp_path)).read().height == 0


def test_unknown_outcomes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="outcome"):
        AuditLog(DeltaStore(tmp_path)).record(AuditEntry("pull", "maybe"))


def test_the_trail_is_append_only(tmp_path: Path) -> None:
    log = AuditLog(DeltaStore(tmp_path))
    log.record(AuditEntry("download", "allowed", principal="a", dataset="d", rows=5))
    table = DeltaTable(str(tmp_path / AUDIT))

    with pytest.raises(CommitFailedError, match="append-only"):
        table.delete("principal = 'a'")
    assert log.read().height == 1


def test_an_older_trail_becomes_append_only_and_gains_the_new_columns(tmp_path: Path) -> None:
    old_schema = pa.schema([f for f in AUDIT_SCHEMA if f.name not in ("method", "key_id")])
    row = {"audit_id": "x", "at": datetime.now(UTC), "action": "list", "outcome": "allowed"}
    row |= {"detail": "", "channel": "http", "date": datetime.now(UTC).date()}
    old = pa.Table.from_pylist([row], schema=old_schema)
    write_deltalake(str(tmp_path / AUDIT), old, partition_by=["date"])

    log = AuditLog(DeltaStore(tmp_path))
    log.record(AuditEntry("download", "unauthenticated", key_id="0123456789abcdef", status=401))

    table = DeltaTable(str(tmp_path / AUDIT))
    assert table.metadata().configuration["delta.appendOnly"] == "true"
    assert log.read().get_column("key_id").to_list() == [None, "0123456789abcdef"]
