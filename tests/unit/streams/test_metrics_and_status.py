"""Worker metrics and the lake half of ``maxlake status``, from real batches in a real lake."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from lake import BatchWriter, DeltaStore
from lake.ops_status import quality_window, runs_history, table_health
from maxlake.settings import Settings
from streams.metrics import MeteredSink, WorkerMetrics
from streams.offsets import PartitionOffsets
from streams.status import Thresholds, collect_status
from tests.unit.lake.batches import messages, pipeline, with_bad_input


@pytest.fixture
def ingested(tmp_path: Path) -> tuple[Path, WorkerMetrics, Counter[str], int, int]:
    """80 telemetry messages with bad input written through a metered sink."""
    metrics = WorkerMetrics(process_collectors=False)
    worker = pipeline(tmp_path, MeteredSink(BatchWriter(DeltaStore(tmp_path)), metrics))
    batch = messages([e.payload for e in with_bad_input(80)])
    result = worker.process("telemetry", batch[:50])
    second = worker.process("telemetry", batch[50:])
    table = DeltaStore(tmp_path).read("quarantine/telemetry", columns=["reasons"])
    assert table is not None
    reasons: Counter[str] = Counter()
    for rs in table["reasons"].to_pylist():
        reasons.update(rs)
    return (
        tmp_path,
        metrics,
        reasons,
        result.quarantined + second.quarantined,
        result.silver_rows + second.silver_rows,
    )


def _value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_metrics_count_what_the_lake_received(
    ingested: tuple[Path, WorkerMetrics, Counter[str], int, int],
) -> None:
    root, metrics, reasons, quarantined, silver_rows = ingested
    assert _value(metrics, "maxlake_events_consumed_total", kind="telemetry") == 80
    assert _value(metrics, "maxlake_batches_total", kind="telemetry") == 2
    assert _value(metrics, "maxlake_batch_events_count", kind="telemetry") == 2
    assert _value(metrics, "maxlake_batch_events_sum", kind="telemetry") == 80
    assert _value(metrics, "maxlake_rows_written_total", table="silver/telemetry") == silver_rows
    assert _value(metrics, "maxlake_quarantined_messages_total", kind="telemetry") == quarantined
    for reason, n in reasons.items():
        assert _value(metrics, "maxlake_quarantined_total", kind="telemetry", reason=reason) == n
    assert _value(metrics, "maxlake_validation_duration_seconds_count", kind="telemetry") == 2
    assert _value(metrics, "maxlake_duplicates_total", kind="telemetry") > 0

    again = pipeline(root, MeteredSink(BatchWriter(DeltaStore(root)), metrics))
    again.process("telemetry", messages([e.payload for e in with_bad_input(80)]))
    assert _value(metrics, "maxlake_events_consumed_total", kind="telemetry") == 80
    assert _value(metrics, "maxlake_events_redelivered_total", kind="telemetry") == 80


def test_lag_gauge_per_partition() -> None:
    metrics = WorkerMetrics(process_collectors=False)
    metrics.set_lag([PartitionOffsets("t", 0, 0, 10, 4), PartitionOffsets("t", 1, 5, 9, None)])
    assert _value(metrics, "maxlake_consumer_lag", topic="t", partition="0") == 6
    assert _value(metrics, "maxlake_consumer_lag", topic="t", partition="1") == 4


def test_quality_window_and_history_add_up_to_the_batches(
    ingested: tuple[Path, WorkerMetrics, Counter[str], int, int],
) -> None:
    root, _, reasons, quarantined, _ = ingested
    store = DeltaStore(root)
    window = quality_window(store, timedelta(hours=1))
    telemetry = window["kinds"]["telemetry"]
    assert (telemetry["batches"], telemetry["consumed"]) == (2, 80)
    assert telemetry["quarantined"] == quarantined
    assert telemetry["quarantine_rate"] == pytest.approx(quarantined / 80)
    assert telemetry["quarantined_by_reason"] == dict(reasons)
    assert sum(r["messages"] for r in telemetry["quarantine_by_tenant"]) == reasons.total()
    assert window["kinds"]["inspection"]["consumed"] == 0

    history = runs_history(store, timedelta(hours=1), timedelta(minutes=5))
    assert 12 <= len(history["buckets"]) <= 13
    assert sum(b["consumed"] for b in history["buckets"]) == 80
    busy = [b for b in history["buckets"] if b["consumed"]]
    assert busy[-1]["events_per_s"] == pytest.approx(busy[-1]["consumed"] / 300)
    assert sum(b["by_kind"].get("telemetry", 0) for b in busy) == 80

    tables = {t["table"]: t for t in table_health(store)}
    assert tables["silver/telemetry"]["files"] >= 2
    assert tables["silver/telemetry"]["last_commit_age_s"] < 600


def test_a_broker_that_does_not_answer_is_reported_with_the_next_step(tmp_path: Path) -> None:
    """kafka-python waits 30 s for a first broker by default, and the status said only
    'Unable to bootstrap': it now waits ``Thresholds.kafka_timeout_s`` (1 s here) and says
    what to do."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(lake_root=str(tmp_path / "lake"), bootstrap_servers=f"127.0.0.1:{port}")

    class Quick(Thresholds):
        kafka_timeout_s = 1.0

    status = collect_status(settings, timedelta(hours=1), thresholds=Quick)
    assert status["kafka"]["reachable"] is False
    alert = {a["alert"]: a["detail"] for a in status["alerts"]}["kafka_unreachable"]
    assert f"127.0.0.1:{port}" in alert
    assert "within 1 s" in alert
    assert "maxlake broker start" in alert
    assert "MAXLAKE_BOOTSTRAP_SERVERS" in alert
