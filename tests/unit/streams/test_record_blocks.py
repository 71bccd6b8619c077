"""The native record-batch decoder hands a RAW consumer exactly what aiokafka's own parser
hands any other consumer: the same records, the same positions, the same skipped batches."""

from __future__ import annotations

import gc
import struct
import weakref
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import maxlake_native
import numpy as np
import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record._crc32c import crc as crc32c
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from streams.kafka_records import RAW, CorruptFetch, RecordBlock, install

READ_UNCOMMITTED, READ_COMMITTED = 0, 1
NONE, GZIP, LZ4 = 0, 1, 3
TP = TopicPartition("plant.acme.snapshot", 3)
T0 = 1_700_000_000_000

Record = tuple[int, int, bytes | None, bytes | None]


def batch(
    base: int,
    records: Sequence[tuple[int, bytes | None, bytes | None]],
    *,
    codec: int = NONE,
    producer_id: int = -1,
    transactional: bool = False,
    control: bool = False,
    last_offset_delta: int | None = None,
    log_append_time: int | None = None,
    headers: list[tuple[str, bytes | None]] | None = None,
) -> bytes:
    """A v2 record batch at ``base`` of ``(offset delta, key, value)`` records."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=int(transactional),
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=0 if producer_id >= 0 else -1,
        batch_size=1 << 22,
    )
    for delta, key, value in records:
        builder.append(delta, timestamp=T0 + 7 * delta, key=key, value=value, headers=headers or [])
    raw = bytearray(builder.build())
    struct.pack_into(">q", raw, 0, base)
    attributes = struct.unpack_from(">h", raw, 21)[0]
    if control:
        attributes |= 0x20
    if log_append_time is not None:
        attributes |= 0x08
        struct.pack_into(">q", raw, 35, log_append_time)
    struct.pack_into(">h", raw, 21, attributes)
    if last_offset_delta is not None:
        struct.pack_into(">i", raw, 23, last_offset_delta)
    return refresh_crc(raw)


def refresh_crc(raw: bytearray) -> bytes:
    struct.pack_into(">I", raw, 17, crc32c(bytes(raw[21:])))
    return bytes(raw)


def marker(base: int, producer_id: int, *, abort: bool) -> bytes:
    """A transaction marker (control batch) of ``producer_id``."""
    key = struct.pack(">hh", 0, 0 if abort else 1)
    return batch(
        base,
        [(0, key, b"\x00\x00\x00\x00\x00\x00")],
        producer_id=producer_id,
        transactional=True,
        control=True,
    )


def aiokafka_reads(
    data: bytes,
    fetch_offset: int,
    aborted: list[tuple[int, int]] | None = None,
    isolation: int = READ_COMMITTED,
) -> tuple[list[Record], int]:
    """What aiokafka's own parser hands a consumer, and its position after."""
    parsed = fetcher.PartitionRecords.__mro__[-2](  # aiokafka's class, whether installed or not
        TP, MemoryRecords(data), aborted, fetch_offset, None, None, True, isolation
    )
    got = [(r.offset, r.timestamp, r.key, r.value) for r in parsed]
    return got, parsed.next_fetch_offset


def native_reads(
    data: bytes,
    fetch_offset: int,
    aborted: list[tuple[int, int]] | None = None,
    isolation: int = READ_COMMITTED,
    max_records: int | None = None,
) -> tuple[list[Record], int]:
    """What a RAW consumer gets from the same fetch, block by block of ``max_records``."""
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(data), aborted, fetch_offset, RAW, None, True, isolation
    )
    got: list[Record] = []
    while True:
        block, used_up = parsed.take(max_records)
        got += rows(block)
        if used_up:
            return got, parsed.next_fetch_offset


def rows(block: RecordBlock) -> list[Record]:
    return [
        (int(o), int(t), block.keys[i], block.values[i])
        for i, (o, t) in enumerate(zip(block.offsets, block.timestamps, strict=True))
    ]


