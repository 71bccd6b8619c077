"""The output leak scan: no raw identifier a contract hides may appear anywhere in a set.

Every string value of every split column (lists of strings included), every extra file's bytes
and every Parquet min/max statistic of the written files is searched for every hidden raw
identifier *as a substring*, so a pseudonymised line id inside a released serial
(``block-l1-11-00000001``) is found as well as a whole value. Values shaped like the gate's
own pseudonyms (``m_<20 hex>``) are skipped: they are HMAC output, and a short raw id made of
hex digits would otherwise match every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

__all__ = ["PSEUDONYM_PATTERN", "frame_leaks", "parquet_statistics", "text_leaks"]

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
    """How many of the raw identifiers occur anywhere in ``data``."""
    return sum(1 for value in raw if value.encode() in data)


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
