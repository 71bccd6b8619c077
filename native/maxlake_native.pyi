"""Strict, schema-driven batch JSON -> Arrow buffers parser (maxlake's decoder fast path)."""

from collections.abc import Sequence

class Schema:
    """A compiled parse schema: a tuple of ``(name, type, children)`` fields, ``type`` one of
    ``utf8``, ``int64``, ``float64``, ``bool``, ``struct`` (children: its fields) and ``list``
    (children: one item field)."""

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
