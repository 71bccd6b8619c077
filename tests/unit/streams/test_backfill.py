"""Backfill of late data: lands in the old date partitions of its event time, bad lines are
quarantined under their line number, and a re-run adds nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lake import DeltaStore
from lake.accounting import check_accounting
from maxlake.errors import ConfigError
from schemas import load_registry
from streams.backfill import backfill_file, backfill_topic
from streams.simulator import Simulator
from tests.unit.lake.batches import TENANT, gateway, settings

DAYS_AGO = 30


def _late_lines(n: int) -> tuple[list[bytes], set[date]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=DAYS_AGO)
    sim = Simulator(load_registry(), seed=5, start=start, tenants=[TENANT], bad_rate=0.0)
    events = [e for e in sim.events(600) if e.kind == "telemetry"][:n]
    days = {(start + timedelta(seconds=s)).date() for s in (0, 600)}
    return [e.payload for e in events], days


def _silver(root: Path) -> pl.DataFrame:
    frame = DeltaStore(root).read_frame(
        "silver/telemetry", columns=["event_id", "date", "kafka_topic"]
    )
    assert frame is not None
    return frame


def test_backfill_lands_late_data_in_its_date_partitions_and_a_rerun_adds_nothing(
    tmp_path: Path,
) -> None:
    payloads, days = _late_lines(30)
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join([*payloads[:10], b"", b"{not json", *payloads[10:]]) + b"\n")
    root = tmp_path / "lake"

    first = backfill_file(settings(root), path, "telemetry", tenant=TENANT, gateway=gateway())
    assert (first.lines, first.blank, first.consumed) == (32, 1, 31)
    assert (first.silver_events, first.quarantined, first.already_in_lake) == (30, 1, 0)
    silver = _silver(root)
    assert silver["event_id"].n_unique() == 30
    assert set(silver["date"].unique().to_list()) <= days
    topic = backfill_topic("history", TENANT, "telemetry")
    assert silver["kafka_topic"].unique().to_list() == [topic]

    quarantine = DeltaStore(root).read("quarantine/telemetry", columns=["kafka_offset", "reasons"])
    assert quarantine is not None
    bad = quarantine.to_pylist()
    assert bad == [{"kafka_offset": 12, "reasons": ["malformed_json"]}], "offset = line number"

    again = backfill_file(settings(root), path, "telemetry", tenant=TENANT, gateway=gateway())
    assert (again.consumed, again.silver_rows, again.already_in_lake) == (0, 0, 31)
    assert _silver(root).height == silver.height
    report = check_accounting(DeltaStore(root))
    assert report.ok, [str(v) for v in report.violations]
    assert report.runs_consumed["telemetry"] == 31


def test_two_files_of_one_tenant_and_kind_are_two_backfills(tmp_path: Path) -> None:
    payloads, _ = _late_lines(20)
    first, second = tmp_path / "part 1.jsonl", tmp_path / "part-2.jsonl"
    first.write_bytes(b"\n".join(payloads[:10]))
    second.write_bytes(b"\n".join(payloads[10:]))
    root = tmp_path / "lake"
    one = backfill_file(settings(root), first, "telemetry", tenant=TENANT, gateway=gateway())
    two = backfill_file(settings(root), second, "telemetry", tenant=TENANT, gateway=gateway())
    assert (one.silver_events, two.silver_events) == (10, 10)
    assert one.topics == [backfill_topic("part-1", TENANT, "telemetry")]
    assert check_accounting(DeltaStore(root)).ok


def test_without_a_tenant_each_line_names_its_own(tmp_path: Path) -> None:
    payloads, _ = _late_lines(5)
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(payloads))
    report = backfill_file(settings(tmp_path / "lake"), path, "telemetry", gateway=gateway())
    assert report.topics == [backfill_topic("history", TENANT, "telemetry")]
    assert report.silver_events == 5


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        backfill_file(settings(tmp_path), tmp_path / "nope.jsonl", "telemetry")


def test_a_device_a_folder_or_an_empty_file_is_named_as_such(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    for path, message in (
        (Path("/dev/null"), "/dev/null is not a regular file \\(a device, pipe or socket\\)"),
        (tmp_path, "is not a regular file \\(a folder\\)"),
        (empty, "is empty \\(0 bytes\\): nothing to backfill"),
    ):
        with pytest.raises(ConfigError, match=message):
            backfill_file(settings(tmp_path / "lake"), path, "telemetry")
