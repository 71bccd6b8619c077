"""The output leak scan: no raw identifier a contract hides may appear anywhere in a set.

Every string value of every split column (lists of strings included), every extra file's bytes
and every Parquet min/max statistic of the written files is searched for every hidden raw
identifier *as a substring*, so a pseudonymised line id inside a released serial
(``block-l1-11-00000001``) is found as well as a whole value. Values shaped like the gate's
own pseudonyms (``m_<20 hex>``) are skipped: they are HMAC output, and a short raw id made of
hex digits would otherwise match every one of them; for the same reason, in bytes such an id
is not counted inside a run of 16 or more hex digits (hashes in a manifest).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

__all__ = [
    "PSEUDONYM_PATTERN",
    "frame_leaks",
    "leaked_values",
    "parquet_statistics",
    "text_leaks",
    "text_mentions",
]

PSEUDONYM_PATTERN = r"^(t|p|l|m|s|lot|e|c)_[0-9a-f]{20}$"
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


def frame_leaks(frame: pl.DataFrame, raw: Sequence[str]) -> dict[str, int]:
    """Column -> number of values holding a raw identifier (columns without any are left out)."""
    out: dict[str, int] = {}
    if not raw:
        return out
    for column, dtype in frame.schema.items():
        values = frame.get_column(column)
        if isinstance(dtype, pl.List):
            values = values.explode()
        if values.dtype in (pl.Categorical, pl.Enum):
            values = values.cast(pl.String)
        if values.dtype != pl.String:
            continue
        values = values.drop_nulls()
        values = values.filter(~values.str.contains(PSEUDONYM_PATTERN))
        hits = int(values.str.contains_any(list(raw)).sum())
        if hits:
            out[column] = hits
    return out


def text_leaks(data: bytes, raw: Sequence[str]) -> int:
    """How many of the raw identifiers occur anywhere in ``data`` (see :func:`leaked_values`)."""
    return len(leaked_values(data, raw))


def leaked_values(data: bytes, raw: Sequence[str]) -> list[str]:
    """The raw identifiers that occur in ``data``, in ``raw``'s order.

    An occurrence inside a run of 16 or more hexadecimal digits (a sha256, a pseudonym, a token
    id) does not count for an identifier made of hex digits only: a short machine id such as
    ``f2`` would otherwise be found in most hashes.
    """
    found = []
    for value in raw:
        needle = value.encode()
        start = data.find(needle)
        hexish = bool(_HEX_ONLY.fullmatch(needle))
        while start >= 0 and hexish and _inside_hex_run(data, start, len(needle)):
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


def text_mentions(text: bytes, raw: Sequence[str]) -> list[str]:
    """The raw identifiers ``text`` (generated prose: a manifest, a data card) names, as whole
    tokens and in any letter case, in ``raw``'s order.

    A token is delimited by characters other than ASCII letters, digits, ``_`` and ``-``, and a
    ``.`` before a digit does not delimit (``12`` is not found in ``12.5`` or ``2026-12-01``,
    ``f1`` not in ``f1-score``, ``cnc-101`` is found in ``(CNC-101)`` and at a sentence's end).
    Substrings inside longer tokens are what :func:`leaked_values` finds in values and files.
    """
    if not raw:
        return []
    words = sorted({v.casefold() for v in raw if v}, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![A-Za-z0-9_.\-])(" + "|".join(map(re.escape, words)) + r")(?![A-Za-z0-9_\-]|\.[0-9])",
        re.IGNORECASE,
    )
    seen = {m.group(1).casefold() for m in pattern.finditer(text.decode("utf-8", "replace"))}
    return [v for v in raw if v.casefold() in seen]


def parquet_statistics(path: Path) -> list[str]:
    """Every min/max statistic and key-value metadata value of a Parquet file, as text, less
    the gate's own pseudonyms and the serialised Arrow schema (base64, column names only)."""
    meta = pq.ParquetFile(path).metadata
    out: list[str] = [
        v.decode("utf-8", "replace")
        for k, v in (meta.metadata or {}).items()
        if k != b"ARROW:schema"
    ]
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            stats = meta.row_group(group).column(column).statistics
            if stats is not None and stats.has_min_max:
                out += [str(stats.min), str(stats.max)]
    return [v for v in out if not _PSEUDONYM.fullmatch(v)]
