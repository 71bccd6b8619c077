"""Whole-batch JSON parsing for the decoder's fast path.

With the compiled parser (:mod:`schemas._native`, ``maxlake_native``) each message is read in
one strict pass straight into Arrow buffers, and a message it does not read exactly as orjson
would is dirty. Without it (no Rust toolchain at install time), the Arrow path below parses:
the messages of a batch are joined into one newline-delimited buffer and parsed by Arrow's C++
JSON reader straight into typed columns, with no Python object per message. Arrow's reader is
more lenient than orjson in a few ways (``NaN``/``Infinity``, several objects on one line, a
leading byte-order mark, nesting deeper than orjson's limit, lines split by ``\\r``) and gives no
rejection texts, so the fast path only ever *accepts*: a cheap whole-buffer prescreen sets aside
every message it is not sure about, a parse error sets aside the one message it names, and the
set-aside ("dirty") messages go to the exact per-message decoder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.json as pj

from schemas import _native

__all__ = ["Parsed", "parse_batch"]

_BLOCK_BYTES = 1 << 18
_ROW = re.compile(r"in row (\d+)\s*$")
_OPEN, _CLOSE = ord("{"), ord("}")
_MAX_ERRORS = 16
"""Parse errors per batch (plus one per 32 messages) before the rest goes to the exact decoder:
each error costs a partial block, so a batch of mostly bad messages would be slower than exact."""
_NEWLINE = ord("\n")
_COLON, _QUOTE = ord(":"), ord('"')
_NUMBER_START = np.zeros(256, bool)
_NUMBER_START[list(b"-0123456789n")] = True
_SPACE = ord(" ")
_SUSPECT = (b"\\", b"\r", b"\0")
"""Escapes (keys written with escapes, lone surrogates), line breaks Arrow may split on and NUL
(Arrow ends the document there)."""
_AFTER_CLOSE = np.zeros(256, bool)
_AFTER_CLOSE[list(b",}]\n\0")] = True
"""What may follow a ``}`` outside strings in one-line JSON. Anything else (a second object or
value on the line, whitespace) sets the message aside: Arrow would read several rows from it,
and the row numbers of later parse errors would then name the wrong message."""
_NON_FINITE = (b"NaN", b"Inf")
"""Starts of ``NaN`` and ``Infinity``: Arrow reads them as numbers (even in skipped fields),
orjson refuses them."""
_DIGIT = np.zeros(256, bool)
_DIGIT[list(b"0123456789")] = True
_SAMPLE = 64
_RUN = 3 * _SAMPLE + 1
"""A number of 309 or more digits overflows a double: orjson refuses it, Arrow reads it
without complaint in a field it skips. Any run of 309 digits holds four consecutive bytes at
multiples of ``_SAMPLE``, hence ``_RUN`` digits from the first of them: every byte sampled
every 64 is checked, and a message with such a run (also inside a string: only slower) is
set aside."""
_DEEP_BYTES = 2000
_DEEP_BRACKETS = 1000
"""orjson refuses nesting deeper than 1024; Arrow ignores the depth of fields it skips. A message
needs this many brackets (hence bytes) to come close."""

Index = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Parsed:
    """Outcome of :func:`parse_batch`.

    Attributes:
        table: one row per message in ``index`` (same order), columns of the parse schema.
        index: input position of each row of ``table``, ascending.
        dirty: input positions left to the exact decoder, ascending.
    """

    table: pa.Table
    index: Index
    dirty: Index


def parse_batch(
    messages: Sequence[bytes], max_bytes: int, schema: pa.Schema, *, threads: bool = False
) -> Parsed | None:
    """Parse ``messages`` into ``schema`` columns; None when the batch is not all ``bytes``.

    The compiled parser reads the batch when it is importable (``_native.PARSER``) and knows
    every type of ``schema``; otherwise Arrow's JSON reader does, and ``threads`` lets it parse
    blocks on its thread pool (the GIL is released meanwhile)."""
    _native.announce()
    if _native.PARSER == "native":
        native = _native.parse(messages, max_bytes, schema)
        if native is not None:
            return Parsed(*native)
    if set(map(type, messages)) != {bytes}:
        return None
    n = len(messages)
    lens = np.fromiter(map(len, messages), np.int64, n)
    oversized = lens > max_bytes
    if oversized.any():
        return _without(messages, oversized, max_bytes, schema, threads=threads)
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(lens + 1, out=starts[1:])
    data = bytearray(b"\n").join(messages)
    data.extend(b"\0\0")
    raw = np.frombuffer(data, np.uint8)
    flagged = _prescreen(messages, data, raw, lens, starts, max_bytes)
    flagged[_owners(starts, _non_numbers(raw, _numeric_keys(schema)))] = True
    dirty: list[int] = np.flatnonzero(flagged).tolist()
    for i in dirty:
        raw[starts[i] : starts[i + 1] - 1] = _SPACE
    index = np.flatnonzero(~flagged)
    options = (
        pj.ReadOptions(use_threads=threads, block_size=_BLOCK_BYTES),
        pj.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False
        ),
    )
    batches: list[pa.RecordBatch] = []
    if len(index):
        _Parser(data, raw, starts, index, options, batches, dirty).run(0, len(index))
    table = pa.Table.from_batches(batches, schema=schema)
    dirty_index = np.array(sorted(dirty), np.int64)
    if table.num_rows != n - len(dirty_index):
        return None
    keep = np.ones(n, bool)
    keep[dirty_index] = False
    return Parsed(table, np.flatnonzero(keep), dirty_index)


def _without(
    messages: Sequence[bytes],
    oversized: npt.NDArray[np.bool_],
    max_bytes: int,
    schema: pa.Schema,
    *,
    threads: bool,
) -> Parsed | None:
    """:func:`parse_batch` of the messages not ``oversized``, the oversized ones dirty.

    They are left out before the batch is joined: the prescreen's passes and Arrow's parse run
    over every byte of the joined buffer, blanks included, and oversized messages can outweigh
    the rest (2% of the simulator's bad mix are 267 KB each, more bytes than 50,000 events)."""
    kept = np.flatnonzero(~oversized)
    inner = (
        parse_batch([messages[i] for i in kept.tolist()], max_bytes, schema, threads=threads)
        if len(kept)
        else Parsed(pa.Table.from_batches([], schema=schema), kept, kept)
    )
    if inner is None:
        return None
    dirty = np.sort(np.concatenate([np.flatnonzero(oversized), kept[inner.dirty]]))
    return Parsed(inner.table, kept[inner.index], dirty)


def _prescreen(
    messages: Sequence[bytes],
    data: bytearray,
    raw: npt.NDArray[np.uint8],
    lens: Index,
    starts: Index,
    max_bytes: int,
) -> npt.NDArray[np.bool_]:
    """Messages the fast path must not parse, found with C-speed passes over ``data``."""
    n = len(messages)
    flagged = (lens < 2) | (lens > max_bytes)
    flagged |= raw[starts[:-1]] != _OPEN
    flagged |= raw[np.maximum(starts[1:] - 2, 0)] != _CLOSE
    closes = np.flatnonzero(raw == _CLOSE)
    flagged[_owners(starts, closes[~_AFTER_CLOSE[raw[closes + 1]]])] = True
    if np.count_nonzero(raw == _NEWLINE) != n - 1:
        inner = np.flatnonzero(raw == _NEWLINE)
        owner = np.searchsorted(starts, inner, side="right") - 1
        flagged[owner[inner != starts[owner + 1] - 1]] = True
    end = len(data) - 2
    for pattern in _SUSPECT:
        at = data.find(pattern, 0, end)
        while at >= 0:
            flagged[np.searchsorted(starts, at, side="right") - 1] = True
            at = data.find(pattern, at + 1, end)
    for word in _NON_FINITE:
        flagged[_owners(starts, _starts_of(word, data, raw, end, n // 16 + 16))] = True
    flagged[_owners(starts, _long_digit_runs(raw, end))] = True
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            flagged |= np.fromiter(map(_not_utf8, messages), bool, n)
    for i in np.flatnonzero(lens > _DEEP_BYTES).tolist():
        msg = messages[i]
        if msg.count(b"[") + msg.count(b"{") >= _DEEP_BRACKETS:
            flagged[i] = True
    return flagged


def _long_digit_runs(raw: npt.NDArray[np.uint8], end: int) -> Index:
    """Start positions of runs of at least ``_RUN`` digits in ``raw[:end]`` that are at
    multiples of ``_SAMPLE`` (each run of 309 digits or more has one)."""
    sampled = _DIGIT[raw[:end:_SAMPLE]]
    four = sampled[:-3] & sampled[1:-2] & sampled[2:-1] & sampled[3:]
    found = [
        at for at in (np.flatnonzero(four) * _SAMPLE).tolist() if _DIGIT[raw[at : at + _RUN]].all()
    ]
    return np.array(found, np.int64)


def _starts_of(
    word: bytes, data: bytearray, raw: npt.NDArray[np.uint8], end: int, limit: int
) -> Index:
    """Positions in ``data[:end]`` where ``word`` starts. Its first byte is looked up with
    ``find`` (memchr, no pass that writes a byte mask) while it is rare; past ``limit``
    sightings one NumPy pass over the buffer finds them all instead."""
    head = word[:1]
    found: list[int] = []
    at = data.find(head, 0, end)
    for _ in range(limit):
        if at < 0:
            return np.array(found, np.int64)
        if data.startswith(word, at):
            found.append(at)
        at = data.find(head, at + 1, end)
    cand = np.flatnonzero(raw[:end] == word[0])
    for offset, byte in enumerate(word[1:], 1):
        cand = cand[raw[cand + offset] == byte]
    return cand


def _numeric_keys(schema: pa.Schema | pa.StructType) -> list[bytes]:
    """Names of the number fields of ``schema``, at any depth."""
    keys: list[bytes] = []
    for field in schema:
        kind = field.type
        while pa.types.is_list(kind):
            kind = kind.value_type
        if pa.types.is_struct(kind):
            keys.extend(_numeric_keys(kind))
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            keys.append(field.name.encode())
    return sorted(set(keys))


def _non_numbers(raw: npt.NDArray[np.uint8], keys: list[bytes]) -> Index:
    """Byte positions of ``"key":`` whose value starts like no number (nor null): a string,
    boolean, object or array where Arrow expects a number is a parse error, and each parse
    error costs a partial block, so the common "number sent as a string" is found up front.
    Matches ignore nesting (a same-named key in a skipped field is flagged too: the exact
    decoder takes that message, which is only slower). ``raw`` ends in two NUL bytes."""
    if not keys:
        return np.zeros(0, np.int64)
    colons = np.flatnonzero(raw == _COLON)
    colons = colons[np.searchsorted(colons, 2) :]
    last = raw[colons - 2]
    near_key = last == keys[0][-1]
    for key in keys[1:]:
        near_key |= last == key[-1]
    colons = colons[near_key]
    last = last[near_key]
    after = raw[colons + 1]
    spaced = np.flatnonzero(after == _SPACE)
    if len(spaced):
        after[spaced] = raw[colons[spaced] + 2]
    odd = ~_NUMBER_START[after] & (raw[colons - 1] == _QUOTE)
    colons = colons[odd]
    last = last[odd]
    found = []
    for key in keys:
        width = len(key)
        near = colons[(last == key[-1]) & (colons > width + 1)]
        same = (raw[near - width - 2] == _QUOTE) & (raw[near - width - 1] == key[0])
        found.append(near[same])
    return np.concatenate(found)


def _owners(starts: Index, positions: Index) -> Index:
    """The message holding each byte position."""
    return np.searchsorted(starts, positions, side="right") - 1


def _not_utf8(msg: bytes) -> bool:
    try:
        msg.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass(slots=True)
class _Parser:
    """Stream-parses the messages ``index`` of ``data`` (one per line) into ``out``.

    A parse error names a row of the failing block: that message becomes dirty, its bytes are
    blanked (Arrow skips blank lines) and parsing resumes at the block's start, so an error
    costs one partial block, not a copy or a re-parse of the batch. An error naming no row
    (a failed number conversion, any other Arrow error) splits the rest in halves down to single
    messages.
    """

    data: bytearray
    raw: npt.NDArray[np.uint8]
    starts: Index
    index: Index
    options: tuple[pj.ReadOptions, pj.ParseOptions]
    out: list[pa.RecordBatch]
    dirty: list[int]
    errors: int = 0

    def run(self, lo: int, hi: int) -> int:
        """Parse ``index[lo:hi]``; returns how many of them became dirty (and left ``index``)."""
        read, parse = self.options
        view = memoryview(self.data)
        dropped = 0
        while lo < hi:
            end = self.starts[self.index[hi - 1] + 1] - 1
            buffer = pa.py_buffer(view[self.starts[self.index[lo]] : end])
            got = 0
            try:
                for batch in pj.open_json(buffer, read_options=read, parse_options=parse):
                    self.out.append(batch)
                    got += batch.num_rows
                return dropped
            except pa.ArrowException as exc:
                found = _ROW.search(str(exc))
                lo += got
                self.errors += 1
                if self.errors > _MAX_ERRORS + len(self.index) // 32:
                    self.dirty.extend(self.index[lo:hi].tolist())
                    self.index = np.delete(self.index, np.s_[lo:hi])
                    return dropped + hi - lo
                bad = lo + int(found.group(1)) if found else hi
                if bad >= hi:
                    return dropped + self._bisect(lo, hi)
                self._drop(bad)
                dropped += 1
                hi -= 1
        return dropped

    def _drop(self, k: int) -> None:
        i = int(self.index[k])
        self.dirty.append(i)
        self.raw[self.starts[i] : self.starts[i + 1] - 1] = _SPACE
        self.index = np.delete(self.index, k)

    def _bisect(self, lo: int, hi: int) -> int:
        if hi - lo == 1:
            self._drop(lo)
            return 1
        mid = (lo + hi) // 2
        first = self.run(lo, mid)
        return first + self.run(mid - first, hi - first)
