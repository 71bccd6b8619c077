"""The demo report's batch lines: a telemetry rate labelled as such, not engine throughput."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import cast

import polars as pl

from lake.delta import DeltaStore
from maxlake.cli.demo_counts import kind_counts, quarantine_reasons
from maxlake.cli.demo_run import batch_lines, demo_window
from schemas import EventKind


def _runs(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    t0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
    return pl.DataFrame(
        {
            "kind": [k for k, _, _ in rows],
            "consumed": [c for _, c, _ in rows],
            "started_at": [t0 for _ in rows],
            "finished_at": [t0 + timedelta(seconds=s) for _, _, s in rows],
        }
    )


def test_the_rate_counts_only_telemetry_batches_and_points_to_the_benchmarks() -> None:
    runs = _runs(
        [("telemetry", 50_000, 4.0), ("telemetry", 50_000, 6.0)]
        + [("machine_event", 10, 1.0)] * 30
        + [("inspection", 5, 1.5)] * 20
    )
    text = "\n".join(batch_lines(runs, "batch", 2_005.0))
    assert "batches validated            52 (2 telemetry, 50 inspection and machine_event)" in text
    assert "10,000 events/s while busy (batch engine" in text
    assert "100,000 events in 10.0 s of summed batch time, 50,000 events per batch" in text
    assert "not the\n    engine's throughput" in text
    assert "2,005 events/s" in text
    assert "docs/BENCHMARKS.md" in text
    assert "ingest throughput" not in text


def test_no_telemetry_batch_gives_no_rate() -> None:
    lines = batch_lines(_runs([("inspection", 5, 1.5)]), "stream", 100.0)
    assert lines == ["batches validated             1 (0 telemetry, 1 inspection)"]


def test_a_demo_run_on_a_lake_with_events_simulates_the_hours_before_them() -> None:
    now = datetime(2026, 12, 1, 20, 0, 0, 500_000, tzinfo=UTC)
    assert demo_window(3600, 7, None, now) == (datetime(2026, 12, 1, 19, tzinfo=UTC), 7)
    earliest = datetime(2026, 12, 1, 16, 59, 16, 250_000, tzinfo=UTC)
    start, seed = demo_window(3600, 7, earliest, now)
    assert start + timedelta(seconds=3600) < earliest
    assert earliest - (start + timedelta(seconds=3600)) <= timedelta(seconds=2)
    assert seed != 7, "a stretch of its own gets a seed of its own"
    assert demo_window(3600, 7, earliest, now) == (start, seed), "deterministic for a lake"


class _Lake:
    """A lake whose every table holds the same Kafka coordinates (kind telemetry)."""

    def __init__(self, coords: list[tuple[str, int, int]]) -> None:
        self.frame = pl.DataFrame(
            {
                "kind": ["telemetry"] * len(coords),
                "kafka_topic": [t for t, _, _ in coords],
                "kafka_partition": pl.Series([p for _, p, _ in coords], dtype=pl.Int32),
                "kafka_offset": pl.Series([o for _, _, o in coords], dtype=pl.Int64),
                "reasons": [["empty"]] * len(coords),
            }
        )

    def read_frame(self, name: str, *, columns: list[str]) -> pl.DataFrame:
        return self.frame.select(columns)


def test_a_second_demo_counts_only_its_own_topics_not_an_onboarded_tenants_events() -> None:
    demo_topic, onboarded = "maxlake.northwind-auto.telemetry", "maxlake.newco-motors.telemetry"
    lake = _Lake(
        [(demo_topic, 0, o) for o in range(10)]  # 0-6 an earlier run's, 7-9 this run's
        + [(onboarded, 0, o) for o in range(5)]  # a tenant onboarded by hand, ingested before
    )
    since = {(demo_topic, 0): 7, (demo_topic, 1): 0}
    store = cast(DeltaStore, lake)
    this_run = kind_counts(store, EventKind.TELEMETRY, since)
    assert this_run["silver events"] == 3
    assert this_run["quarantined"] == 3
    assert this_run["duplicates"] == 3
    assert quarantine_reasons(store, since) == Counter({"empty": 3 * len(EventKind)})