def values(n: int, start: int = 0) -> list[tuple[int, bytes | None, bytes | None]]:
    return [
        (i, b"m%d" % (i % 5), b'{"i": %d, "pad": "%s"}' % (start + i, b"x" * i)) for i in range(n)
    ]


def test_the_parser_that_runs_is_the_native_one() -> None:
    install()
    assert hasattr(maxlake_native, "decode_records")
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(batch(0, values(3))), [], 0, RAW, None, True, READ_COMMITTED
    )
    parsed._records_iterator = None  # the aiokafka path is not taken
    block, _ = parsed.take(None)
    assert list(block.offsets) == [0, 1, 2]


@pytest.mark.parametrize("codec", [NONE, LZ4, GZIP], ids=["none", "lz4", "gzip-via-aiokafka"])
@pytest.mark.parametrize("fetch_offset", [0, 1, 40, 45, 164])
def test_plain_and_compressed_batches_read_as_aiokafka_reads_them(
    codec: int, fetch_offset: int
) -> None:
    # The broker returns batches from the one holding the fetch offset on.
    first = batch(0, values(45), codec=codec) if fetch_offset < 45 else b""
    data = first + batch(45, values(120, 45), codec=codec)
    expected = aiokafka_reads(data, fetch_offset)
    assert native_reads(data, fetch_offset) == expected
    assert len(expected[0]) == max(0, 165 - fetch_offset)


def test_tombstones_null_keys_and_headers() -> None:
    records = [(0, None, b"a"), (1, b"k", None), (2, None, None), (3, b"", b"")]
    for codec in (NONE, LZ4):
        data = batch(9, records, codec=codec, headers=[("trace", b"t"), ("empty", None)])
        got = native_reads(data, 9)
        assert got == aiokafka_reads(data, 9)
        assert [r[2:] for r in got[0]] == [(None, b"a"), (b"k", None), (None, None), (b"", b"")]


def test_log_append_time_stamps_every_record_with_the_batch_time() -> None:
    data = batch(0, values(4), log_append_time=T0 + 999)
    got = native_reads(data, 0)
    assert got == aiokafka_reads(data, 0)
    assert {t for _, t, _, _ in got[0]} == {T0 + 999}


def test_a_compacted_batch_moves_the_position_past_its_last_offset() -> None:
    gappy = [(0, b"a", b"1"), (3, b"b", b"2"), (4, b"c", b"3")]
    data = batch(100, gappy, last_offset_delta=9) + batch(110, values(2))
    assert native_reads(data, 100) == aiokafka_reads(data, 100)
    only = batch(100, gappy, last_offset_delta=9)
    assert (
        native_reads(only, 100)
        == aiokafka_reads(only, 100)
        == (
            [(100, T0, b"a", b"1"), (103, T0 + 21, b"b", b"2"), (104, T0 + 28, b"c", b"3")],
            110,
        )
    )


def test_aborted_transactions_and_markers_are_skipped_with_read_committed() -> None:
    # producer 7 commits 10-12, producer 8 aborts 13-14, producer 7 aborts 17-18; plain 21-22.
    data = (
        batch(10, values(3), producer_id=7, transactional=True, codec=LZ4)
        + batch(13, values(2), producer_id=8, transactional=True)
        + marker(15, 7, abort=False)
        + marker(16, 8, abort=True)
        + batch(17, values(2), producer_id=7, transactional=True, codec=LZ4)
        + marker(19, 7, abort=True)
        + marker(20, 9, abort=True)  # an abort marker of a producer with nothing fetched
        + batch(21, values(2))
    )
    aborted = [(7, 17), (8, 13)]
    got = native_reads(data, 10, aborted)
    assert got == aiokafka_reads(data, 10, aborted)
    assert [r[0] for r in got[0]] == [10, 11, 12, 21, 22]
    uncommitted = native_reads(data, 10, aborted, READ_UNCOMMITTED)
    assert uncommitted == aiokafka_reads(data, 10, aborted, READ_UNCOMMITTED)
    assert [r[0] for r in uncommitted[0]] == [10, 11, 12, 13, 14, 17, 18, 21, 22]


