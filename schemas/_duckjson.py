"""DuckDB's newline-delimited JSON reader, the one place the project calls ``duckdb``.

:func:`read_ndjson` parses in-memory chunks of one-object-per-line JSON into Arrow record
batches of a given schema. The chunks reach DuckDB as anonymous in-memory files
(``memfd_create``, read through ``/proc/self/fd``); where that is unavailable, as temporary files
removed after the read. Nothing is left on disk either way.

DuckDB's reader is lenient where orjson is strict (it converts between scalar types, reads
``nan``/``inf`` in any case, allows trailing commas, ignores non-finite numbers in fields it
skips): callers must prescreen the bytes (see :mod:`schemas._fastduck`). Its error messages
name a line, numbered differently per kind of error (one-based for a value that does not fit
the schema, one past that for malformed JSON): :class:`NdjsonError` carries the chunk and the
line as printed, and callers treat it as a hint.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

__all__ = ["NdjsonError", "read_ndjson"]

_LOCAL = threading.local()
_ERROR = re.compile(r'in file "([^"]*)",(?: at byte \d+)? in line (\d+)')


class NdjsonError(Exception):
    """DuckDB refused a chunk.

    Attributes:
        chunk: index of the chunk named by the error, or None when it names none.
        line: the line number DuckDB printed (see the module docstring), or None.
        text: DuckDB's message.
    """

    def __init__(self, chunk: int | None, line: int | None, text: str) -> None:
        self.chunk = chunk
        self.line = line
        self.text = text
        super().__init__(f"chunk {chunk}, line {line}: {text}")


def read_ndjson(
    chunks: Sequence[bytes | bytearray | memoryview], schema: pa.Schema, *, threads: bool
) -> list[pa.RecordBatch]:
    """Record batches of ``schema`` from ``chunks`` (each newline-delimited JSON objects), in
    order: one row per non-blank line, missing and unknown keys as DuckDB reads them (null,
    ignored). ``threads`` lets DuckDB use every core; otherwise it runs on the calling thread.

    Raises:
        NdjsonError: DuckDB refused a line (no rows are returned then).
    """
    with _files(chunks) as paths:
        con = _connection(threads)
        listed = ", ".join(_quote(p) for p in paths)
        query = (
            f"select * from read_ndjson([{listed}], columns={_columns(schema)}, "
            "format='newline_delimited')"
        )
        try:
            table = con.sql(query).to_arrow_table()
        except _duckdb().Error as exc:
            text = str(exc)
            found = _ERROR.search(text)
            if found is None or found.group(1) not in paths:
                raise NdjsonError(None, None, text) from exc
            raise NdjsonError(paths.index(found.group(1)), int(found.group(2)), text) from exc
    if table.schema != schema:
        table = table.cast(schema)
    batches: list[pa.RecordBatch] = table.to_batches()
    return batches


def _duckdb() -> Any:
    import duckdb  # noqa: PLC0415  (~50 MiB resident: loaded on first use only)

    return duckdb


def _connection(threads: bool) -> Any:
    """This thread's connection (DuckDB connections are not shared between threads)."""
    cons: dict[bool, Any] = _LOCAL.__dict__.setdefault("cons", {})
    con = cons.get(threads)
    if con is None:
        config = {
            "threads": (os.cpu_count() or 1) if threads else 1,
            "enable_external_file_cache": False,
            "preserve_insertion_order": True,
        }
        con = cons[threads] = _duckdb().connect(":memory:", config=config)
    return con


@contextlib.contextmanager
def _files(chunks: Sequence[bytes | bytearray | memoryview]) -> Iterator[list[str]]:
    """Paths DuckDB can read holding ``chunks``; closed or removed on exit."""
    fds: list[int] = []
    paths: list[str] = []
    try:
        for chunk in chunks:
            fd = _memfd()
            if fd is None:
                fd, path = tempfile.mkstemp(suffix=".ndjson", dir=_TMP_DIR)
                paths.append(path)
                fds.append(fd)
            else:
                fds.append(fd)
                paths.append(f"/proc/self/fd/{fd}")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        yield paths
    finally:
        for fd, path in zip(fds, paths, strict=False):
            os.close(fd)
            if not path.startswith("/proc/"):
                os.unlink(path)


_TMP_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
_MEMFD_OK = hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _memfd() -> int | None:
    if not _MEMFD_OK:
        return None
    try:
        return os.memfd_create("maxlake-ndjson", os.MFD_CLOEXEC)
    except OSError:
        return None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _columns(schema: pa.Schema) -> str:
    """``schema`` as read_ndjson's ``columns`` struct literal."""
    return "{" + ", ".join(f"{_quote(f.name)}: {_quote(_sql_type(f.type))}" for f in schema) + "}"


def _sql_type(kind: pa.DataType) -> str:
    if pa.types.is_string(kind):
        return "VARCHAR"
    if pa.types.is_int64(kind):
        return "BIGINT"
    if pa.types.is_float64(kind):
        return "DOUBLE"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_list(kind):
        return _sql_type(kind.value_type) + "[]"
    if pa.types.is_struct(kind):
        fields = ", ".join('"' + f.name.replace('"', '""') + '" ' + _sql_type(f.type) for f in kind)
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB type for {kind}; known: string, int64, float64, bool, list, struct")
