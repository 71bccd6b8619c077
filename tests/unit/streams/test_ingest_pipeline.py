"""IngestPipeline without Kafka: dedupe across batches, partitions and restarts, crash replays
whose batches differ from the first attempt, and GX failures isolated by bisection."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lake import BatchWriter, DeltaStore
from lake.accounting import check_accounting
from quality import ValidationFailed, ValidationGateway, Verdict
from schemas import EventKind, load_registry
from streams.batch_rows import offsets_table
from streams.ingest import IngestPipeline
from streams.sightings import Sightings
from tests.unit.lake.batches import (
    TOPIC,
    Crash,
    CrashingStore,
    messages,
    pipeline,
    settings,
    telemetry,
    with_bad_input,
)


def _ok(root: Path, committed: dict[tuple[str, int], int]) -> None:
    report = check_accounting(DeltaStore(root), committed=committed)
    assert report.ok, [str(v) for v in report.violations]


def test_a_resend_in_a_later_batch_is_a_counted_duplicate(tmp_path: Path) -> None:
    payloads = [e.payload for e in telemetry(50)]
    worker = pipeline(tmp_path)
    worker.process("telemetry", messages(payloads))
    again = worker.process("telemetry", messages(payloads[:5], first_offset=50))
    assert (again.silver_events, again.duplicates) == (0, 5)
    _ok(tmp_path, {(TOPIC, 0): 55})


@pytest.mark.parametrize("partition", [0, 3])
def test_a_resend_after_a_restart_is_a_duplicate_on_any_partition(
    tmp_path: Path, partition: int
) -> None:
    payloads = [e.payload for e in telemetry(50)]
    pipeline(tmp_path).process("telemetry", messages(payloads))
    restarted = pipeline(tmp_path)
    first = 50 if partition == 0 else 0
    again = restarted.process(
        "telemetry", messages(payloads[10:13], partition=partition, first_offset=first)
    )
    assert (again.silver_events, again.duplicates) == (0, 3)
    _ok(tmp_path, {(TOPIC, 0): 50 + (3 if partition == 0 else 0), (TOPIC, partition): first + 3})


@pytest.mark.parametrize("crash_before", ["ops/duplicates", "silver/", "ops/validation_runs"])
def test_a_crash_replayed_partition_by_partition_keeps_cross_partition_resends_apart(
    tmp_path: Path, crash_before: str
) -> None:
    """The first attempt saw an event on partition 0 and its resend on partition 1 in one batch;
    the replay after the crash sees partition 1 first. The decisions already committed stand."""
    payloads = [e.payload for e in telemetry(40)]
    first_p0 = messages(payloads[:20], partition=0)
    resends_p1 = messages(payloads[:20], partition=1)
    crashing = BatchWriter(CrashingStore(tmp_path, crash_before))
    with pytest.raises(Crash):
        pipeline(tmp_path, crashing).process("telemetry", first_p0 + resends_p1)

    restarted = pipeline(tmp_path)
    restarted.process("telemetry", resends_p1)
    restarted.process("telemetry", first_p0)

    _ok(tmp_path, {(TOPIC, 0): 20, (TOPIC, 1): 20})
    report = check_accounting(DeltaStore(tmp_path))
    assert report.silver_events["telemetry"] == 20
    assert report.duplicates["telemetry"] == 20


def test_every_bad_class_is_quarantined_and_good_events_reach_silver(tmp_path: Path) -> None:
    events = with_bad_input(1500)
    result = pipeline(tmp_path).process("telemetry", messages([e.payload for e in events]))
    good = sum(1 for e in events if e.bad_class is None)
    resent = sum(1 for e in events if e.bad_class == "duplicate_resend")
    assert (result.silver_events, result.duplicates) == (good, resent)
    assert result.quarantined == len(events) - good - resent
    _ok(tmp_path, {(TOPIC, 0): len(events)})


class _PoisonSensitiveGateway(ValidationGateway):
    """A real gateway that, like a GX bug, raises on any batch holding the marked machine."""

    marked = "poison-machine"

    def validate(self, kind: EventKind | str, rows: pa.Table) -> Verdict:
        if pc.any(pc.equal(rows["machine"], self.marked)).as_py():
            raise ValidationFailed(str(kind), rows.num_rows, "simulated GX crash")
        return super().validate(kind, rows)


def test_a_message_gx_cannot_validate_is_isolated_and_quarantined(tmp_path: Path) -> None:
    events = telemetry(200)
    payloads = [e.payload for e in events]
    poison_at = 137
    payloads[poison_at] = re.sub(
        rb'"machine":"[^"]*"', b'"machine":"poison-machine"', payloads[poison_at], count=1
    )
    worker = IngestPipeline(
        settings(tmp_path),
        _PoisonSensitiveGateway(load_registry()),
        BatchWriter(DeltaStore(tmp_path)),
    )
    result = worker.process("telemetry", messages(payloads))

    assert (result.consumed, result.quarantined, result.silver_events) == (200, 1, 199)
    quarantine = DeltaStore(tmp_path).read(
        "quarantine/telemetry", columns=["kafka_offset", "reasons", "details"]
    )
    assert quarantine is not None
    rows = quarantine.to_pylist()
    assert rows[0]["kafka_offset"] == poison_at
    assert rows[0]["reasons"] == ["validation_error"]
    assert "simulated GX crash" in rows[0]["details"][0]
    _ok(tmp_path, {(TOPIC, 0): 200})


def test_a_tombstone_has_its_own_reason_apart_from_an_empty_payload(tmp_path: Path) -> None:
    good = messages([e.payload for e in telemetry(3)])
    batch = [*good, good[0]._replace(offset=3, value=None), good[0]._replace(offset=4, value=b"")]
    pipeline(tmp_path).process("telemetry", batch)

    quarantine = DeltaStore(tmp_path).read(
        "quarantine/telemetry", columns=["kafka_offset", "reasons"]
    )
    assert quarantine is not None
    rows = quarantine.sort_by("kafka_offset")
    assert rows.to_pylist() == [
        {"kafka_offset": 3, "reasons": ["tombstone"]},
        {"kafka_offset": 4, "reasons": ["empty"]},
    ]
    _ok(tmp_path, {(TOPIC, 0): 5})


def test_a_redelivered_batch_counts_warnings_of_new_offsets_only(tmp_path: Path) -> None:
    payloads = [_sent_late(e.payload) if i % 2 else e.payload for i, e in enumerate(telemetry(200))]
    worker = pipeline(tmp_path)
    worker.process("telemetry", messages(payloads[:100]))
    worker.process("telemetry", messages(payloads))  # offsets 0..99 again, then 100..199

    runs = DeltaStore(tmp_path).read("ops/validation_runs", columns=["warn_counts"])
    assert runs is not None
    counted = sum(c["count"] for row in runs["warn_counts"].to_pylist() for c in row)
    once = pipeline(tmp_path / "once")
    once.process("telemetry", messages(payloads))
    runs_once = DeltaStore(tmp_path / "once").read("ops/validation_runs", columns=["warn_counts"])
    assert runs_once is not None
    expected = sum(c["count"] for row in runs_once["warn_counts"].to_pylist() for c in row)
    assert expected > 0
    assert counted == expected


def _sent_late(payload: bytes) -> bytes:
    """The event sent two hours after its event time (a warning: ``sent_time_lag``)."""
    event = orjson.loads(payload)
    sent = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00")) + timedelta(hours=2)
    event["sent_time"] = sent.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps(event)


def test_decoding_in_chunks_gives_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large batches are decoded a chunk at a time (bounded temporaries); the rows, rejections
    and duplicates are those of decoding the batch whole, with a second topic in between."""
    import streams.ingest  # noqa: PLC0415 - the chunk size is patched

    events = with_bad_input(80)
    batch = messages([e.payload for e in events[:60]]) + messages(
        [e.payload for e in events[60:]], topic=TOPIC.replace("northwind", "southwind")
    )

    def outputs(root: Path) -> list[list[dict[str, object]]]:
        (out,) = pipeline(root).prepare("telemetry", batch)
        return [
            out.silver.drop_columns(["ingested_at"]).to_pylist(),
            out.quarantine.select(["kafka_topic", "kafka_offset", "reasons"]).to_pylist(),
            out.duplicates.select(["kafka_topic", "kafka_offset", "original_offset"]).to_pylist(),
        ]

    whole = outputs(tmp_path / "whole")
    monkeypatch.setattr(streams.ingest, "_DECODE_CHUNK", 7)
    chunked = outputs(tmp_path / "chunked")
    assert chunked == whole
    assert all(whole)