def test_a_fetch_of_markers_only_moves_the_position() -> None:
    data = batch(5, values(2), producer_id=4, transactional=True) + marker(7, 4, abort=True)
    assert native_reads(data, 5, [(4, 5)]) == aiokafka_reads(data, 5, [(4, 5)]) == ([], 8)


@pytest.mark.parametrize("max_records", [1, 7, 44, 45, 46, 164, 165])
def test_max_records_splits_a_fetch_where_aiokafka_would(max_records: int) -> None:
    data = batch(0, values(45), codec=LZ4) + batch(45, values(120, 45)) + marker(165, 3, abort=True)
    expected = aiokafka_reads(data, 0)
    assert native_reads(data, 0, max_records=max_records) == expected
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(data), [], 0, RAW, None, True, READ_COMMITTED
    )
    block, used_up = parsed.take(max_records)
    assert len(block) == min(max_records, 165)
    # Iterating aiokafka's records stops right after the last one taken.
    if max_records <= 165:
        assert not used_up
        assert parsed.next_fetch_offset == int(block.offsets[-1]) + 1


def test_a_batch_cut_short_by_the_fetch_size_is_left_for_the_next_fetch() -> None:
    data = batch(0, values(10)) + batch(10, values(10), codec=LZ4)
    cut = data[:-7]
    assert native_reads(cut, 0) == aiokafka_reads(cut, 0)
    assert native_reads(cut, 0)[1] == 10


def test_a_used_up_fetch_is_freed_without_the_cyclic_collector() -> None:
    """The worker runs the cyclic collector seldom (gc thresholds 50,000): a fetch kept alive
    by a reference cycle until then held its bytes resident (1.3 GiB peak in a bench run)."""
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(GOOD), [], 0, RAW, None, True, READ_COMMITTED
    )
    block, used_up = parsed.take(None)
    assert used_up
    assert len(block) == 36
    gone = weakref.ref(parsed)
    gc.disable()
    try:
        del parsed
        assert gone() is None
    finally:
        gc.enable()


def test_record_blocks_slice_concatenate_and_skip_offsets() -> None:
    data = batch(0, [(0, None, b"a"), (1, b"k", None), (2, b"k2", b"ccc")])
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(data), [], 0, RAW, None, True, READ_COMMITTED
    )
    block, _ = parsed.take(None)
    joined = RecordBlock.concat([block[2:], block[:2], block.from_offset(1)])
    assert list(joined.offsets) == [2, 0, 1, 1, 2]
    assert joined.values.items() == (b"ccc", b"a", None, None, b"ccc")
    assert joined.keys.items() == (b"k2", None, b"k", b"k", b"k2")
    assert len(block.from_offset(3)) == 0
    assert np.array_equal(
        RecordBlock.of_records(
            [type("R", (), {"offset": 4, "timestamp": 5, "key": None, "value": b"v"})()]
        ).offsets,
        [4],
    )


# --- hostile bytes ---------------------------------------------------------------------------

GOOD = batch(0, values(6)) + batch(6, values(30, 6), codec=LZ4)


def decode(data: bytes, check_crcs: bool = True) -> Any:
    return maxlake_native.decode_records(data, 0, [], True, check_crcs)


def test_a_bad_crc_is_refused_naming_the_batch() -> None:
    raw = bytearray(GOOD)
    raw[-3] ^= 0xFF
    with pytest.raises(maxlake_native.CorruptRecords, match="invalid CRC") as err:
        decode(bytes(raw))
    assert err.value.args[0] == 6
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(bytes(raw[len(batch(0, values(6))) :])), [], 6, RAW, None, True,
        READ_COMMITTED,
    )  # fmt: skip
    with pytest.raises(CorruptRecordException, match=r"snapshot\[3\].*offset 6.*CRC"):
        parsed.take(None)
    assert parsed.next_fetch_offset == 6  # nothing consumed


