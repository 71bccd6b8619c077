"""A corrupt Kafka fetch neither stops the worker nor is skipped: the partition alone is paused
and fetched again from the same offset with backoff; when every attempt is corrupt it stays
paused at that offset, shown in the worker's state file, ``maxlake status`` and ``/metrics``,
while the other partitions go on. Fed with real record batches whose bytes were damaged."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import RecordTooLargeError
from aiokafka.structs import TopicPartition

from maxlake.settings import Settings
from schemas import EventKind
from streams.batch_engine import BatchEngine
from streams.kafka_batch_heads import batch_bounds
from streams.kafka_records import RAW, CorruptFetch, RecordBlock, install
from streams.metrics import WorkerMetrics
from streams.status import Thresholds, _alerts
from streams.write_block import WriteBlock, read_worker_states
from tests.unit.streams.test_record_blocks import GZIP, LZ4, batch, values

READ_COMMITTED = 1
GOOD_TP, BAD_TP = (
    TopicPartition("plant.acme.telemetry", 0),
    TopicPartition("plant.acme.telemetry", 1),
)


def _damaged(data: bytes) -> bytes:
    raw = bytearray(data)
    raw[-3] ^= 0xFF  # a flipped bit in the last record: the batch's CRC no longer holds
    return bytes(raw)


class _State:
    def __init__(self, position: int = 0) -> None:
        self.position = position
        self.paused = False

    def consumed_to(self, offset: int) -> None:
        self.position = offset


def _fetch_result(tp: TopicPartition, data: bytes, state: _State) -> Any:
    install()
    assignment = SimpleNamespace(active=True, state_value=lambda _: state)
    parsed = fetcher.PartitionRecords(
        tp, fetcher.MemoryRecords(data), [], state.position, RAW, None, True, READ_COMMITTED
    )
    return fetcher.FetchResult(tp, assignment=assignment, partition_records=parsed, backoff=0)


def _getmany(results: dict[TopicPartition, Any]) -> dict[TopicPartition, RecordBlock]:
    """aiokafka's own ``Fetcher.fetched_records`` (what ``getmany`` returns) over ``results``."""
    fake = SimpleNamespace(
        _subscriptions=SimpleNamespace(reassignment_in_progress=False),
        _records=dict(results),
        _notify=lambda future: None,
        _wait_consume_future=None,
    )
    got: dict[TopicPartition, RecordBlock] = asyncio.run(
        fetcher.Fetcher.fetched_records(fake, [], timeout=0, max_records=None)
    )
    return got


def test_a_corrupt_partition_does_not_lose_what_getmany_took_from_the_others() -> None:
    """On main the CorruptRecordException escaped getmany: the records already taken from
    the good partition in the same call were dropped although its position had moved."""
    good, bad = _State(), _State()
    fetched = _getmany(
        {
            GOOD_TP: _fetch_result(GOOD_TP, batch(0, values(4)), good),
            BAD_TP: _fetch_result(BAD_TP, _damaged(batch(0, values(5), codec=LZ4)), bad),
        }
    )
    assert fetched[GOOD_TP].offsets.tolist() == [0, 1, 2, 3]
    assert good.position == 4
    corrupt = fetched[BAD_TP]
    assert isinstance(corrupt, CorruptFetch)
    assert (corrupt.offset, len(corrupt)) == (0, 0)
    assert corrupt.reason.startswith("the fetched record batch at offset 0 is corrupt")
    assert "CRC" in corrupt.reason
    assert bad.position == 0  # nothing of it consumed: fetched again from there


def test_the_intact_batches_before_a_corrupt_one_are_read_and_the_position_stops_at_it() -> None:
    state = _State()
    data = batch(0, values(6)) + _damaged(batch(6, values(30, 6), codec=LZ4))
    first = _getmany({BAD_TP: _fetch_result(BAD_TP, data, state)})[BAD_TP]
    assert first.offsets.tolist() == list(range(6))
    assert state.position == 6
    again = _getmany({BAD_TP: _fetch_result(BAD_TP, data[len(batch(0, values(6))) :], state)})
    corrupt = again[BAD_TP]
    assert isinstance(corrupt, CorruptFetch)
    assert corrupt.offset == 6
    assert state.position == 6


class _Consumer:
    def __init__(self, *tps: TopicPartition) -> None:
        self.assigned = set(tps)
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return 1_700_000_000_000

    def highwater(self, tp: TopicPartition) -> int:
        return 100


