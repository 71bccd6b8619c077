"""Strict, schema-driven batch JSON -> Arrow buffers parser (maxlake's decoder fast path)."""

from collections.abc import Sequence
from typing import Any

class Schema:
    """A compiled parse schema: a tuple of ``(name, type, children)`` fields, ``type`` one of
    ``utf8``, ``int64``, ``float64``, ``bool``, ``struct`` (children: its fields) and ``list``
    (children: one item field). It keeps the column sizes of its last batch and reserves room
    for the next one from them, scaled to its number of messages (no effect on results)."""

    def __init__(self, spec: tuple[object, ...], /) -> None: ...

class Buffer:
    """Owned bytes exposed through the buffer protocol (read-only)."""

    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __len__(self) -> int: ...

Column = tuple[int, int, list[Buffer | None], list["Column"]]

def parse_batch(
    messages: Sequence[bytes], max_bytes: int, schema: Schema, /
) -> tuple[list[Column], Buffer, Buffer] | None:
    """Parse each message (one JSON object) into the columns of ``schema``.

    Returns None when an item is not exactly ``bytes`` or there are none; else ``(columns,
    index, dirty)``: per schema field ``(length, null_count, buffers, children)`` over the kept
    messages (``pa.Array.from_buffers`` order), and the int64 input positions of the kept and
    of the set-aside messages, ascending.
    """

def content_hashes(values: Sequence[bytes], /) -> Buffer | None:
    """The content hash of each payload (int64 buffer): XXH3-64 of the payload without its
    first ``sent_time`` member (``streams/content_hash.py``), 1 where the digest is 0. None when
    an item is not exactly ``bytes``."""

def id_hashes(ids: list[Any], key_a: bytes, key_b: bytes, /) -> Buffer | None:
    """Two SipHash-2-4 hashes of each id's UTF-8 bytes (``streams/sightings.py``) under the
    16-byte keys, as pandas' ``hash_array`` computes them: an int64 buffer of every ``key_a``
    hash, then every ``key_b`` one. None when an item is not exactly ``str`` or has no UTF-8
    form (a lone surrogate)."""

class CorruptRecords(ValueError):
    """Fetched bytes that are not valid Kafka record batches; ``args``: ``(offset, what)``."""

class UnsupportedRecords(ValueError):
    """Record batches :func:`decode_records` does not read (a codec other than none or LZ4, or
    message format < 2); ``args``: ``(offset, what)``."""

Binary = tuple[int, Buffer | None, Buffer, Buffer]

def decode_records(
    data: bytes,
    fetch_offset: int,
    aborted: list[tuple[int, int]],
    read_committed: bool,
    check_crcs: bool,
    /,
) -> tuple[int, Buffer, Buffer, Binary, Binary]:
    """Decode one partition's fetched record batches (Kafka message format v2).

    ``aborted``: the fetch response's aborted transactions, ``(producer_id, first_offset)``.
    Returns ``(next_fetch_offset, offsets, timestamps, keys, values)``: int64 buffers of the
    records' offsets and timestamps (ms), and per binary column ``(null_count, validity | None,
    int64 offsets, data)`` (Arrow ``large_binary`` buffers). A batch cut short at the end of
    ``data`` is left out. Raises CorruptRecords or UnsupportedRecords.
    """

def binary_items(
    data: Buffer | bytes, offsets: object, valid: object | None = None
) -> tuple[bytes | None, ...]:
    """The items of a binary column: item ``i`` is ``data[offsets[i]:offsets[i + 1]]`` as bytes
    (``offsets``: int64 buffer, one more than there are items), None where ``valid`` (a uint8
    buffer, one byte per item) is 0. Raises ValueError on offsets outside ``data``."""

def rfc3339_micros(
    length: int,
    offset: int,
    offsets: object,
    data: object,
    validity: object | None = None,
) -> tuple[Buffer, Buffer]:
    """Microseconds since the epoch of each value of a string array (its pyarrow buffers):
    ``(micros, taken)``, an int64 buffer (0 where not taken) and one byte per value, 1 where
    the value has the shape ``YYYY-MM-DD[T ]hh:mm:ss[.f{1,6}](Z|±hh:mm)`` and is a real
    date and time (what the regex and ``pc.cast`` of ``schemas/_fast.py`` accept)."""
