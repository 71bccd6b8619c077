"""PlantProducer's batching layer without a broker: key placement and hand-off order."""

from __future__ import annotations

import ctypes

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    TopicAuthorizationFailedError,
)
from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from kafka.partitioner.default import murmur2 as kafka_python_murmur2
from kafka.record.default_records import DefaultRecordBatch as KafkaPythonBatch

from streams._producer_kafka import (
    Batcher,
    ChunkState,
    Route,
    default_partition,
    is_rejection,
    use_fast_lz4,
)

# Kafka's own test vectors for Utils.murmur2 (clients/src/test/.../UtilsTest.java), as int32.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "java_hash"), sorted(JAVA_MURMUR2.items()))
def test_placement_uses_javas_murmur2(key: bytes, java_hash: int) -> None:
    for partitions in (1, 4, 7, 12):
        assert default_partition(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions


def test_placement_matches_kafka_python_for_machine_keys() -> None:
    keys = [f"cnc-{i}".encode() for i in range(500)] + [f"press-{i}.s3".encode() for i in range(50)]
    for partitions in (3, 4, 16):
        for key in keys:
            expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions
            assert default_partition(key, partitions) == expected
    assert ctypes.c_int32(kafka_python_murmur2(b"21")).value == JAVA_MURMUR2[b"21"]


def test_take_all_returns_each_partitions_records_in_send_order() -> None:
    batcher = Batcher(batch_size=3 * (10 + 24), linger_s=1.0)  # three 10-byte records a chunk
    route = Route("t", 4)
    batcher.routes["t"] = route
    keys = [b"m-0", b"m-1", b"m-2", b"m-3"]
    for i in range(40):
        batcher.add(route, keys[i % 4], b"%09d|" % i)
    batcher.add(route, None, b"unkeyed-1")
    # no link: every hand-off fails at once, so nothing is lost and all comes back
    assert batcher.chunks
    assert all(c.state is ChunkState.FAILED for c in batcher.chunks)
    taken = batcher.take_all()
    assert not batcher.routes
    assert not batcher.chunks
    assert batcher.unresolved == 0
    per_key: dict[bytes | None, list[bytes]] = {}
    for _topic, records, _chunk in taken:
        for key, value in records:
            per_key.setdefault(key, []).append(value)
    assert sum(len(v) for v in per_key.values()) == 41
    for values in per_key.values():
        assert values == sorted(values)
    assert per_key[None] == [b"unkeyed-1"]
    assert taken[-1][2] is None  # open batches come after every handed-off chunk


def test_only_broker_refusals_count_as_rejections() -> None:
    assert is_rejection(TopicAuthorizationFailedError("t"))
    assert is_rejection(MessageSizeTooLargeError())
    assert not is_rejection(KafkaTimeoutError())
    assert not is_rejection(KafkaConnectionError())
    assert not is_rejection(OutOfOrderSequenceNumber())
    assert not is_rejection(ConnectionError("link abandoned"))
    assert not is_rejection(None)


def test_fast_lz4_batches_stay_readable_by_both_clients() -> None:
    assert use_fast_lz4()  # False would mean aiokafka changed and lz4 is back to HC level 9
    builder = DefaultRecordBatchBuilder(2, AioBatch.CODEC_LZ4, 0, 7, 0, 0, 1 << 20)
    values = [
        b'{"event_id":"e%d","machine":"m-%d","value":%d.5}' % (i, i % 5, i) for i in range(500)
    ]
    for offset, value in enumerate(values):
        builder.append(offset, None, b"m-%d" % (offset % 5), value, [])
    buffer = bytes(builder.build())
    assert len(buffer) < sum(map(len, values)) / 2
    assert [r.value for r in AioBatch(buffer)] == values
    kafka_python = KafkaPythonBatch(buffer)
    assert kafka_python.validate_crc()
    assert [r.value for r in kafka_python] == values
