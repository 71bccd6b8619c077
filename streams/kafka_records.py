"""Fetched Kafka records as column blocks, without a Python object per record.

aiokafka parses a fetched record batch in C into one ``DefaultRecord`` per message, then wraps
each in an eleven-field ``ConsumerRecord``: at 50,000 records per batch that was the largest
cost of the batch engine's event loop. A consumer built with ``key_deserializer=RAW`` instead
gets one :class:`RecordBlock` per partition from ``getmany``: the offsets and timestamps as
int64 arrays and the keys and values as one contiguous buffer each with int64 offsets (Arrow's
``large_binary`` layout), decoded by ``maxlake_native.decode_records`` straight from the fetch
response's bytes with the GIL released (``native/src/record_batch.rs``). ``len()`` of a block is
its number of records, so ``max_records`` bounds records exactly as it does for lists.

The batch-level rules are aiokafka's own (``PartitionRecords._unpack_records``): with
``read_committed`` the batches of aborted transactions are skipped, control batches always are,
records below the fetch offset are skipped, and the position moves past skipped batches and past
a batch's last offset even when compaction removed its tail. Batches compressed with none or LZ4
(what maxlake's producers send) are decoded natively; gzip, snappy, zstd and the pre-0.11 message
formats are decoded by aiokafka (its per-record path) into the same blocks. A fetch whose bytes
are not valid record batches (bad CRC, lengths, varints, LZ4 frame) does not raise out of
``getmany`` (that dropped the records it had already taken from other partitions, whose
positions had moved): the intact batches before the corrupt one are returned as usual, and
the next call returns a :class:`CorruptFetch` for the partition, an empty block naming the
offset and what is wrong, with the position left at the corrupt batch; fetching the partition
again re-reads it from there (the batch engine pauses it and retries with backoff,
:mod:`streams.batch_corrupt`).

Every other consumer in the process (Faust's) is unaffected. This is the one module that reaches
into aiokafka's fetcher; :func:`install` checks the internals it relies on and fails loudly if
they moved.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import CorruptRecordException

from maxlake import native_parser
from streams.errors import StreamsError
from streams.kafka_batch_heads import batch_bounds, intact_prefix

__all__ = [
    "RAW",
    "Binaries",
    "CorruptFetch",
    "RecordBlock",
    "RecordBlocks",
    "install",
]

logger = logging.getLogger(__name__)

_native: Any = native_parser.module
if _native is not None and not hasattr(_native, "binary_items"):
    _native = None

Int64s = npt.NDArray[np.int64]


def RAW(key: bytes | None) -> bytes | None:
    """The key deserializer that marks a consumer whose ``getmany`` returns record blocks."""
    return key


class Binaries(Sequence[bytes | None]):
    """A column of nullable byte strings in one buffer: item ``i`` is
    ``data[offsets[i]:offsets[i + 1]]``, None where ``valid`` (when given) is false. Items are
    built on access; :meth:`items` builds them all at once (natively)."""

    __slots__ = ("data", "offsets", "valid")

    def __init__(self, data: Any, offsets: Int64s, valid: npt.NDArray[np.bool_] | None) -> None:
        """Args:
        data: the bytes (any buffer).
        offsets: int64, one more than there are items, ascending (not necessarily from 0).
        valid: per item whether it is not null; None when none is.
        """
        self.data = data
        self.offsets = offsets
        self.valid = valid

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> bytes | None: ...

    @overload
    def __getitem__(self, index: slice) -> Binaries: ...

    def __getitem__(self, index: int | slice) -> bytes | Binaries | None:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("Binaries slices are contiguous")
            stop = max(start, stop)
            valid = None if self.valid is None else self.valid[start:stop]
            return Binaries(self.data, self.offsets[start : stop + 1], valid)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self.valid is not None and not self.valid[index]:
            return None
        return bytes(memoryview(self.data)[self.offsets[index] : self.offsets[index + 1]])

    def items(self) -> tuple[bytes | None, ...]:
        """Every item, as a tuple."""
        if _native is None:
            return tuple(self[i] for i in range(len(self)))
        valid = None if self.valid is None else self.valid.view(np.uint8)
        items: tuple[bytes | None, ...] = _native.binary_items(self.data, self.offsets, valid)
        return items

    def compact(self) -> Binaries:
        """The same items in a buffer of their own (a slice otherwise keeps its whole
        buffer alive)."""
        start, stop = int(self.offsets[0]), int(self.offsets[-1])
        return Binaries(
            bytes(memoryview(self.data)[start:stop]),
            self.offsets - start,
            None if self.valid is None else self.valid.copy(),
        )

    def nbytes(self) -> int:
        """Bytes the items take together."""
        return int(self.offsets[-1] - self.offsets[0]) if len(self.offsets) else 0

    @classmethod
    def concat(cls, parts: Sequence[Binaries]) -> Binaries:
        """One column of ``parts`` in order (a copy, unless there is one part)."""
        if len(parts) == 1:
            return parts[0]
        offsets = [np.zeros(1, np.int64)]
        chunks = []
        size = 0
        for part in parts:
            start, stop = (int(part.offsets[0]), int(part.offsets[-1]))
            offsets.append(part.offsets[1:] - start + size)
            chunks.append(memoryview(part.data)[start:stop])
            size += stop - start
        valid = None
        if any(p.valid is not None for p in parts):
            valid = np.concatenate(
                [np.ones(len(p), np.bool_) if p.valid is None else p.valid for p in parts]
            )
        return cls(b"".join(chunks), np.concatenate(offsets), valid)

    @classmethod
    def of(cls, items: Iterable[bytes | None]) -> Binaries:
        """The column of ``items``."""
        items = list(items)
        lengths = np.fromiter((-1 if b is None else len(b) for b in items), np.int64, len(items))
        valid = None if not (lengths < 0).any() else lengths >= 0
        offsets = np.zeros(len(items) + 1, np.int64)
        np.cumsum(np.maximum(lengths, 0), out=offsets[1:])
        return cls(b"".join(b for b in items if b is not None), offsets, valid)


_NO_TIMESTAMP = -1
"""Kafka's timestamp of a record that has none (message format v0)."""


