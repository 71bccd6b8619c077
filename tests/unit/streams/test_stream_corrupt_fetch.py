"""The stream engine's stop on a corrupt fetch names the partition and the corrupt batch's
offset, which aiokafka's ``CorruptRecordException`` does not (the stop itself runs against a
real broker in tests/integration/test_corrupt_fetch_stream.py). Fed with real record batches,
read by aiokafka's own fetcher as Faust's consumer reads them (no RAW key deserializer)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.structs import TopicPartition

from streams.faust_app import CorruptFetchStopped, corrupt_partition
from tests.unit.streams.test_corrupt_fetch import READ_COMMITTED, _damaged, _State
from tests.unit.streams.test_record_blocks import batch, values

GOOD_TP, BAD_TP = (
    TopicPartition("plant.acme.telemetry", 0),
    TopicPartition("plant.acme.telemetry", 1),
)


def _result(tp: TopicPartition, data: bytes, state: _State) -> Any:
    assignment = SimpleNamespace(active=True, state_value=lambda _: state)
    parsed = fetcher.PartitionRecords(
        tp, fetcher.MemoryRecords(data), [], state.position, None, None, True, READ_COMMITTED
    )
    return fetcher.FetchResult(tp, assignment=assignment, partition_records=parsed, backoff=0)


def test_the_corrupt_partition_and_its_batch_offset_are_named() -> None:
    """Batches 0-5 intact, 6-35 damaged, in one fetch starting at 0; another partition's
    fetch is intact. aiokafka raises without saying where."""
    data = batch(0, values(6)) + _damaged(batch(6, values(30, 6)))
    fake = SimpleNamespace(
        _subscriptions=SimpleNamespace(reassignment_in_progress=False),
        _records={
            GOOD_TP: _result(GOOD_TP, batch(0, values(4)), _State()),
            BAD_TP: _result(BAD_TP, data, _State()),
        },
        _notify=lambda future: None,
        _wait_consume_future=None,
    )
    with pytest.raises(CorruptRecordException):
        asyncio.run(fetcher.Fetcher.fetched_records(fake, [], timeout=0, max_records=None))
    tp, offset = corrupt_partition(SimpleNamespace(_fetcher=fake))
    assert (tp, offset) == (BAD_TP, 6)
    stop = str(CorruptFetchStopped(tp, offset, "Invalid CRC"))
    assert stop.startswith("plant.acme.telemetry[1] offset 6: the fetched record batch is corrupt")
    assert "Nothing at or past offset 6 is in the lake or committed" in stop
    assert "MAXLAKE_INGEST_ENGINE=batch" in stop
    assert "docs/OPERATIONS.md, 'A corrupt record batch'" in stop


def test_an_exception_not_found_in_the_fetcher_still_stops_with_what_is_known() -> None:
    fake = SimpleNamespace(_records={})
    assert corrupt_partition(SimpleNamespace(_fetcher=fake)) == (None, None)
    assert str(CorruptFetchStopped(None, None, "Invalid CRC")).startswith(
        "a partition: the fetched record batch is corrupt (Invalid CRC)"
    )
