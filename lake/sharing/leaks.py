r"""The output leak scan: no raw identifier a contract hides may appear anywhere in a set.

Every text a reader can get out of a set is searched for every hidden raw identifier *as a
substring*, so a pseudonymised line id inside a released serial (``block-l1-11-00000001``) is
found as well as a whole value:

* every split column's values, whatever their type holds text in: strings, categoricals and
  the categories of an Enum (used or not), binary values (decoded as UTF-8, invalid bytes
  replaced), and the strings inside lists, arrays and structs, at any depth; and its name and
  its structs' field names (an identifier of 5 or more characters as a substring, a shorter one
  as a whole token: ``f1`` but not ``f1_score``) (:func:`frame_leaks`); numbers, times and
  booleans hold no text and are not searched;
* every Parquet min/max statistic of a text or binary column and every key-value metadata
  value of the written files, with the field metadata of the serialised Arrow schema (where
  polars keeps an Enum's categories) (:func:`parquet_statistics`);
* every extra file, as its bytes and as what a reader decodes from them
  (:func:`file_texts`): gzip, bz2, xz and zip files are opened (zip members' names too),
  Parquet files are read like splits, the strings of a JSON file are decoded, and ``\uXXXX``,
  ``\xXX``, ``%XX`` and ``&#N;`` escapes in any text are decoded too. A file that is none of
  these and not UTF-8 (or UTF-16 with a byte-order mark) text cannot be checked, and the
  build refuses it (:class:`lake.sharing.IdentifierLeak`).

Values shaped like the gate's own pseudonyms (``m_<20 hex>``) are skipped: they are HMAC
output, and a short raw id made of hex digits would otherwise match every one of them; for the
same reason, in bytes such an id is not counted inside a longer run of 16 or more hex digits
(hashes in a manifest), and an id made of digits only counts only as a token of its own (not
``12`` in ``31.12``, ``2026-12-01``, ``120`` or ``n12``; ``lot-12`` and ``"12"`` count).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "PSEUDONYM_PATTERN",
    "file_texts",
    "frame_leaks",
    "leaked_values",
    "normal_text",
    "parquet_statistics",
    "text_leaks",
    "text_mentions",
]

PSEUDONYM_PATTERN = r"^(t|p|l|m|s|lot|e|c)_[0-9a-f]{20}$"
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


def frame_leaks(frame: pl.DataFrame, raw: Sequence[str]) -> dict[str, int]:
    """Column -> number of values holding a raw identifier (columns without any are left out).

    A column's values are every text it holds (:func:`_texts`): a list or struct column counts
    each string inside it, an Enum column each of its values and categories; its name and its
    structs' field names count too (:func:`_named`). An
    identifier made of decimal digits only counts as a token of its own (see
    :func:`leaked_values`: ``lot-12``, not ``n12`` or ``31.12``)."""
    out: dict[str, int] = {}
    if not raw:
        return out
    normal = [normal_text(v) for v in raw]
    needles = [v for v in normal if not v.isdigit()]
    numbers = (
        _digit_ids_pattern([v for v in normal if v.isdigit()])
        if len(needles) < len(normal)
        else None
    )
    for column in frame.columns:
        hits = len(_named(column, frame.schema[column], raw))
        for texts in _texts(frame.get_column(column)):
            values = texts.drop_nulls()
            values = values.filter(~values.str.contains(PSEUDONYM_PATTERN))
            if values.str.contains(_NON_ASCII).any():
                values = values.str.normalize("NFKC").str.replace_all(_DASH_CLASS, "-")
            found = pl.Series(values.name, [False] * values.len(), pl.Boolean)
            if needles:
                found = values.str.contains_any(needles, ascii_case_insensitive=True)
            if numbers is not None:
                found = found | values.str.contains(numbers)
            hits += int(found.sum())
        if hits:
            out[column] = hits
    return out


def _named(column: str, dtype: object, raw: Sequence[str]) -> list[str]:
    """The raw identifiers a column's name or its structs' field names hold (both are in every
    reader's schema): an identifier of at least ``_MIN_JOINED`` characters as a substring
    (``mean_cnc-101``), a shorter one only as a whole token (``f1``, not ``f1_score``)."""
    names = [column, *_field_names(dtype)]
    text = "\n".join(names).encode("utf-8")
    long = [v for v in raw if len(v) >= _MIN_JOINED]
    short = [v for v in raw if len(v) < _MIN_JOINED]
    return leaked_values(text, long) + text_mentions(text, short)


def _field_names(dtype: object) -> list[str]:
    if isinstance(dtype, pl.Struct):
        return [n for f in dtype.fields for n in (f.name, *_field_names(f.dtype))]
    if isinstance(dtype, pl.List | pl.Array):
        return _field_names(dtype.inner)
    return []


def _texts(values: pl.Series) -> Iterator[pl.Series]:
    """The String series of every text ``values`` holds, at any depth."""
    dtype = values.dtype
    if isinstance(dtype, pl.Enum):
        yield dtype.categories
        yield values.cast(pl.String)
    elif isinstance(dtype, pl.Categorical):
        yield values.cast(pl.String)
    elif dtype == pl.String:
        yield values
    elif dtype == pl.Binary:
        decoded = [None if v is None else v.decode("utf-8", "replace") for v in values]
        yield pl.Series(values.name, decoded, pl.String)
    elif isinstance(dtype, pl.List | pl.Array):
        inner = values.list.explode() if isinstance(dtype, pl.List) else values.arr.explode()
        yield from _texts(inner)
    elif isinstance(dtype, pl.Struct):
        for field in values.struct.unnest().iter_columns():
            yield from _texts(field)


def text_leaks(data: bytes, raw: Sequence[str]) -> int:
    """How many of the raw identifiers occur anywhere in ``data`` (see :func:`leaked_values`)."""
    return len(leaked_values(data, raw))


def leaked_values(data: bytes, raw: Sequence[str]) -> list[str]:
    """The raw identifiers that occur in ``data``, in ``raw``'s order.

    An occurrence inside a run of 16 or more hexadecimal digits (a sha256, a pseudonym, a token
    id) does not count for an identifier made of hex digits only: a short machine id such as
    ``f2`` would otherwise be found in most hashes. An identifier made of decimal digits only
    counts as a token of its own: not next to a letter or digit (``n12``, ``120``), nor joined
    to a digit by ``.``, ``,``, ``-``, ``:``, ``/`` or ``+`` (``31.12``, ``2026-12-01``).
    Both sides are compared in :func:`normal_text` form (any letter case, any dash).
    """
    found = []
    data = _normal_bytes(data)
    for value in raw:
        needle = normal_text(value).encode("utf-8")
        start = data.find(needle)
        hexish = bool(_HEX_ONLY.fullmatch(needle))
        digits = needle.isdigit()
        while start >= 0 and (
            (hexish and _inside_hex_run(data, start, len(needle)))
            or (digits and _inside_number(data, start, len(needle)))
        ):
            start = data.find(needle, start + 1)
        if start >= 0:
            found.append(value)
    return found


_HEX_ONLY = re.compile(rb"[0-9a-fA-F]+")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_HEX_RUN = 16


def _inside_hex_run(data: bytes, start: int, length: int) -> bool:
    lo, hi = start, start + length
    while lo > 0 and data[lo - 1] in _HEX_DIGITS:
        lo -= 1
    while hi < len(data) and data[hi] in _HEX_DIGITS:
        hi += 1
    return hi - lo >= _HEX_RUN and hi - lo > length


_NUMBER_JOINERS = frozenset(b".,-:/+")
_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _inside_number(data: bytes, start: int, length: int) -> bool:
    """Whether the digits at ``data[start:start + length]`` are part of a longer token: next to
    a letter or digit, or joined to a digit by ``. , - : / +`` (a float, a date, a time)."""
    before = data[max(0, start - 2) : start]
    after = data[start + length : start + length + 2]
    if (before[-1:] and before[-1] in _ALNUM) or (after[:1] and after[0] in _ALNUM):
        return True
    joined_before = len(before) == 2 and before[1] in _NUMBER_JOINERS and before[0] in _DIGITS
    joined_after = len(after) == 2 and after[0] in _NUMBER_JOINERS and after[1] in _DIGITS
    return joined_before or joined_after


_JOINERS_CLASS = r".,:/+\-"
_LEFT = rf"(?:^|[^0-9A-Za-z{_JOINERS_CLASS}]|(?:^|[^0-9])[{_JOINERS_CLASS}])"
_RIGHT = rf"(?:$|[^0-9A-Za-z{_JOINERS_CLASS}]|[{_JOINERS_CLASS}](?:$|[^0-9]))"


def _digit_ids_pattern(ids: Sequence[str]) -> str:
    """A regular expression finding any of ``ids`` (decimal digits only) as a token of its own
    (the rule of :func:`_inside_number`), for polars' string search."""
    return _LEFT + "(?:" + "|".join(sorted(ids, key=len, reverse=True)) + ")" + _RIGHT


_DASHES = dict.fromkeys(
    [0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63], "-"
)
_NON_ASCII = r"[^\x00-\x7f]"
_DASH_CLASS = "[\u2010-\u2015\u2212\ufe58\ufe63]"


def normal_text(text: str) -> str:
    """``text`` as the identifier checks compare it: NFKC (full-width letters and digits,
    ligatures), every Unicode dash and the minus sign as ``-``, lower case. A reader reads
    ``CNC\u2013101`` and ``ｃｎｃ-101`` as ``cnc-101``."""
    return unicodedata.normalize("NFKC", text).translate(_DASHES).lower()


def _normal_bytes(data: bytes) -> bytes:
    if data.isascii():
        return data.lower()
    return normal_text(data.decode("utf-8", "replace")).encode("utf-8")


def text_mentions(text: bytes, raw: Sequence[str]) -> list[str]:
    """The raw identifiers ``text`` (generated prose: a manifest, a data card) names, as whole
    tokens and in any letter case, in ``raw``'s order.

    A token is delimited by characters other than ASCII letters, digits, ``_`` and ``-``, and a
    ``.`` before a digit does not delimit (``12`` is not found in ``12.5`` or ``2026-12-01``,
    ``f1`` not in ``f1-score``, ``cnc-101`` is found in ``(CNC-101)`` and at a sentence's end).
    No identifier is found in a time of day written in full (``12`` is not in the time
    ``11:12:53`` of a manifest's ``created_at``: a build at minute 12 of any hour was refused
    for lot ``12``); ids listed as ``12,13``, ``12/13``, ``12+13`` or ``7:12`` are found.
    An identifier whose separators (``-``, ``_``, ``.``) join parts of at least 5 characters
    in all is also found written without them or with spaces (``cnc101``, ``CNC 101``,
    ``northwind auto``). Both sides are compared in :func:`normal_text` form, after the JSON
    and URL escapes of the text are decoded. Substrings inside longer tokens are what
    :func:`leaked_values` finds in values and files.
    """
    if not raw:
        return []
    spellings = sorted({p for v in raw if v for p in _spellings(v)}, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![A-Za-z0-9_.\-])(" + "|".join(spellings) + r")(?![A-Za-z0-9_\-]|\.[0-9])",
        re.IGNORECASE,
    )
    decoded = _ESCAPES.sub(_unescape, text).decode("utf-8", "replace")
    prose = _TIME_OF_DAY.sub(" ", normal_text(decoded))
    seen = {_compact(m.group(1)) for m in pattern.finditer(prose)}
    return [v for v in raw if _compact(v) in seen]


