"""A ``key_deserializer=RAW`` consumer reads record blocks; other consumers are unchanged."""

from __future__ import annotations

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.errors import StreamsError
from streams.kafka_records import RAW, install

READ_COMMITTED = 1


def _fetched() -> MemoryRecords:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=3,  # lz4, as PlantProducer sends
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(3):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=b"k%d" % i, value=b"{}", headers=[])
    builder.append(3, timestamp=1_700_000_000_003, key=None, value=None, headers=[])
    return MemoryRecords(bytes(builder.build()))


def _records(key_deserializer: object) -> list[object]:
    install()
    install()  # idempotent
    tp = TopicPartition("t", 0)
    parsed = fetcher.PartitionRecords(
        tp, _fetched(), [], 1, key_deserializer, None, True, READ_COMMITTED
    )
    return list(parsed)


def test_a_raw_consumer_reads_blocks_not_records() -> None:
    with pytest.raises(StreamsError, match="getmany, not getone"):
        _records(RAW)


def test_other_consumers_still_get_consumer_records() -> None:
    records = _records(None)
    assert all(isinstance(r, ConsumerRecord) for r in records)
    assert [r.offset for r in records] == [1, 2, 3]  # type: ignore[attr-defined]
    assert records[0].topic == "t"  # type: ignore[attr-defined]