def test_the_intact_batches_before_a_corrupt_one_are_read() -> None:
    raw = bytearray(GOOD)
    raw[-3] ^= 0xFF
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(bytes(raw)), [], 0, RAW, None, True, READ_COMMITTED
    )
    block, used_up = parsed.take(None)
    assert (block.offsets.tolist(), used_up) == (list(range(6)), True)
    assert parsed.next_fetch_offset == 6  # the next fetch starts at the corrupt batch


def test_a_corrupt_fetch_is_handed_over_once_then_fetched_again_from_the_same_position() -> None:
    raw = bytearray(GOOD)
    raw[-3] ^= 0xFF
    install()
    state = SimpleNamespace(position=6, paused=False, consumed_to=None)
    state.consumed_to = lambda offset: setattr(state, "position", offset)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: state)
    corrupt_only = bytes(raw[len(batch(0, values(6))) :])
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(corrupt_only), [], 6, RAW, None, True, READ_COMMITTED
    )
    result = fetcher.FetchResult(TP, assignment=assignment, partition_records=parsed, backoff=0)
    corrupt = result.getall(100)
    assert isinstance(corrupt, CorruptFetch)
    assert corrupt.offset == 6
    assert len(corrupt) == 0
    assert corrupt
    assert state.position == 6
    assert not result.has_more()  # the fetcher drops it and fetches the partition again
    good: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(GOOD), [], 0, RAW, None, True, READ_COMMITTED
    )
    state.position = 0
    result = fetcher.FetchResult(TP, assignment=assignment, partition_records=good, backoff=0)
    assert result.getall(10).offsets.tolist() == list(range(10))
    assert state.position == 10
    assert len(result.getall(100)) == 26
    assert state.position == 36
    assert not result.has_more()


def test_lz4_garbage_is_refused() -> None:
    raw = bytearray(GOOD)
    start = len(batch(0, values(6))) + 61
    raw[start + 8 : start + 40] = b"\x01" * 32
    with pytest.raises(maxlake_native.CorruptRecords, match="LZ4"):
        decode(
            refresh_crc(bytearray(raw[: len(batch(0, values(6)))]))
            + refresh_crc(bytearray(raw[len(batch(0, values(6))) :]))
        )


@pytest.mark.parametrize("position", range(61, len(batch(0, values(6))), 3))
def test_every_corrupted_record_byte_is_refused_or_read_in_bounds(position: int) -> None:
    """Any byte of the records section flipped: a clear error or records that stay within the
    bytes (no panic, no read out of bounds)."""
    first = bytearray(batch(0, values(6)))
    refused_at = set()
    for flip in (0xFF, 0x80, 0x01):
        raw = bytearray(first)
        raw[position] ^= flip
        try:
            decode(refresh_crc(raw))
        except maxlake_native.CorruptRecords as exc:
            refused_at.add(exc.args[0])
    assert refused_at <= {0}


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b[:8] + struct.pack(">i", -5) + b[12:], "negative batch length"),
        (lambda b: b[:8] + struct.pack(">i", 3) + b[12:], "too short"),
        (lambda b: b[:8] + struct.pack(">i", 40) + b[12:52], "shorter than its header"),
        (lambda b: refresh_crc(bytearray(b[:57] + struct.pack(">i", 5) + b[61:])), "unconsumed"),
        (
            lambda b: refresh_crc(bytearray(b[:57] + struct.pack(">i", 2**31 - 1) + b[61:])),
            "record 6",
        ),
        (lambda b: refresh_crc(bytearray(b[:57] + struct.pack(">i", -1) + b[61:])), "negative"),
        (lambda b: refresh_crc(bytearray(b[:61] + b"\xff" * 12 + b[73:])), "varint"),
    ],
    ids=[
        "negative-length",
        "tiny-length",
        "short-header",
        "count-low",
        "count-high",
        "count-negative",
        "long-varint",
    ],
)
def test_hostile_headers_are_refused(mutate: Any, match: str) -> None:
    data = mutate(batch(0, values(6)))
    with pytest.raises(maxlake_native.CorruptRecords, match=match):
        decode(data, check_crcs=False)