_TIME_OF_DAY = re.compile(r"(?<![0-9:])[0-2][0-9]:[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?![0-9:])")
"""A time of day written in full (``11:12:53``, ``11:12:53.123``), as in a manifest's
``created_at``: not read as mentions of its figures. A shorter ``7:12`` may be a ratio or a list
of ids, and is read."""

_SEPARATORS = re.compile(r"[-_.\s]+")


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", normal_text(value))


def _spellings(value: str) -> list[str]:
    """Regular expressions of the ways prose writes ``value`` (see :func:`text_mentions`)."""
    word = normal_text(value)
    out = [re.escape(word)]
    parts = [p for p in re.split(r"[-_.]", word) if p]
    if len(parts) > 1 and sum(map(len, parts)) >= _MIN_JOINED:
        out += ["".join(map(re.escape, parts)), r"\s+".join(map(re.escape, parts))]
    return out


_MIN_JOINED = 5


def parquet_statistics(path: Path | io.BytesIO) -> list[str]:
    """Every min/max statistic of a text or binary column and every key-value metadata value of
    a Parquet file, as text, with the field metadata of its Arrow schema (an Enum's categories)
    instead of the serialised schema itself, less the gate's own pseudonyms. Statistics of
    numbers and times are figures, not text, and are left out."""
    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    out: list[str] = [
        v.decode("utf-8", "replace")
        for k, v in (meta.metadata or {}).items()
        if k != b"ARROW:schema"
    ]
    out += _field_metadata(parquet.schema_arrow)
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            chunk = meta.row_group(group).column(column)
            if chunk.physical_type not in _TEXT_TYPES:
                continue
            stats = chunk.statistics
            if stats is not None and stats.has_min_max:
                out += [_stat_text(stats.min), _stat_text(stats.max)]
    return [v for v in out if not _PSEUDONYM.fullmatch(v)]


