"""DuckDB as the fast path's parser for large batches: the prescreen it needs, and the parse.

DuckDB's JSON reader parses the bench's snapshot events in about half the CPU time of Arrow's
(docs/BENCHMARKS.md, "Issue 20, ninth pass") but accepts more than orjson does, in ways the
Arrow prescreen of :mod:`schemas._fastparse` does not cover. :func:`lenient_spots` finds every
byte where DuckDB could read something orjson refuses or reads differently, so that message
goes to the exact decoder:

- a value of another JSON type than its schema field (DuckDB converts: ``"a":123`` -> ``'123'``,
  ``"v":"1.5"`` -> 1.5, ``true`` -> 1.0; ``1.5`` into an integer field rounds), matched by key
  name at any depth, and any colon after whitespace (the key match needs ``"key":``);
- a value starting with anything but ``"``, ``{``, ``[``, ``-`` + digit, a digit, ``t``,
  ``f`` or ``null`` after a colon, comma or ``[`` (``nan``/``inf`` in any case, and trailing
  commas, which DuckDB allows even in fields it skips);
- a number of 32 bytes or more, or with an exponent of three digits (DuckDB reads ``1e400`` as
  infinity, even in skipped fields, where orjson refuses it).

A comma or colon inside a string can only add false alarms (a slower message, never a wrong
one). Rows whose float fields DuckDB read as non-finite are set aside after the parse too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from schemas._duckjson import NdjsonError, read_ndjson

__all__ = ["DUCK_MIN_MESSAGES", "DuckParse", "lenient_spots", "non_finite_rows"]

DUCK_MIN_MESSAGES = 4096
"""Smallest count of clean messages parsed by DuckDB: each query costs ~2-3 ms of CPU."""
_CHUNK_BYTES = 8 << 20
"""Bytes per query: a refused line costs the re-parse of at most this much."""
_MAX_ERRORS = 8
"""Refusals per batch before the rest goes to Arrow's parser (each costs a query, ~2-3 ms)."""
_WINDOW = 32

Index = npt.NDArray[np.int64]


def _lut(chars: bytes) -> npt.NDArray[np.bool_]:
    table = np.zeros(256, bool)
    table[list(chars)] = True
    return table


_DIGITS = b"0123456789"
_VALUE_START = _lut(b'"{[-tfn' + _DIGITS)
_NUMBER_BYTES = _lut(b"+-.eE" + _DIGITS)
_FRACTION = _lut(b".eE")
_DIGIT = _lut(_DIGITS)
_WHITE = _lut(b" \t")
_SPACE = ord(" ")
_COLON, _COMMA, _OPEN, _QUOTE, _N, _MINUS = (ord(c) for c in ':,["n-')
_CLOSE_LIST, _CLOSE_OBJECT = ord("]"), ord("}")
_E = _lut(b"eE")
_RARE = _lut(b"n-[")
_NULL = np.frombuffer(b"null", np.uint8)


def _keys_by_type(schema: pa.Schema | pa.StructType) -> dict[str, set[bytes]]:
    """Key names of ``schema`` at any depth, grouped by their field's type."""
    groups: dict[str, set[bytes]] = {
        name: set() for name in ("string", "number", "int", "struct", "list")
    }
    for f in schema:
        kind = f.type
        name = f.name.encode()
        if pa.types.is_list(kind):
            groups["list"].add(name)
            kind = kind.value_type
            if not pa.types.is_struct(kind):
                raise TypeError(f"no DuckDB prescreen for lists of {kind}")
        if pa.types.is_struct(kind):
            groups["struct" if kind is f.type else "list"].add(name)
            for group, names in _keys_by_type(kind).items():
                groups[group] |= names
        elif pa.types.is_string(kind):
            groups["string"].add(name)
        elif pa.types.is_integer(kind):
            groups["int"].add(name)
        elif pa.types.is_floating(kind):
            groups["number"].add(name)
        else:
            raise TypeError(f"no DuckDB prescreen for {kind}")
    return groups


_CLASS = np.zeros(256, np.uint8)
_CLASS[ord('"')] = 1
_CLASS[list(b"-" + _DIGITS)] = 2
_CLASS[ord("{")] = 3
_CLASS[ord("[")] = 4
_CLASS[list(b"tf")] = 5
_CLASS[ord("n")] = 6
"""First byte of a value -> its JSON type: 0 none (orjson refuses), 1 string, 2 number,
3 object, 4 array, 5 boolean, 6 null."""
_ALLOWED = {"string": (1, 6), "number": (2, 6), "int": (2, 6), "struct": (3, 6), "list": (4, 6)}
"""Value types each kind of schema field may hold without DuckDB converting them."""


