"""The record batches of a fetch response's bytes as their headers show them (Kafka's record
batch format v2: https://kafka.apache.org/documentation/#recordbatch): where each starts, its
base offset and where it ends, for naming a corrupt batch without trusting its damaged bytes."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["batch_bounds", "intact_prefix"]

_BATCH_HEAD = struct.Struct(">qi")
_LOG_OVERHEAD = _BATCH_HEAD.size
"""A record batch's base offset and length, the bytes before what the length counts."""
_V2_HEAD = struct.Struct(">qiibIhi")
"""A v2 record batch's header up to its last offset delta: base offset, length, partition
leader epoch, magic, CRC, attributes, last offset delta."""


class _Head(NamedTuple):
    """A record batch in fetched bytes as its header shows it: where it starts (``pos``), its
    base offset, its length field, its last offset delta (a v2 header's, magic 2, whole in the
    bytes and not negative; else None) and the next batch's base offset (None unless the length
    is positive and a whole header of the next batch is in the bytes)."""

    pos: int
    base: int
    length: int
    last_delta: int | None
    next_base: int | None


def _heads(data: bytes) -> Iterator[_Head]:
    """The record batches of ``data`` by their headers, from the start, up to the first whose
    length is negative or runs past ``data`` (included)."""
    pos = 0
    while len(data) - pos >= _LOG_OVERHEAD:
        base, length = _BATCH_HEAD.unpack_from(data, pos)
        delta: int | None = None
        if len(data) - pos >= _V2_HEAD.size:
            head = _V2_HEAD.unpack_from(data, pos)
            magic, last_delta = head[3], head[6]
            delta = last_delta if magic == 2 and last_delta >= 0 else None
        following = pos + _LOG_OVERHEAD + length
        after: int | None = None
        if length > 0 and following + _LOG_OVERHEAD <= len(data):
            after = _BATCH_HEAD.unpack_from(data, following)[0]
        yield _Head(pos, base, length, delta, after)
        if length < 0 or following > len(data):
            return
        pos = following


def intact_prefix(data: bytes, offset: int) -> int:
    """The length of ``data``'s whole record batches before the batch at base ``offset``; 0
    when that batch is not found by its header (its length or base offset is what broke)."""
    return next((head.pos for head in _heads(data) if head.base == offset), 0)


def batch_bounds(data: bytes, offset: int) -> tuple[int | None, int | None]:
    """The base offset of the record batch of ``data`` that holds ``offset`` and the offset
    right after it (its last offset + 1), each None when the bytes do not show it.

    The batches are walked by their headers from the start of ``data`` (a fetch response's
    records). ``offset`` is a batch's base offset, or the fetch offset, which may lie inside
    the first batch (the native decoder names it when that batch's length is too short); a
    batch holds it by its last offset delta. The end is given only when two sources agree: the
    next batch's base offset (a whole header of it in ``data``) and this batch's own last
    offset delta (a v2 header: magic 2). The delta lies within what the batch's CRC covers, so
    in a batch whose CRC failed it may be the damaged byte; the end is the number an operator
    deletes up to, so a batch last in the fetch, or one whose two sources disagree, has no end
    (None).
    """
    for head in _heads(data):
        base, delta = head.base, head.last_delta
        if base == offset or (base < offset and delta is not None and offset <= base + delta):
            if delta is not None and head.next_base == base + delta + 1:
                return base, head.next_base
            return base, None
        if base > offset or head.length <= 0:
            return None, None
    return None, None
