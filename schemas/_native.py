"""The compiled parser (``maxlake_native``, built from ``native/`` by ``make install``).

A strict, schema-driven JSON parser in Rust that reads each message of a batch in one pass
straight into Arrow buffers (validity bitmaps, offsets, UTF-8 and number values), with the GIL
released. It accepts a message only when it reads it exactly as orjson and the exact decoder
would (see ``native/src/parse.rs``); every other message is dirty, for the exact decoder. When
the module is not importable (no Rust toolchain at install time) the Arrow path of
:mod:`schemas._fastparse` parses instead, and :data:`PARSER` says so.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from maxlake import native_parser
from maxlake.native_parser import PARSER, UNAVAILABLE, describe

__all__ = ["PARSER", "UNAVAILABLE", "announce", "available", "describe", "parse"]

logger = logging.getLogger(__name__)

_module: ModuleType | None = native_parser.module
"""The compiled module, or None (which one runs is decided in :mod:`maxlake.native_parser`)."""


def available() -> bool:
    """Whether the compiled parser is importable."""
    return _module is not None


_announced = False


def announce() -> None:
    """Logs once per process which parser the fast path runs: INFO for the native one, WARNING
    naming why when the Arrow fallback runs because ``maxlake_native`` is not importable."""
    global _announced  # noqa: PLW0603 - one line per process
    if _announced:
        return
    _announced = True
    if native_parser.PARSER == "arrow":
        logger.warning("decoder JSON parser: %s", native_parser.describe())
    else:
        logger.info("decoder JSON parser: %s", native_parser.describe())


Spec = tuple[tuple[str, str, "Spec"], ...]


@functools.lru_cache(maxsize=64)
def _compiled(schema: pa.Schema) -> Any:
    """The native schema of ``schema``; None when the parser cannot read it (a type it lacks,
    more than 64 fields in one object): the Arrow path parses such a schema."""
    assert _module is not None
    spec = _spec(list(schema))
    if spec is None:
        return None
    try:
        return _module.Schema(spec)
    except ValueError:  # more fields in one object than the parser tracks (64)
        return None


def _spec(fields: Sequence[pa.Field]) -> Spec | None:
    out = []
    for field in fields:
        kind = field.type
        children: Spec | None = ()
        if pa.types.is_string(kind):
            name = "utf8"
        elif pa.types.is_int64(kind):
            name = "int64"
        elif pa.types.is_float64(kind):
            name = "float64"
        elif pa.types.is_boolean(kind):
            name = "bool"
        elif pa.types.is_struct(kind):
            name, children = "struct", _spec(list(kind))
        elif pa.types.is_list(kind):
            name, children = "list", _spec([kind.value_field])
        else:
            return None
        if children is None:
            return None
        out.append((field.name, name, children))
    return tuple(out)


def parse(
    messages: Sequence[bytes], max_bytes: int, schema: pa.Schema
) -> tuple[pa.Table, npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """``(table, index, dirty)`` of ``messages`` parsed into ``schema``: one row per kept
    message, the input positions of the kept and of the dirty messages (int64, ascending).
    None when the batch is not all ``bytes`` or ``schema`` has a type the parser lacks."""
    assert _module is not None
    compiled = _compiled(schema)
    if compiled is None:
        return None
    out = _module.parse_batch(messages, max_bytes, compiled)
    if out is None:
        return None
    columns, index, dirty = out
    arrays = [_array(f.type, c) for f, c in zip(schema, columns, strict=True)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    return (
        table,
        np.frombuffer(memoryview(index), np.int64),
        np.frombuffer(memoryview(dirty), np.int64),
    )


def _array(kind: pa.DataType, column: Any) -> pa.Array:
    length, nulls, buffers, children = column
    if pa.types.is_struct(kind):
        kids = [_array(f.type, c) for f, c in zip(kind, children, strict=True)]
    elif pa.types.is_list(kind):
        kids = [_array(kind.value_type, children[0])]
    else:
        kids = None
    bufs = [None if b is None else pa.py_buffer(b) for b in buffers]
    return pa.Array.from_buffers(kind, length, bufs, nulls, children=kids)