@functools.lru_cache(maxsize=16)
def _key_table(schema: pa.Schema) -> tuple[npt.NDArray[np.bool_], dict[str, list[bytes]]]:
    """A table over (last two bytes of a key, value type): True where some schema key of that
    ending may not hold that type (or is an integer key holding a number, whose shape is then
    checked); and the schema's keys by kind."""
    groups = {group: sorted(names) for group, names in _keys_by_type(schema).items()}
    table = np.zeros(1 << 19, bool)
    for group, names in groups.items():
        for name in names:
            for kind in range(1, 7):
                if kind not in _ALLOWED[group] or (group == "int" and kind == 2):
                    table[_ending(name) << 3 | kind] = True
    return table, groups


def _ending(name: bytes) -> int:
    """The last two bytes of ``"name"`` before the colon (the quote and the name's last byte
    for one-byte names), as ``lenient_spots`` reads them."""
    text = b'"' + name
    return text[-1] | text[-2] << 8


def lenient_spots(raw: npt.NDArray[np.uint8], schema: pa.Schema) -> Index:
    """Byte positions in ``raw`` (messages joined by newlines, ending in two NUL bytes) whose
    message DuckDB could read where orjson would not, or read differently (module docstring)."""
    last = len(raw) - 1
    colons = np.flatnonzero(raw == _COLON)
    colons = colons[colons >= 3]
    before = raw[colons - 1]
    found = [colons[_WHITE[before]]]
    colons = colons[before == _QUOTE]
    commas = np.flatnonzero(raw == _COMMA)
    commas = commas[raw[commas + 1] != _QUOTE]
    at = np.concatenate([colons, commas]) + 1
    after = _past_space(raw, at)
    kinds = _CLASS[after]
    found.append(at[kinds == 0])
    level, level_after = at, after
    rare: list[Index] = [at[_RARE[after]]]
    numbers = [at[kinds == 2]]
    while True:
        opens = level[level_after == _OPEN] + 1
        if not len(opens):
            break
        level_after = _past_space(raw, opens)
        inner = _CLASS[level_after]
        found.append(opens[(inner == 0) & (level_after != _CLOSE_LIST)])
        rare.append(opens[(inner == 6) | (level_after == _MINUS)])
        numbers.append(opens[inner == 2])
        level = opens
    spots = np.concatenate(rare)
    first = raw[spots]
    nulls = spots[first == _N]
    if len(nulls):
        word = raw[np.minimum(nulls[:, None] + np.arange(4), last)]
        found.append(nulls[(word != _NULL).any(axis=1)])
    minus = spots[first == _MINUS]
    found.append(minus[~_DIGIT[raw[minus + 1]]])
    found.append(_odd_numbers(raw, np.concatenate(numbers), shape_only=False))
    table, groups = _key_table(schema)
    value_at = at[: len(colons)]
    ending = raw[colons - 2] | raw[colons - 3].astype(np.uint32) << 8
    suspect = np.flatnonzero(table[ending << 3 | kinds[: len(colons)]])
    if len(suspect):
        colons, value_at, kinds = colons[suspect], value_at[suspect], kinds[suspect]
        for group, names in groups.items():
            odd = ~np.isin(kinds, _ALLOWED[group])
            found.append(_keyed(raw, colons[odd], value_at[odd], names))
        ints = _keyed(raw, colons[kinds == 2], value_at[kinds == 2], groups["int"])
        found.append(_odd_numbers(raw, ints, shape_only=True))
    return np.concatenate(found)


def _past_space(raw: npt.NDArray[np.uint8], at: Index) -> npt.NDArray[np.uint8]:
    """The bytes at ``at``, moving ``at`` (in place) past one space where there is one."""
    after = raw[at]
    spaced = np.flatnonzero(after == _SPACE)
    if len(spaced):
        at[spaced] += 1
        after[spaced] = raw[at[spaced]]
    return after


_SHAPE = np.zeros(256, np.uint8)
_SHAPE[list(b"+-" + _DIGITS)] = 1
_SHAPE[list(b".")] = 1 | 4
_SHAPE[list(b"eE")] = 1 | 2 | 4
"""Number token bytes: 1 in a number, 2 an exponent, 4 a fraction or an exponent."""


def _odd_numbers(raw: npt.NDArray[np.uint8], numbers: Index, *, shape_only: bool) -> Index:
    """Number starts whose token is 32 bytes or longer or has a positive exponent of 3+ digits
    (infinite for DuckDB; orjson refuses it); with ``shape_only``, those with a fraction or an
    exponent at all (an integer field's value must have neither)."""
    last = len(raw) - 1
    ids = np.arange(len(numbers))
    pos = numbers + 1
    marked = np.zeros(len(numbers), bool)
    flag = 4 if shape_only else 2
    for _ in range(1, _WINDOW):
        shape = _SHAPE[raw[pos]]
        marked[ids[(shape & flag) != 0]] = True
        keep = shape != 0
        ids = ids[keep]
        if not len(ids):
            break
        pos = np.minimum(pos[keep] + 1, last)
    long = np.zeros(len(numbers), bool)
    long[ids] = True
    if shape_only:
        long |= marked
    else:
        for k in np.flatnonzero(marked & ~long).tolist():
            start = end = int(numbers[k])
            while end == start or _NUMBER_BYTES[raw[end]]:
                end += 1
            token = raw[start:end].tobytes().lower()
            exponent = token[token.index(b"e") + 1 :].lstrip(b"+")
            long[k] = not exponent.startswith(b"-") and len(exponent.lstrip(b"0")) >= 3
    odd: Index = numbers[long]
    return odd