class RecordBlock:
    """Consecutive records of one partition, column by column (``len()``: how many).

    Attributes:
        offsets: int64, strictly increasing.
        timestamps: int64, ms since the epoch (the batch's create or log-append time); -1
            for a record without one (message format v0).
        keys, values: the records' keys and values (None: a null key, a tombstone).
    """

    __slots__ = ("keys", "offsets", "timestamps", "values")

    def __init__(
        self, offsets: Int64s, timestamps: Int64s, keys: Binaries, values: Binaries
    ) -> None:
        self.offsets = offsets
        self.timestamps = timestamps
        self.keys = keys
        self.values = values

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: slice) -> RecordBlock:
        return RecordBlock(
            self.offsets[index], self.timestamps[index], self.keys[index], self.values[index]
        )

    def compact(self) -> RecordBlock:
        """The same records in buffers of their own (see :meth:`Binaries.compact`)."""
        return RecordBlock(
            self.offsets.copy(), self.timestamps.copy(), self.keys.compact(), self.values.compact()
        )

    def from_offset(self, offset: int) -> RecordBlock:
        """The records at ``offset`` or beyond."""
        if not len(self) or self.offsets[0] >= offset:
            return self
        return self[int(np.searchsorted(self.offsets, offset)) :]

    @classmethod
    def concat(cls, blocks: Sequence[RecordBlock]) -> RecordBlock:
        """One block of ``blocks`` in order."""
        if len(blocks) == 1:
            return blocks[0]
        return cls(
            np.concatenate([b.offsets for b in blocks]),
            np.concatenate([b.timestamps for b in blocks]),
            Binaries.concat([b.keys for b in blocks]),
            Binaries.concat([b.values for b in blocks]),
        )

    @classmethod
    def of_records(cls, records: Sequence[Any]) -> RecordBlock:
        """The block of aiokafka's parsed records (``offset``, ``timestamp``, ``key``,
        ``value`` attributes); a record without a timestamp (message format v0) gets Kafka's
        ``NO_TIMESTAMP``, -1."""
        n = len(records)
        return cls(
            np.fromiter((r.offset for r in records), np.int64, n),
            np.fromiter(
                (_NO_TIMESTAMP if r.timestamp is None else r.timestamp for r in records),
                np.int64,
                n,
            ),
            Binaries.of(r.key for r in records),
            Binaries.of(r.value for r in records),
        )

    @classmethod
    def empty(cls) -> RecordBlock:
        """A block without records."""
        none = np.zeros(0, np.int64)
        return cls(none, none, Binaries.of(()), Binaries.of(()))

    def __iter__(self) -> Iterator[RecordBlock]:
        raise TypeError("a RecordBlock is read by column, not record by record")


