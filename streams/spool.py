"""A durable, ordered, append-only on-disk queue for events the broker could not take yet.

The spool is the "store" half of the plant producer's store-and-forward. Its guarantees:

* **Order.** Records come back from :meth:`Spool.read` in exactly the order they were appended,
  across segments and across process restarts.
* **Durability per batch.** :meth:`Spool.append` writes one batch with a single ``write`` and one
  ``fsync``; once it returns the batch survives a crash or power loss.
* **Removal only after delivery.** Reading does not remove anything. :meth:`Spool.commit` moves the
  durable read cursor past delivered records and deletes segments wholly behind it;
  :meth:`Spool.rewind` goes back to the cursor after a failed resend.
* **One owner.** An exclusive ``flock`` on ``LOCK`` keeps a second process (or a second producer in
  the same process) from interleaving appends and resends.

Layout of the directory: ``seg-<16 digits>.spool`` segment files (rotated at ``segment_bytes``),
``cursor`` (``<segment> <byte offset>`` of the first undelivered record, replaced atomically) and
``LOCK``. Each record is a frame ``>II`` (payload length, CRC-32 of the payload) followed by the
payload ``>HI`` (topic length, key length or ``0xFFFFFFFF`` for no key), topic, key and value. A
torn frame at the end of the newest segment (a crash mid-write) is truncated on open; a bad frame
anywhere else raises :class:`SpoolCorruptError` rather than silently dropping events.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from maxlake.errors import ConfigError, TerminalError
from streams.errors import StreamsError

__all__ = ["Spool", "SpoolCorruptError", "SpoolLockedError", "SpoolPosition", "SpooledRecord"]

logger = logging.getLogger(__name__)

_FRAME = struct.Struct(">II")
_HEADER = struct.Struct(">HI")
_NO_KEY = 0xFFFFFFFF
_SEGMENT_PREFIX = "seg-"
_SEGMENT_SUFFIX = ".spool"


class SpoolCorruptError(StreamsError, TerminalError):
    """A spool file holds a damaged record that is not a torn tail; the message names the file."""


class SpoolLockedError(StreamsError, ConfigError):
    """Another producer holds the spool directory."""


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One Kafka record waiting for delivery: topic, key (``None`` = unkeyed) and value bytes."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True, order=True)
class SpoolPosition:
    """A place in the spool: segment number and byte offset inside that segment."""

    segment: int
    offset: int


def _segment_name(number: int) -> str:
    return f"{_SEGMENT_PREFIX}{number:016d}{_SEGMENT_SUFFIX}"


def encode_record(topic: str, key: bytes | None, value: bytes) -> bytes:
    """The on-disk frame of one record (exposed for tests of torn and corrupt files)."""
    topic_bytes = topic.encode()
    key_len = _NO_KEY if key is None else len(key)
    payload = b"".join((_HEADER.pack(len(topic_bytes), key_len), topic_bytes, key or b"", value))
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> SpooledRecord:
    topic_len, key_len = _HEADER.unpack_from(payload)
    pos = _HEADER.size
    topic = payload[pos : pos + topic_len].decode()
    pos += topic_len
    key: bytes | None = None
    if key_len != _NO_KEY:
        key = payload[pos : pos + key_len]
        pos += key_len
    return SpooledRecord(topic, key, payload[pos:])


def _read_frame(handle: BinaryIO) -> tuple[SpooledRecord | None, int]:
    """The next valid frame of an open segment and its size; ``(None, 0)`` at its end."""
    head = handle.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None, 0
    length, crc = _FRAME.unpack(head)
    payload = handle.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None, 0
    return _decode_payload(payload), _FRAME.size + length


def _scan(data: bytes, start: int) -> tuple[list[tuple[int, int]], int]:
    """Valid frames of ``data`` from ``start``: (payload start, payload end) pairs and end offset.

    Scanning stops at the first incomplete or corrupt frame; the returned end offset is where it
    stopped, so ``end < len(data)`` means the rest is torn or corrupt.
    """
    frames: list[tuple[int, int]] = []
    pos = start
    size = len(data)
    while pos + _FRAME.size <= size:
        length, crc = _FRAME.unpack_from(data, pos)
        begin = pos + _FRAME.size
        end = begin + length
        if end > size or zlib.crc32(data[begin:end]) != crc or length < _HEADER.size:
            break
        frames.append((begin, end))
        pos = end
    return frames, pos


class Spool:
    """An exclusive handle on one spool directory; see the module docstring for its guarantees.

    Args:
        directory: created if missing; one producer process at a time.
        segment_bytes: a segment is closed and a new one started once it grows past this size,
            so delivered events free disk space without rewriting files.
    """

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._lock_file = (self.directory / "LOCK").open("a+b")
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_file.close()
            raise SpoolLockedError(
                f"spool {self.directory} is in use by another producer; give each producer "
                "its own spool directory"
            ) from exc
        self._closed = False
        self._cursor = self._read_cursor()
        self._pending = self._recover()
        self._read_pos = self._cursor
        self._writer: BinaryIO | None = None
        self._writer_segment = max([*self._segments(), self._cursor.segment])
        self._writer_size = 0

    # ------------------------------------------------------------------ state

    def __len__(self) -> int:
        """Records appended and not yet committed as delivered."""
        return self._pending

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _segments(self) -> list[int]:
        numbers = []
        for path in self.directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"):
            digits = path.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
            if digits.isdigit():
                numbers.append(int(digits))
        return sorted(numbers)

    def _path(self, segment: int) -> Path:
        return self.directory / _segment_name(segment)

    def _read_cursor(self) -> SpoolPosition:
        path = self.directory / "cursor"
        if not path.exists():
            segments = self._segments()
            return SpoolPosition(segments[0] if segments else 0, 0)
        try:
            segment_text, offset_text = path.read_text().split()
            return SpoolPosition(int(segment_text), int(offset_text))
        except ValueError as exc:
            raise SpoolCorruptError(f"unreadable spool cursor {path}") from exc

    def _recover(self) -> int:
        """Count pending records, truncate a torn tail, drop segments behind the cursor."""
        segments = self._segments()
        pending = 0
        for number in segments:
            if number < self._cursor.segment:
                self._path(number).unlink()
                continue
            path = self._path(number)
            data = path.read_bytes()
            start = self._cursor.offset if number == self._cursor.segment else 0
            frames, end = _scan(data, start)
            pending += len(frames)
            if end < len(data):
                if number != segments[-1]:
                    raise SpoolCorruptError(
                        f"corrupt record in spool segment {path} at byte {end}; "
                        "move the file away to continue (its events are lost)"
                    )
                logger.warning(
                    "truncating torn tail of spool segment %s at byte %d (%d bytes)",
                    path,
                    end,
                    len(data) - end,
                )
                with path.open("r+b") as handle:
                    handle.truncate(end)
                    os.fsync(handle.fileno())
        return pending

    # ------------------------------------------------------------------ writing

    def append(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> int:
        """Durably append one batch of ``(topic, key, value)`` records, in order.

        Returns:
            The number of records appended. The batch is on disk (fsynced) when this returns.
        """
        self._check_open()
        frames = [encode_record(topic, key, value) for topic, key, value in records]
        if not frames:
            return 0
        count = len(frames)
        blob = b"".join(frames)
        writer = self._open_writer()
        writer.write(blob)
        writer.flush()
        os.fsync(writer.fileno())
        self._writer_size += len(blob)
        self._pending += count
        if self._writer_size >= self._segment_bytes:
            writer.close()
            self._writer = None
            self._writer_segment += 1
        return count

    def _open_writer(self) -> BinaryIO:
        if self._writer is None:
            path = self._path(self._writer_segment)
            new = not path.exists()
            self._writer = path.open("ab")
            self._writer_size = self._writer.tell()
            if new:
                self._fsync_directory()
        return self._writer

    # ------------------------------------------------------------------ reading

    def read(self, max_records: int) -> tuple[list[SpooledRecord], SpoolPosition]:
        """The next up to ``max_records`` records after the read position, and the new position.

        Advances only the in-memory read position; nothing is removed until :meth:`commit`.
        """
        self._check_open()
        records: list[SpooledRecord] = []
        pos = self._read_pos
        last = max(self._writer_segment, pos.segment)
        while len(records) < max_records:
            path = self._path(pos.segment)
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(pos.offset)
                    offset = pos.offset
                    while len(records) < max_records:
                        record, size = _read_frame(handle)
                        if record is None:
                            break
                        records.append(record)
                        offset += size
                pos = SpoolPosition(pos.segment, offset)
            if len(records) >= max_records or pos.segment >= last:
                break
            pos = SpoolPosition(pos.segment + 1, 0)
        self._read_pos = pos
        return records, pos

    def commit(self, position: SpoolPosition, count: int) -> None:
        """Mark everything before ``position`` (``count`` records since the last commit) delivered.

        The cursor file is replaced atomically and fsynced; fully delivered segments are deleted.
        """
        self._check_open()
        if position < self._cursor:
            raise ValueError(f"commit position {position} is behind the cursor {self._cursor}")
        tmp = self.directory / "cursor.tmp"
        with tmp.open("wb") as handle:
            handle.write(f"{position.segment} {position.offset}\n".encode())
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.directory / "cursor")
        self._fsync_directory()
        for number in self._segments():
            if number < position.segment:
                self._path(number).unlink()
        self._cursor = position
        self._pending = max(0, self._pending - count)
        if self._pending == 0 and self._read_pos == position:
            self._reset_when_empty()

    def _reset_when_empty(self) -> None:
        """Start the next outage in a fresh segment so the drained one can be deleted."""
        if self._writer is not None and self._writer_segment == self._cursor.segment:
            self._writer.close()
            self._writer = None
            self._writer_segment += 1
            fresh = SpoolPosition(self._writer_segment, 0)
            self._read_pos = fresh
            self.commit(fresh, 0)

    def rewind(self) -> None:
        """Return the read position to the durable cursor (after a failed resend)."""
        self._read_pos = self._cursor

    # ------------------------------------------------------------------ lifecycle

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"spool {self.directory} is closed")

    def close(self) -> None:
        """Close the files and release the directory lock; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._lock_file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