def _keyed(raw: npt.NDArray[np.uint8], colons: Index, value_at: Index, keys: list[bytes]) -> Index:
    """Value starts (``value_at``) of the colons that end ``"key":`` for one of ``keys``
    (``colons`` are all preceded by a quote)."""
    found = [np.zeros(0, np.int64)]
    if not len(colons):
        return found[0]
    last = raw[colons - 2]
    for key in keys:
        width = len(key)
        near = np.flatnonzero((last == key[-1]) & (colons > width + 1))
        cand = colons[near]
        same = raw[cand - width - 2] == _QUOTE
        for offset, byte in enumerate(key[:-1]):
            same &= raw[cand - width - 1 + offset] == byte
        found.append(value_at[near[same]])
    return np.concatenate(found)


def non_finite_rows(table: pa.Table) -> npt.NDArray[np.bool_]:
    """Per row: a float field anywhere in it (structs, lists of structs) is NaN or infinite."""
    bad = np.zeros(table.num_rows, bool)
    for name in table.column_names:
        _mark_non_finite(table[name].combine_chunks(), np.arange(table.num_rows), bad)
    return bad


def _mark_non_finite(arr: pa.Array, owners: Index, bad: npt.NDArray[np.bool_]) -> None:
    kind = arr.type
    if pa.types.is_floating(kind):
        finite = pc.fill_null(pc.is_finite(arr), True)
        bad[owners[~np.asarray(finite.to_numpy(zero_copy_only=False), bool)]] = True
    elif pa.types.is_struct(kind):
        for i in range(kind.num_fields):
            _mark_non_finite(pc.struct_field(arr, [i]), owners, bad)
    elif pa.types.is_list(kind):
        parents = pc.list_parent_indices(arr).to_numpy()
        _mark_non_finite(pc.list_flatten(arr), owners[parents], bad)


@dataclass(slots=True)
class DuckParse:
    """Parses the messages ``index`` (ascending) of ``data`` with DuckDB, one query per ~8 MiB.

    ``data`` holds the messages joined by newlines, ``starts`` where each begins (plus the end).
    A chunk of consecutive messages is handed over as a view of ``data``, others joined anew.
    A refused line sets aside the message(s) its error names (the line as printed and the one
    before: DuckDB numbers malformed and mistyped lines differently, and setting aside a good
    message is only slower) and the chunk is parsed again without them (DuckDB returns no rows
    of a failed query). The line is only a hint (a mistyped list item is reported "in line 1"
    wherever it is): when the same error comes back, after ``_MAX_ERRORS`` refusals, or for an
    error naming no line, this chunk and the later ones are left in ``rest`` for Arrow's parser.

    Attributes:
        batches: parsed rows, one per message of ``index`` minus the set-aside ones and ``rest``.
        rest: messages left unparsed, ascending.
    """

    messages: Sequence[bytes]
    data: bytearray
    starts: Index
    index: Index
    schema: pa.Schema
    threads: bool
    set_aside: Callable[[int], None]
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rest: Index = field(default_factory=lambda: np.zeros(0, np.int64))

    def run(self) -> None:
        index, starts = self.index, self.starts
        offsets = starts[index]
        cuts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], _CHUNK_BYTES)[1:])
        chunks = [c for c in np.split(index, cuts) if len(c)]
        errors = 0
        for k, whole in enumerate(chunks):
            chunk = whole
            view: bytes | memoryview
            if chunk[-1] - chunk[0] + 1 == len(chunk):
                view = memoryview(self.data)[starts[chunk[0]] : starts[chunk[-1] + 1] - 1]
            else:
                view = self._join(chunk)
            seen: set[tuple[int | None, str]] = set()
            while len(chunk):
                try:
                    self.batches.extend(read_ndjson([view], self.schema, threads=self.threads))
                    break
                except NdjsonError as exc:
                    errors += 1
                    line = exc.line or 0
                    bad = [i for i in (line - 2, line - 1) if 0 <= i < len(chunk)]
                    repeated = (exc.line, exc.text) in seen
                    seen.add((exc.line, exc.text))
                    if repeated or not bad or errors > _MAX_ERRORS:
                        self.rest = np.concatenate([chunk, *chunks[k + 1 :]])
                        return
                    for i in bad:
                        self.set_aside(int(chunk[i]))
                    chunk = np.delete(chunk, bad)
                    view = self._join(chunk)

    def _join(self, chunk: Index) -> bytes:
        messages = self.messages
        return b"\n".join([messages[i] for i in chunk.tolist()])