class CorruptFetch(RecordBlock):
    """No records: the partition's fetched bytes at ``offset`` (the position, which did not
    move) are not valid record batches; ``reason`` says what is wrong, naming the batch. True
    although empty, so ``getmany`` hands it over.

    ``batch`` is the corrupt batch's base offset and ``end`` the offset right after it (its
    last offset + 1: what records are deleted up to when the batch is lost), each None when
    the fetched bytes do not show it (see :func:`batch_bounds`)."""

    __slots__ = ("batch", "end", "offset", "reason")

    def __init__(
        self, offset: int, reason: str, *, batch: int | None = None, end: int | None = None
    ) -> None:
        none = np.zeros(0, np.int64)
        super().__init__(none, none, Binaries.of(()), Binaries.of(()))
        self.offset = offset
        self.reason = reason
        self.batch = batch
        self.end = end

    def __bool__(self) -> bool:
        return True


class RecordBlocks:
    """One partition's records of a batch, as the blocks they were fetched in (appending is
    cheap; :meth:`block` joins them once). Indexes and slices count records."""

    __slots__ = ("blocks",)

    def __init__(self, blocks: Iterable[RecordBlock] = ()) -> None:
        self.blocks = [b for b in blocks if len(b)]

    def __len__(self) -> int:
        return sum(map(len, self.blocks))

    def append(self, block: RecordBlock) -> None:
        if len(block):
            self.blocks.append(block)

    def extend(self, other: RecordBlocks) -> None:
        self.blocks += other.blocks

    def last_offset(self) -> int:
        """The offset of the last record (there must be one)."""
        return int(self.blocks[-1].offsets[-1])

    def offsets(self) -> Int64s:
        """Every record's offset, int64."""
        if not self.blocks:
            return np.zeros(0, np.int64)
        return np.concatenate([b.offsets for b in self.blocks])

    def __getitem__(self, index: slice) -> RecordBlocks:
        start, stop, _ = index.indices(len(self))
        out = RecordBlocks()
        at = 0
        for block in self.blocks:
            lo, hi = max(start - at, 0), min(stop - at, len(block))
            if lo < hi:
                out.append(block if (lo, hi) == (0, len(block)) else block[lo:hi])
            at += len(block)
        return out

    def below(self, offset: int) -> RecordBlocks:
        """The records below ``offset``."""
        return self[: int(np.searchsorted(self.offsets(), offset))]

    def block(self) -> RecordBlock:
        """Every record, in one block."""
        return RecordBlock.concat(self.blocks) if self.blocks else RecordBlock.empty()


def _binaries(column: tuple[int, Any, Any, Any], n: int) -> Binaries:
    nulls, validity, offsets, data = column
    valid = None
    if nulls:
        bits = np.frombuffer(validity, np.uint8)
        valid = np.unpackbits(bits, bitorder="little", count=n).astype(np.bool_)
    return Binaries(data, np.frombuffer(offsets, np.int64), valid)


class _KeptMemoryRecords:
    """aiokafka's ``MemoryRecords`` that keeps the fetch response's bytes (``data``)."""

    __slots__ = ("_records", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._records = _MemoryRecords(data)

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        return self._records.next_batch()

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())


