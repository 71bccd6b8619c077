"""``ops/gaps`` of cause ``discarded_topic_recreated`` on real Delta tables: written once,
completed below by the next positioning when a killed worker held records, and accounted by
verify, ops status, the alerts and the metrics in their own words (not as expired offsets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake import BatchWriter, DeltaStore, silver_table
from lake.accounting import check_accounting
from lake.lineage import (
    DISCARDED_TOPIC_RECREATED,
    EXPIRED_BEFORE_INGEST,
    Gap,
    gap_records,
    record_gap,
    recreation_gaps,
)
from lake.ops_status import offset_events
from lake.tables import SILVER_PARTITIONS
from streams.ingest import RawMessage
from streams.metrics import WorkerMetrics
from streams.status import Thresholds, _alerts
from tests.unit.lake.batches import TOPIC, messages, pipeline, telemetry


def _tagged(payloads: list[bytes], topic_id: str, first_offset: int = 0) -> list[RawMessage]:
    return [m._replace(topic_id=topic_id) for m in messages(payloads, first_offset=first_offset)]


def _recreated_lake(root: Path) -> DeltaStore:
    """Lineage ``old`` holds offsets 0-19; the worker that found the topic recreated recorded
    30-59 as discarded and was killed holding 20-29 (never written); lineage ``new`` holds 0-9."""
    payloads = [e.payload for e in telemetry(40)]
    pipeline(root).process("telemetry", _tagged(payloads[:20], "old"))
    store = DeltaStore(root)
    record_gap(store, Gap(TOPIC, "old", 0, 30, 59, DISCARDED_TOPIC_RECREATED), worker="killed")
    pipeline(root).process("telemetry", _tagged(payloads[20:30], "new"))
    return store


def _offset_alerts(events: dict[str, Any]) -> list[dict[str, Any]]:
    """The status alerts of ``events`` (``offset_events``) alone: no broker, workers or tables."""
    status: dict[str, Any] = {
        "kafka": {"reachable": False, "error": "x"},
        "quality": {},
        "local_workers": [],
        "offsets": events,
        "tables": [],
    }
    return _alerts(status, Thresholds)


def test_a_discarded_gap_is_written_once(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    gap = Gap(TOPIC, "old", 0, 30, 59, DISCARDED_TOPIC_RECREATED)
    record_gap(store, gap, worker="w")
    record_gap(store, gap, worker="w")  # a retry of a commit that had landed
    assert gap_records(store).height == 1


def test_the_next_positioning_records_what_a_killed_worker_held(tmp_path: Path) -> None:
    store = _recreated_lake(tmp_path)
    assert recreation_gaps(store, {TOPIC: "new"}, [(TOPIC, 0)]) == [
        Gap(TOPIC, "old", 0, 20, 29, DISCARDED_TOPIC_RECREATED)
    ]
    handle = BatchWriter(store).handle()
    assert len(handle.record_recreation_gaps({TOPIC: "new"}, [(TOPIC, 0)], worker="next")) == 1
    assert handle.record_recreation_gaps({TOPIC: "new"}, [(TOPIC, 0)], worker="next") == []
    assert recreation_gaps(store, {TOPIC: "old"}, [(TOPIC, 0)]) == []  # the current lineage: open
    assert recreation_gaps(store, {TOPIC: "new"}, [(TOPIC, 1)]) == []


def test_offsets_a_killed_batch_committed_to_silver_are_not_a_gap(tmp_path: Path) -> None:
    """Killed between its silver commit and its runs row, a batch left 20-24 in silver: the
    gap below the discarded one is 25-29, so no offset is both in the lake and in a gap."""
    store = _recreated_lake(tmp_path)
    name = silver_table("telemetry")
    rows = store.read(name)
    assert rows is not None
    old = rows.filter(pc.field("kafka_topic_id") == "old")
    planted = old.filter(pc.less(old["kafka_offset"], 5))
    moved = pc.add(planted["kafka_offset"], pa.scalar(20, pa.int64()))
    planted = planted.set_column(
        planted.schema.get_field_index("kafka_offset"), "kafka_offset", moved
    )
    store.append(name, planted, partition_by=SILVER_PARTITIONS, txns={})
    assert recreation_gaps(store, {TOPIC: "new"}, [(TOPIC, 0)]) == [
        Gap(TOPIC, "old", 0, 25, 29, DISCARDED_TOPIC_RECREATED)
    ]


def test_verify_lists_discarded_gaps_in_words_apart_from_expired_ones(tmp_path: Path) -> None:
    store = _recreated_lake(tmp_path)
    BatchWriter(store).handle().record_recreation_gaps({TOPIC: "new"}, [(TOPIC, 0)], worker="next")
    record_gap(store, Gap(TOPIC, "new", 0, 10, 11, EXPIRED_BEFORE_INGEST), worker="w")

    report = check_accounting(store, committed={(TOPIC, 0): 12}, topic_ids={TOPIC: "new"})

    assert report.ok, [str(v) for v in report.violations]
    assert report.gap_offsets == {DISCARDED_TOPIC_RECREATED: 40, EXPIRED_BEFORE_INGEST: 2}
    (discarded,) = report.gaps[DISCARDED_TOPIC_RECREATED]
    assert discarded.startswith(f"{TOPIC}[0] offsets 20..59 (40): discarded, topic recreated")
    assert "deleted and created again" in discarded
    assert "(cause discarded_topic_recreated, topic id old)" in discarded
    (expired,) = report.gaps[EXPIRED_BEFORE_INGEST]
    assert f"{TOPIC}[0] offsets 10..11 (2): expired before ingest" in expired
    assert sorted(report.expired) == sorted([discarded, expired])


def test_ops_status_alerts_and_metrics_count_discarded_offsets_apart(tmp_path: Path) -> None:
    store = _recreated_lake(tmp_path)
    record_gap(store, Gap(TOPIC, "new", 0, 10, 11, EXPIRED_BEFORE_INGEST), worker="w")

    events = offset_events(store, datetime.now(UTC) - timedelta(days=7))

    assert events["gaps_total"] == 2
    assert events["offsets_expired_total"] == 2
    assert events["offsets_discarded_total"] == 30
    assert events["gaps_by_cause"] == {
        EXPIRED_BEFORE_INGEST: 1,
        "beyond_log_end": 0,
        "deleted_at_corrupt_batch": 0,
        DISCARDED_TOPIC_RECREATED: 1,
    }
    alerts = {a["alert"]: a["detail"] for a in _offset_alerts(events)}
    discarded = alerts["offsets_discarded_topic_recreated"]
    assert f"{TOPIC}[0] offsets 30..59 of topic id old" in discarded
    assert "deleted and created again" in discarded
    assert "offsets_expired_before_ingest" in alerts

    metrics = WorkerMetrics()
    metrics.set_offset_events(events)
    sample = metrics.registry.get_sample_value
    assert sample("maxlake_offset_gaps", {"cause": DISCARDED_TOPIC_RECREATED}) == 1
    assert sample("maxlake_offset_gaps", {"cause": EXPIRED_BEFORE_INGEST}) == 1
    assert sample("maxlake_offset_gaps", {"cause": "beyond_log_end"}) == 0
    assert sample("maxlake_offsets_expired_before_ingest") == 2
    assert sample("maxlake_offsets_discarded_topic_recreated") == 30


def test_overlapping_gap_rows_count_each_offset_once_everywhere(tmp_path: Path) -> None:
    """Two workers recorded the same loss with different bounds (10-19 and 15-24), and a
    third an adjacent one (25-26): verify merged them into 10..26, but ops status, its alerts
    and the metrics added the rows up (32 offsets, 3 gaps)."""
    payloads = [e.payload for e in telemetry(10)]
    pipeline(tmp_path).process("telemetry", _tagged(payloads, "new"))
    store = DeltaStore(tmp_path)
    for worker, first, last in (("a", 10, 19), ("b", 15, 24), ("c", 25, 26)):
        record_gap(store, Gap(TOPIC, "new", 0, first, last, EXPIRED_BEFORE_INGEST), worker=worker)

    report = check_accounting(store, committed={(TOPIC, 0): 27}, topic_ids={TOPIC: "new"})
    assert report.ok, [str(v) for v in report.violations]
    assert report.gap_offsets == {EXPIRED_BEFORE_INGEST: 17}

    events = offset_events(store, datetime.now(UTC) - timedelta(days=7))
    assert events["offsets_expired_total"] == 17
    assert events["gaps_total"] == 1
    assert events["gaps_by_cause"][EXPIRED_BEFORE_INGEST] == 1
    assert [(g["from_offset"], g["to_offset"], g["offsets"]) for g in events["gaps"]] == [
        (10, 26, 17)
    ]
    (alert,) = [a for a in _offset_alerts(events) if "expired" in a["alert"]]
    assert f"{TOPIC}[0] offsets 10..26 (17 offsets)" in alert["detail"]
    metrics = WorkerMetrics()
    metrics.set_offset_events(events)
    assert metrics.registry.get_sample_value("maxlake_offsets_expired_before_ingest") == 17
    assert (
        metrics.registry.get_sample_value("maxlake_offset_gaps", {"cause": EXPIRED_BEFORE_INGEST})
        == 1
    )


def test_a_gap_recorded_without_a_topic_id_is_counted_and_shown(tmp_path: Path) -> None:
    """A gap of a lineage with no topic id (an old broker, an old row) is shown by ops status
    and the metrics, not a crash of both (a null key matched no row when it was dated)."""
    store = DeltaStore(tmp_path)
    record_gap(store, Gap(TOPIC, None, 0, 10, 11, EXPIRED_BEFORE_INGEST), worker="w")
    events = offset_events(store, datetime.now(UTC) - timedelta(days=7))
    assert events["offsets_expired_total"] == 2
    assert [(g["from_offset"], g["to_offset"]) for g in events["gaps"]] == [(10, 11)]