def _engine(tmp_path: Path, metrics: WorkerMetrics, **limits: Any) -> tuple[BatchEngine, _Consumer]:
    settings = Settings(lake_root=str(tmp_path / "lake"), **limits)
    block = WriteBlock("w-1", tmp_path / "workers", metrics=metrics)
    no_pipeline: Any = None  # never built: nothing is prepared or written here
    engine = BatchEngine(settings, {GOOD_TP.topic: EventKind.TELEMETRY}, no_pipeline, block)
    consumer = _Consumer(GOOD_TP, BAD_TP)
    engine.consumer = cast(Any, consumer)
    engine._ready = {GOOD_TP, BAD_TP}
    return engine, consumer


def _due(engine: BatchEngine) -> None:
    """The backoff of every held partition is over (no waiting in a unit test)."""
    for hold in engine.corrupt.holds.values():
        hold.retry_at = 0.0


def test_a_transient_corruption_is_fetched_again_and_the_partition_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = WorkerMetrics(process_collectors=False)
    engine, consumer = _engine(tmp_path, metrics)
    caplog.set_level(logging.WARNING, "streams.batch_corrupt")
    corrupt = CorruptFetch(6, "plant.acme.telemetry[1]: ... at offset 6 is corrupt (invalid CRC)")
    assert engine._take(BAD_TP, corrupt) == 0
    assert consumer.paused == {BAD_TP}  # this partition only
    assert "attempt 1 of 5" in caplog.text
    assert "again from offset 6 in 1.0 s" in caplog.text
    engine._resume()  # the write block resuming after a blocked lake leaves it paused
    assert consumer.paused == {BAD_TP}
    good = _getmany({GOOD_TP: _fetch_result(GOOD_TP, batch(0, values(3)), _State())})[GOOD_TP]
    assert engine._take(GOOD_TP, good) == 3  # the others go on
    labels = {"topic": BAD_TP.topic, "partition": "1"}
    assert metrics.registry.get_sample_value("maxlake_fetch_corrupt", labels) == 6
    engine.corrupt.resume_due(consumer, engine._ready)
    assert consumer.paused == {BAD_TP}  # not before its backoff is over
    _due(engine)
    engine.corrupt.resume_due(consumer, engine._ready)
    assert consumer.paused == set()
    intact = _getmany({BAD_TP: _fetch_result(BAD_TP, batch(6, values(2)), _State(6))})[BAD_TP]
    engine._next[BAD_TP] = 6
    assert engine._take(BAD_TP, intact) == 2
    assert engine.corrupt.holds == {}
    assert "fetched intact after 1 corrupt fetch(es)" in caplog.text
    assert metrics.registry.get_sample_value("maxlake_fetch_corrupt", labels) is None
    assert read_worker_states(tmp_path / "workers")[0]["corrupt_partitions"] == []