def test_a_record_length_past_the_end_is_refused() -> None:
    raw = bytearray(batch(0, [(0, b"k", b"v" * 40)]))
    # The value length varint (zigzag 40 -> 80) becomes 63 * 2 = 126: past the records' end.
    at = raw.index(bytes([80]) + b"v" * 40)
    raw[at] = 126
    with pytest.raises(maxlake_native.CorruptRecords, match="past the end"):
        decode(refresh_crc(raw))


def test_other_codecs_and_formats_are_left_to_aiokafka() -> None:
    with pytest.raises(maxlake_native.UnsupportedRecords, match="codec 1"):
        decode(batch(0, values(3), codec=GZIP))
    raw = bytearray(batch(0, values(3)))
    raw[16] = 1
    with pytest.raises(maxlake_native.UnsupportedRecords, match="magic"):
        decode(bytes(raw))


def test_a_record_without_a_timestamp_gets_kafka_s_no_timestamp() -> None:
    """Message format v0 has no timestamp: aiokafka gives None; the block keeps Kafka's -1
    (it raised TypeError, stopping the engine); quarantine rows show -1 as null."""
    records = [SimpleNamespace(offset=7, timestamp=None, key=None, value=b"{")]
    block = RecordBlock.of_records(records)
    assert block.timestamps.tolist() == [-1]


@pytest.mark.parametrize("first_take", [4, 8])
def test_records_left_in_a_fetch_do_not_hold_the_buffer_of_those_taken(first_take: int) -> None:
    """A batch that takes part of a fetch holds the only reference to the part's decoded
    buffer: the rest waits in one of its own (otherwise the batch engine's early release of a
    prepared batch's records freed nothing while the next batch's records sat in the same
    buffer), and the records read are exactly aiokafka's."""
    data = batch(40, [(0, None, None), *values(11)[1:]])
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(data), [], 40, RAW, None, True, READ_COMMITTED
    )
    first, used_up = parsed.take(first_take)  # less than the rest (4 of 11), or more (8)
    assert not used_up
    taken = [np.frombuffer(first.keys.data, np.uint8), np.frombuffer(first.values.data, np.uint8)]
    left = parsed._block
    for buffer in (left.keys.data, left.values.data):
        assert not any(np.shares_memory(t, np.frombuffer(buffer, np.uint8)) for t in taken)
    second, _ = parsed.take(2)
    third, used_up = parsed.take(None)
    assert used_up
    got = rows(first) + rows(second) + rows(third)
    assert (got, parsed.next_fetch_offset) == aiokafka_reads(data, 40)
    assert got[0][2:] == (None, None)


def test_small_takes_copy_each_record_about_once_not_the_rest_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Taking a fetch a few records at a time (a small MAXLAKE_BATCH_MAX_EVENTS) copies the
    smaller side at each take, not the whole rest of the fetch: the records copied stay near
    the fetch's own count instead of growing with its square."""
    copied: list[int] = []
    compact = RecordBlock.compact

    def counting(self: RecordBlock) -> RecordBlock:
        copied.append(len(self))
        return compact(self)

    monkeypatch.setattr(RecordBlock, "compact", counting)
    data = batch(0, values(400))
    install()
    parsed: Any = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(data), [], 0, RAW, None, True, READ_COMMITTED
    )
    got: list[Record] = []
    used_up = False
    while not used_up:
        block, used_up = parsed.take(3)
        got += rows(block)
    assert (got, parsed.next_fetch_offset) == aiokafka_reads(data, 0)
    assert sum(copied) <= 400  # the rest copied at each take: ~27,000