_TEXT_TYPES = frozenset({"BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"})


def _stat_text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _field_metadata(schema: pa.Schema) -> list[str]:
    out: list[str] = []

    def walk(field: pa.Field) -> None:
        out.extend(v.decode("utf-8", "replace") for v in (field.metadata or {}).values())
        for index in range(field.type.num_fields):
            walk(field.type.field(index))

    for field in schema:
        walk(field)
    return out


_MAX_DECODED = 64 * 2**20
_MAX_DEPTH = 4
_ESCAPES = re.compile(
    rb"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|%([0-9a-fA-F]{2})"
    rb"|&#([0-9]{1,7});|&#[xX]([0-9a-fA-F]{1,6});"
)


def file_texts(data: bytes) -> list[bytes] | None:
    """What a reader can decode from an extra file's bytes, as UTF-8 texts to search: the bytes
    themselves, the contents of a gzip, bz2, xz or zip file (zip members' names too) and of
    Parquet files (every text value and statistic), the strings of a JSON document, and any
    text with its escapes decoded (see the module doc). None when the file is none of these
    and not UTF-8 or UTF-16 text (with a byte-order mark): it cannot be checked.
    """
    out: list[bytes] = []
    return out if _decode_into(out, data, 0) else None


def _decode_into(out: list[bytes], data: bytes, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    opened = _open_container(data)
    if opened is not None:
        out.append(data)
        return all(_decode_into(out, part, depth + 1) for part in opened)
    if data.startswith(b"PAR1"):
        out.append(data)
        return _parquet_texts(out, data)
    text = _as_text(data)
    if text is None:
        return False
    encoded = text.encode("utf-8")
    out.append(encoded)
    if encoded is not data and encoded != data:
        out.append(data)
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if document is not None:
        out.append("\n".join(_json_strings(document)).encode("utf-8", "replace"))
    if _ESCAPES.search(encoded):
        out.append(_ESCAPES.sub(_unescape, encoded))
    return True


def _open_container(data: bytes) -> list[bytes] | None:
    """The parts of a compressed or archive file (None if ``data`` is not one, or cannot be
    opened as one: then it is read as text, or refused as unreadable)."""
    try:
        if data[:2] == b"\x1f\x8b":
            return [_bounded(gzip.GzipFile(fileobj=io.BytesIO(data)))]
        if data[:3] == b"BZh":
            return [_bounded(bz2.BZ2File(io.BytesIO(data)))]
        if data[:6] == b"\xfd7zXZ\x00":
            return [_bounded(lzma.LZMAFile(io.BytesIO(data)))]
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                parts = ["\n".join(archive.namelist()).encode("utf-8")]
                for info in archive.infolist():
                    parts.append(_bounded(archive.open(info), sum(map(len, parts))))
                return parts
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        lzma.LZMAError,
        zipfile.BadZipFile,
        _TooLarge,
    ):
        return None
    return None


