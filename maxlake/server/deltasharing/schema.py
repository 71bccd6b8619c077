"""Arrow schemas as the protocol's ``schemaString`` (the Spark/Delta JSON schema).

Delta has no unsigned integers: ``uint8/16/32`` widen to the next signed type and ``uint64``
becomes ``decimal(20,0)``. Every timestamp is announced as ``timestamp`` (the Python connector
rejects ``timestamp_ntz``); the Parquet file keeps its own time zone annotation, which is what
readers use. Dictionary columns are announced as their value type.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

__all__ = ["UnsupportedType", "delta_type", "schema_string"]

_PRIMITIVES: list[tuple[Any, str]] = [
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "byte"),
    (pa.types.is_int16, "short"),
    (pa.types.is_uint8, "short"),
    (pa.types.is_int32, "integer"),
    (pa.types.is_uint16, "integer"),
    (pa.types.is_int64, "long"),
    (pa.types.is_uint32, "long"),
    (pa.types.is_uint64, "decimal(20,0)"),
    (pa.types.is_float16, "float"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_binary, "binary"),
    (pa.types.is_large_binary, "binary"),
    (pa.types.is_date, "date"),
    (pa.types.is_timestamp, "timestamp"),
]


class UnsupportedType(TypeError):
    """An Arrow type with no Delta counterpart (a server-side error: the set cannot be shared)."""


def schema_string(schema: pa.Schema) -> str:
    """The ``schemaString`` of ``schema`` (compact JSON)."""
    return json.dumps(_struct(list(schema)), separators=(",", ":"))


def delta_type(dtype: pa.DataType) -> str | dict[str, Any]:
    """The Delta type of one Arrow type.

    Raises:
        UnsupportedType: no counterpart (e.g. durations, unions).
    """
    if pa.types.is_dictionary(dtype):
        return delta_type(dtype.value_type)
    for test, name in _PRIMITIVES:
        if test(dtype):
            return name
    if pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return {
            "type": "array",
            "elementType": delta_type(dtype.value_type),
            "containsNull": dtype.value_field.nullable,
        }
    if pa.types.is_struct(dtype):
        return _struct([dtype.field(i) for i in range(dtype.num_fields)])
    if pa.types.is_map(dtype):
        return {
            "type": "map",
            "keyType": delta_type(dtype.key_type),
            "valueType": delta_type(dtype.item_type),
            "valueContainsNull": dtype.item_field.nullable,
        }
    raise UnsupportedType(f"Arrow type {dtype} has no Delta Sharing type")


def _struct(fields: list[pa.Field]) -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [
            {"name": f.name, "type": delta_type(f.type), "nullable": f.nullable, "metadata": {}}
            for f in fields
        ],
    }