def test_a_corruption_on_every_attempt_holds_the_partition_and_raises_an_alert(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = WorkerMetrics(process_collectors=False)
    engine, consumer = _engine(tmp_path, metrics)
    caplog.set_level(logging.WARNING, "streams.batch_corrupt")
    reason = "plant.acme.telemetry[1]: the fetched record batch at offset 6 is corrupt (CRC)"
    waits = []
    for _ in range(engine.settings.corrupt_fetch_attempts):
        engine._take(BAD_TP, CorruptFetch(6, reason))
        hold = engine.corrupt.holds[BAD_TP]
        waits.append(round(hold.retry_at - time.monotonic()))
        _due(engine)
        engine.corrupt.resume_due(consumer, engine._ready)
    assert waits == [1, 2, 4, 8, 60]  # backoff, then a recheck every minute
    assert consumer.paused == set()  # resumed for the recheck ...
    engine._take(BAD_TP, CorruptFetch(6, reason))
    assert consumer.paused == {BAD_TP}  # ... and paused again: it is never skipped
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # one ERROR, not one per recheck
    message = errors[0].getMessage()
    assert "plant.acme.telemetry[1] offset 6" in message
    assert "restart the partition's leader" in message
    assert "maxlake topics delete-records plant.acme.telemetry 1 --before" in message
    state = read_worker_states(tmp_path / "workers")[0]
    (held,) = state["corrupt_partitions"]
    assert (held["topic"], held["partition"], held["offset"], held["held"]) == (
        BAD_TP.topic,
        1,
        6,
        True,
    )
    status = {
        "kafka": {"reachable": None},
        "quality": {},
        "local_workers": [state],
        "tables": [],
        "offsets": {},
    }
    (alert,) = _alerts(status, Thresholds)
    assert alert["alert"] == "corrupt_record_batch"
    assert "plant.acme.telemetry[1]: " in alert["detail"]
    assert "paused at offset 6" in alert["detail"]
    assert "next step" in alert["detail"]
    assert "OPERATIONS" in alert["detail"]
    labels = {"topic": BAD_TP.topic, "partition": "1"}
    assert metrics.registry.get_sample_value("maxlake_fetch_corrupt_attempts", labels) == 6


def test_a_revoked_partition_forgets_its_corrupt_fetch(tmp_path: Path) -> None:
    engine, _consumer = _engine(tmp_path, WorkerMetrics(process_collectors=False))
    engine._take(BAD_TP, CorruptFetch(6, "corrupt"))
    engine.drop_unfinished([BAD_TP])
    assert engine.corrupt.holds == {}
    assert engine.corrupt.paused() == set()


def test_records_deleted_past_a_held_batch_release_the_partition(tmp_path: Path) -> None:
    """The operator deleted the lost batch (kafka-delete-records): the position moves past it
    (the gap is recorded by the out-of-range path) and the alert goes away."""
    engine, _ = _engine(tmp_path, WorkerMetrics(process_collectors=False))
    engine._take(BAD_TP, CorruptFetch(6, "corrupt"))
    engine.corrupt.moved({BAD_TP: 6})
    assert BAD_TP in engine.corrupt.holds
    engine.corrupt.moved({BAD_TP: 9})
    assert engine.corrupt.holds == {}


class _TooLargeConsumer(_Consumer):
    """aiokafka's answer to a fetch whose first batch is longer than the bytes sent: it moved
    the position one past the offset and raises RecordTooLargeError from getmany, once."""

    def __init__(self, *tps: TopicPartition) -> None:
        super().__init__(*tps)
        self.positions = {BAD_TP: 7}
        self.raised = False

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        if not self.raised:
            self.raised = True
            raise RecordTooLargeError("... %s=%s ... %s", BAD_TP, 6, 4 << 20)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset


def test_a_batch_longer_than_its_fetch_is_a_corrupt_fetch_and_skips_no_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On main the RecordTooLargeError escaped the engine (a crash loop), and aiokafka had
    moved the position past offset 6: a worker going on from there would lose it."""
    metrics = WorkerMetrics(process_collectors=False)
    engine, _ = _engine(tmp_path, metrics)
    engine.settings = engine.settings.model_copy(update={"batch_wait_s": 0.05})
    consumer = _TooLargeConsumer(GOOD_TP, BAD_TP)
    engine.consumer = cast(Any, consumer)
    caplog.set_level(logging.WARNING, "streams.batch_corrupt")
    records = asyncio.run(engine._fill_batch(cast(Any, consumer)))
    assert records == {}
    assert consumer.positions[BAD_TP] == 6  # sought back: offset 6 is fetched again
    assert consumer.paused == {BAD_TP}
    hold = engine.corrupt.holds[BAD_TP]
    assert (hold.offset, hold.attempts) == (6, 1)
    assert "longer than the bytes the broker sent" in hold.reason
    assert "attempt 1 of 5" in caplog.text


class _SeekConsumer(_Consumer):
    def __init__(self, *tps: TopicPartition) -> None:
        super().__init__(*tps)
        self.positions: dict[TopicPartition, int] = {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset


def _seeking_engine(tmp_path: Path) -> tuple[BatchEngine, _SeekConsumer]:
    engine, _ = _engine(tmp_path, WorkerMetrics(process_collectors=False))
    consumer = _SeekConsumer(GOOD_TP, BAD_TP)
    engine.consumer = cast(Any, consumer)
    return engine, consumer


def test_the_retry_limits_are_the_worker_s_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MAXLAKE_CORRUPT_FETCH_*: 2 attempts 0.5 s apart, then a recheck every 10 s."""
    engine, consumer = _engine(
        tmp_path,
        WorkerMetrics(process_collectors=False),
        corrupt_fetch_attempts=2,
        corrupt_fetch_first_wait_s=0.5,
        corrupt_fetch_max_wait_s=0.5,
        corrupt_fetch_recheck_s=10.0,
    )
    caplog.set_level(logging.WARNING, "streams.batch_corrupt")
    waits = []
    for _ in range(3):
        engine._take(BAD_TP, CorruptFetch(6, "batch at offset 6 is corrupt (CRC)"))
        waits.append(round(engine.corrupt.holds[BAD_TP].retry_at - time.monotonic(), 1))
        _due(engine)
        engine.corrupt.resume_due(consumer, engine._ready)
    assert waits == [0.5, 10.0, 10.0]
    assert "attempt 1 of 2" in caplog.text
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "corrupt on all 2 fetches" in errors[0]
    assert "fetched again every 10 s" in errors[0]
    assert read_worker_states(tmp_path / "workers")[0]["corrupt_partitions"][0]["held"]


def test_a_hold_of_the_old_incarnation_ends_when_the_topic_is_created_again(
    tmp_path: Path,
) -> None:
    """A held partition sought to a recreated topic's start must not keep telling the operator
    to delete records up to the old incarnation's offset (they would be the new one's)."""
    engine, consumer = _seeking_engine(tmp_path)
    for _ in range(engine.settings.corrupt_fetch_attempts):
        engine._take(BAD_TP, CorruptFetch(1000, "batch at offset 1000 is corrupt (CRC)"))
        _due(engine)
        engine.corrupt.resume_due(consumer, engine._ready)
    engine._take(BAD_TP, CorruptFetch(1000, "corrupt"))
    assert engine.corrupt.holds[BAD_TP].held
    engine._move(BAD_TP, 0, commit=True)  # the lineage check's seek to the new start
    assert BAD_TP not in engine.corrupt.holds
    assert BAD_TP not in consumer.paused  # fetched from the new start
    new = _getmany({BAD_TP: _fetch_result(BAD_TP, batch(0, values(3)), _State(0))})[BAD_TP]
    assert engine._take(BAD_TP, new) == 3
    assert read_worker_states(tmp_path / "workers")[0]["corrupt_partitions"] == []


def test_a_partition_waiting_for_the_lake_is_not_resumed_by_a_corrupt_retry(
    tmp_path: Path,
) -> None:
    engine, consumer = _seeking_engine(tmp_path)
    engine._take(BAD_TP, CorruptFetch(1000, "corrupt"))
    engine._move(BAD_TP, None)  # waits for the lake, paused at the placeholder
    assert BAD_TP in consumer.paused
    _due(engine)
    engine.corrupt.resume_due(consumer, engine._ready)
    assert BAD_TP in consumer.paused


def _held(engine: BatchEngine, consumer: _Consumer, fetch: CorruptFetch) -> None:
    for _ in range(engine.settings.corrupt_fetch_attempts):
        engine._take(BAD_TP, fetch)
        _due(engine)
        engine.corrupt.resume_due(consumer, engine._ready)


def test_the_alert_names_the_offset_to_delete_records_up_to(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The remedy for a lost batch deletes the records below its last offset + 1: the ERROR,
    the worker's state and the alert name it, confirmed by two readings of the fetched bytes
    (the next batch's base offset and the damaged batch's header), and the command that shows
    what it would delete: without --yes, so that nothing is deleted before the operator
    checked it. On the previous code nothing maxlake printed gave that offset."""
    metrics = WorkerMetrics(process_collectors=False)
    engine, consumer = _engine(tmp_path, metrics)
    caplog.set_level(logging.ERROR, "streams.batch_corrupt")
    data = _damaged(batch(6, values(30, 6), codec=LZ4)) + batch(36, values(4, 36))
    fetch = _getmany({BAD_TP: _fetch_result(BAD_TP, data, _State(6))})[BAD_TP]
    assert isinstance(fetch, CorruptFetch)
    assert (fetch.offset, fetch.batch, fetch.end) == (6, 6, 36)
    _held(engine, consumer, fetch)
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    command = "`maxlake topics delete-records plant.acme.telemetry 1 --before 36` (a preview"
    assert command in error
    assert "--yes`" not in error
    assert "base offset 6, its last offset + 1 36" in error
    (held,) = read_worker_states(tmp_path / "workers")[0]["corrupt_partitions"]
    assert (held["batch_offset"], held["delete_before"]) == (6, 36)
    status = {
        "kafka": {"reachable": None},
        "quality": {},
        "local_workers": [read_worker_states(tmp_path / "workers")[0]],
        "tables": [],
        "offsets": {},
    }
    (alert,) = _alerts(status, Thresholds)
    assert command in alert["detail"]
    assert alert["detail"].count("damaged") == 1  # said once, not twice
    assert len(alert["detail"]) < 700


def _with_delta(data: bytes, delta: int) -> bytes:
    """``data`` (one v2 batch) with its header's last offset delta set to ``delta``."""
    return data[:23] + struct.pack(">i", delta) + data[27:]


@pytest.mark.parametrize("damaged_delta", [29, 30, 8_000, 16_777_215])
def test_an_end_the_fetched_bytes_do_not_confirm_is_not_given(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damaged_delta: int
) -> None:
    """The last offset delta lies inside what the CRC covers: in a batch whose CRC failed it may
    be the damaged byte. An end read from it alone (the batch last in the fetch), or one the next
    batch's base offset contradicts, would have the operator delete intact records past the
    batch; it is not given. (29: the true delta, but nothing confirms it.)"""
    bad = _damaged(_with_delta(batch(6, values(30, 6), codec=LZ4), damaged_delta))
    followed = damaged_delta != 29
    data = bad + batch(36, values(4, 36)) if followed else bad
    fetch = _getmany({BAD_TP: _fetch_result(BAD_TP, data, _State(6))})[BAD_TP]
    assert isinstance(fetch, CorruptFetch)
    assert (fetch.offset, fetch.batch, fetch.end) == (6, 6, None)
    engine, consumer = _engine(tmp_path, WorkerMetrics(process_collectors=False))
    caplog.set_level(logging.ERROR, "streams.batch_corrupt")
    _held(engine, consumer, fetch)
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "--before <its last offset + 1> (not confirmed" in error
    assert f"--before {6 + damaged_delta + 1}" not in error


def test_a_fetch_aiokafka_refused_names_no_batch(tmp_path: Path) -> None:
    """aiokafka refuses a whole fetch when any batch in it fails its CRC, without saying which:
    the batch at the fetch offset may be intact (6..35 here, the damaged one 36..39), so no
    base offset or end is named for it (the previous code named 6 and 36: deleting below 36
    would have removed 30 intact records)."""
    data = batch(6, values(30, 6), codec=GZIP) + _damaged(batch(36, values(4, 36), codec=GZIP))
    data += batch(40, values(4, 40), codec=GZIP)
    fetch = _getmany({BAD_TP: _fetch_result(BAD_TP, data, _State(6))})[BAD_TP]
    assert isinstance(fetch, CorruptFetch)
    assert (fetch.offset, fetch.batch, fetch.end) == (6, None, None)


def test_a_batch_whose_header_is_unreadable_says_so_instead_of_an_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, consumer = _engine(tmp_path, WorkerMetrics(process_collectors=False))
    caplog.set_level(logging.ERROR, "streams.batch_corrupt")
    _held(engine, consumer, CorruptFetch(6, "the fetched record batch at offset 6 is corrupt"))
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "--before <its last offset + 1> (not confirmed" in error
    assert (
        read_worker_states(tmp_path / "workers")[0]["corrupt_partitions"][0]["delete_before"]
        is None
    )


def test_the_batch_holding_an_offset_is_found_by_its_headers() -> None:
    first, second = batch(0, values(5)), batch(5, values(10, 5))
    data = first + second
    assert batch_bounds(data, 2) == (0, 5)  # the next batch's base offset, and its own delta
    assert batch_bounds(data, 7) == (5, None)  # the last: its header's delta alone is not enough
    assert batch_bounds(_with_delta(first, 3) + second, 2) == (0, None)  # the two disagree
    assert batch_bounds(data, 15) == (None, None)  # past the bytes
    assert batch_bounds(data[: len(first) + 12], 7) == (None, None)  # header cut short


@pytest.mark.parametrize("damaged_length", [0, 3])
def test_a_fetch_from_inside_a_batch_whose_length_is_damaged_names_the_batch_s_base(
    damaged_length: int,
) -> None:
    """The decoder names the fetch offset, not a base offset, when the first batch's length is
    too short to be a batch; from a position inside that batch (4 here, the batch 0..9), the
    bytes still show its base offset (0), not the position, and no end (the length is what
    broke)."""
    bad = batch(0, values(10))
    bad = bad[:8] + struct.pack(">i", damaged_length) + bad[12:]
    data = bad + batch(10, values(4, 10))
    fetch = _getmany({BAD_TP: _fetch_result(BAD_TP, data, _State(4))})[BAD_TP]
    assert isinstance(fetch, CorruptFetch)
    assert f"batch length {damaged_length} too short" in fetch.reason
    assert (fetch.offset, fetch.batch, fetch.end) == (4, 0, None)