def test_a_committed_copy_outranks_an_earlier_sighting_and_a_batch_repeats_its_first(
    tmp_path: Path,
) -> None:
    worker = pipeline(tmp_path)
    seen = Sightings()
    seen.set("a", TOPIC, 0, 5)
    seen.set("d", TOPIC, 1, 3)
    seen.set("e", TOPIC, 0, 4)
    worker._seen["telemetry"] = seen
    ids = ["a", "a", "b", "c", "c", "d", "e", None, "f"]
    batch = messages([b"{}"] * len(ids), partition=1, first_offset=10)
    keep = np.array([True] * 8 + [False])
    decided = {0: False, 2: True}
    digests = np.zeros(len(ids), np.int64)  # contents unknown: every repeat is a resend
    found, conflicts = worker._dedupe(
        EventKind.TELEMETRY, offsets_table(batch), ids, keep, decided, digests
    )
    # 1 repeats the committed copy 0, not the older sighting of "a" on partition 0.
    assert found == {1: 10, 2: None, 4: 13, 5: 3, 6: None}
    assert conflicts == {}
    assert seen.get("c") == (TOPIC, 1, 13)
    assert "f" not in seen


def test_a_repeat_of_a_committed_copy_with_other_content_is_a_conflict(tmp_path: Path) -> None:
    worker = pipeline(tmp_path)
    ids: list[str | None] = ["a", "a", "b", "b"]
    batch = messages([b"{}"] * len(ids), partition=1, first_offset=10)
    keep = np.ones(len(ids), bool)
    digests = np.array([7, 8, 9, 9], np.int64)
    found, conflicts = worker._dedupe(
        EventKind.TELEMETRY, offsets_table(batch), ids, keep, {0: False}, digests
    )
    assert found == {3: 12}
    assert conflicts == {1: (TOPIC, 1, 10)}