class _TooLarge(Exception):
    pass


def _bounded(stream: Any, used: int = 0) -> bytes:
    """``stream``'s bytes; :class:`_TooLarge` beyond ``_MAX_DECODED`` (with ``used`` already
    decoded: a decompression bomb is not a file the check can read)."""
    with stream:
        data: bytes = stream.read(_MAX_DECODED - used + 1)
    if used + len(data) > _MAX_DECODED:
        raise _TooLarge
    return data


def _parquet_texts(out: list[bytes], data: bytes) -> bool:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
        stats = parquet_statistics(io.BytesIO(data))
    except (OSError, ValueError, pl.exceptions.PolarsError, pa.ArrowException):
        return False
    texts = [t for column in frame.iter_columns() for t in _texts(column)]
    values = [v for t in texts for v in t.drop_nulls().to_list()]
    out.append("\n".join([*frame.columns, *values, *stats]).encode("utf-8", "replace"))
    return True


def _as_text(data: bytes) -> str | None:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _json_strings(document: object) -> Iterator[str]:
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for key, value in document.items():
            yield str(key)
            yield from _json_strings(value)
    elif isinstance(document, list):
        for item in document:
            yield from _json_strings(item)


def _unescape(match: re.Match[bytes]) -> bytes:
    unicode, hex_byte, percent, decimal, hex_ref = match.groups()
    if unicode is not None:
        code = int(unicode, 16)
    elif hex_byte is not None or percent is not None:
        code = int(hex_byte or percent, 16)
    else:
        code = int(decimal, 10) if decimal is not None else int(hex_ref, 16)
    return chr(min(code, 0x10FFFF)).encode("utf-8", "replace")