_MemoryRecords: Any = _fetcher.MemoryRecords
_Base: Any = _fetcher.PartitionRecords
_getall: Any = _fetcher.FetchResult.getall


class _PartitionRecords(_Base):  # type: ignore[misc]
    next_fetch_offset: int

    def __init__(self, tp: Any, records: Any, aborted: Any, fetch_offset: int, *rest: Any) -> None:
        super().__init__(tp, records, aborted, fetch_offset, *rest)
        self._block: RecordBlock | None = None
        self._end = fetch_offset
        self._taken = 0
        self.blocks = self._key_deserializer is RAW
        self._data: bytes | None = getattr(records, "data", None) if self.blocks else None
        self._aborted = [(int(p), int(o)) for p, o in self._aborted_transactions]
        self.corrupt_batch: tuple[int | None, int | None] = (None, None)
        """The corrupt batch's base offset and end (:func:`batch_bounds`), once one was met."""
        if self.blocks:
            # aiokafka's record generator refers back to this object: a reference cycle that
            # only the cyclic collector frees, and with blocks so few containers are allocated
            # that it seldom runs: every fetch's bytes stayed resident (1.3 GiB peak).
            self._records_iterator = None

    def __next__(self) -> Any:
        if self.blocks:
            raise StreamsError("a RAW consumer reads record blocks with getmany, not getone")
        return super().__next__()

    def _consumer_record(self, tp: Any, record: Any) -> Any:
        if self._key_deserializer is RAW:
            return record
        return super()._consumer_record(tp, record)

    def _decoded(self) -> RecordBlock:
        if self._block is not None:
            return self._block
        fetch_offset = self.next_fetch_offset
        try:
            block = self._native_block(fetch_offset)
            if block is None:
                block = RecordBlock.of_records(list(self._unpack_records()))
                self._end = self.next_fetch_offset
                self.next_fetch_offset = fetch_offset
        except CorruptRecordException:
            # Raised once; then used up without moving: the fetcher fetches it again.
            # aiokafka's own decoding refuses the whole fetch without saying which batch failed
            # (the one holding the fetch offset may be intact): the bounds stay unknown.
            self.next_fetch_offset = self._end = fetch_offset
            self._block = RecordBlock.empty()
            raise
        self._block = block
        return block

    def _native_block(self, fetch_offset: int) -> RecordBlock | None:
        if _native is None or self._data is None:
            return None
        data = self._data if type(self._data) is bytes else bytes(self._data)
        return self._native_block_of(data, fetch_offset)

    def _native_block_of(self, data: bytes, fetch_offset: int) -> RecordBlock | None:
        try:
            end, offsets, timestamps, keys, values = _native.decode_records(
                data,
                fetch_offset,
                self._aborted,
                self._isolation_level == _fetcher.READ_COMMITTED,
                bool(self._check_crcs),
            )
        except _native.UnsupportedRecords as exc:
            logger.debug("%s: offset %d: %s; decoded by aiokafka", self._tp, *exc.args)
            return None
        except _native.CorruptRecords as exc:
            offset, what = exc.args
            intact = intact_prefix(data, offset) if offset > fetch_offset else 0
            if not intact:
                self.corrupt_batch = batch_bounds(data, offset)
                if self.corrupt_batch[0] is None:
                    self.corrupt_batch = (offset, None)
                raise CorruptRecordException(
                    f"{self._tp.topic}[{self._tp.partition}]: the fetched record batch at "
                    f"offset {offset} is corrupt: {what}{_NOTHING_CONSUMED}"
                ) from None
            # The batches before the corrupt one are intact (their CRCs held): they are read,
            # and the next fetch starts at the corrupt batch, which is then reported alone.
            logger.debug(
                "%s: batch at %d corrupt (%s); reading those before", self._tp, offset, what
            )
            return self._native_block_of(data[:intact], fetch_offset)
        self._end = end
        offsets = np.frombuffer(offsets, np.int64)
        n = len(offsets)
        return RecordBlock(
            offsets,
            np.frombuffer(timestamps, np.int64),
            _binaries(keys, n),
            _binaries(values, n),
        )

    def take(self, max_records: int | None) -> tuple[RecordBlock, bool]:
        """The next records, at most ``max_records``, and whether the fetch is used up; moves
        ``next_fetch_offset`` exactly as iterating aiokafka's records would."""
        block = self._decoded()
        start = self._taken
        remaining = len(block) - start
        if max_records is None or max_records > remaining:
            self.next_fetch_offset = self._end
            # Used up: the fetch's bytes are freed with the records handed over.
            self._data, self._block, self._taken = None, RecordBlock.empty(), 0
            return block[start:], True
        stop = start + max_records
        self.next_fetch_offset = int(block.offsets[stop - 1]) + 1
        # The records handed over and the rest of the fetch never share a buffer, so the batch
        # engine's early release frees what it was handed (docs/BENCHMARKS.md, issue 20,
        # sixteenth pass). The smaller side is copied: copying the rest at every take grew with
        # the square of the takes per fetch (small MAXLAKE_BATCH_MAX_EVENTS).
        if max_records <= remaining - max_records:
            self._taken = stop
            return block[start:stop].compact(), False
        self._block, self._taken = block[stop:].compact(), 0
        return block[start:stop], False


