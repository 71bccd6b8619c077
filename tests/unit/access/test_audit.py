"""The audit table on a real Delta lake under tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lake import DeltaStore
from lake.access import AUDIT, AuditEntry, AuditLog
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
    assert DeltaStore(tmp_path).version(AUDIT) == 2


def test_an_empty_trail_reads_as_no_rows(tmp_path: Path) -> None:
    assert AuditLog(DeltaStore(tmp_path)).read().height == 0


def test_unknown_outcomes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="outcome"):
        AuditLog(DeltaStore(tmp_path)).record(AuditEntry("pull", "maybe"))