_NOTHING_CONSUMED = "; nothing of it was consumed"


def _getall_blocks(self: Any, max_records: int | None = None) -> Any:
    records = self._partition_records
    if type(records) is not _PartitionRecords or not records.blocks:
        return _getall(self, max_records)
    if not self.check_assignment(self._topic_partition) or not self.has_more():
        return RecordBlock.empty()
    try:
        block, used_up = records.take(max_records)
    except CorruptRecordException as exc:
        # Not raised out of getmany: aiokafka's fetched_records would drop what it already
        # took from other partitions of this call, whose positions had moved.
        self._partition_records = None
        tp = self._topic_partition
        text = str(exc.args[0]) if exc.args else type(exc).__name__
        reason = text.removeprefix(f"{tp.topic}[{tp.partition}]: ")
        batch, end = records.corrupt_batch
        return CorruptFetch(
            records.next_fetch_offset,
            reason.removesuffix(_NOTHING_CONSUMED),
            batch=batch,
            end=end,
        )
    self._update_position()
    if used_up:
        self._partition_records = None
    return block


def install() -> None:
    """Make ``key_deserializer=RAW`` consumers return one :class:`RecordBlock` per partition
    from ``getmany`` (idempotent).

    Raises:
        StreamsError: the installed aiokafka no longer builds records where this expects.
    """
    if _fetcher.PartitionRecords is _PartitionRecords:
        return
    result = _fetcher.FetchResult
    needed = [
        (_Base, "_consumer_record"),
        (_Base, "_unpack_records"),
        (result, "check_assignment"),
        (result, "has_more"),
        (result, "_update_position"),
    ]
    moved = [f"{c.__name__}.{n}" for c, n in needed if not callable(getattr(c, n, None))]
    parameters = list(inspect.signature(_Base.__init__).parameters)
    if parameters[:5] != ["self", "tp", "records", "aborted_transactions", "fetch_offset"]:
        moved.append(f"PartitionRecords({', '.join(parameters[1:])})")
    if _fetcher.PartitionRecords is not _Base:
        moved.append("PartitionRecords")
    if _fetcher.MemoryRecords is not _MemoryRecords:
        moved.append("MemoryRecords")
    if result.getall is not _getall:
        moved.append("FetchResult.getall")
    if not hasattr(_fetcher, "READ_COMMITTED"):
        moved.append("READ_COMMITTED")
    if moved:
        raise StreamsError(
            f"aiokafka's fetcher changed ({', '.join(moved)} moved or replaced): pin aiokafka "
            "to a version streams/kafka_records.py supports (0.12-0.14)"
        )
    _fetcher.MemoryRecords = _KeptMemoryRecords
    _fetcher.PartitionRecords = _PartitionRecords
    result.getall = _getall_blocks
