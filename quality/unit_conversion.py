"""Telemetry readings in the registry's unit: convertible units are converted before validation.

A reading sent in a unit that converts to its tag's registry unit (``degF`` for a ``degC`` tag,
``bar`` for ``kPa``) gets ``value`` and ``unit`` in the registry unit; what was sent is kept in
``value_sent`` and ``unit_sent`` (both null for readings sent in the registry unit). A unit that
does not convert, or converts only ambiguously (``Hz`` for ``rpm``, see
:meth:`schemas.units.UnitSystem.refusal`), is left as sent, so the suite's
``unit_matches_registry`` expectation drops the row with reason ``unit_mismatch`` (and the range
checks skip it). Range checks therefore run on converted values, and silver holds one unit per
tag. A reading without a unit is taken to be in the registry unit: ``unit`` gets the registry
unit, ``value_sent`` the value and ``unit_sent`` stays null (the mark of an assumed unit).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quality.enrich import RegistryIndex, derive_columns
from schemas import EventKind
from schemas.units import UnitSystem

__all__ = ["SENT_COLUMNS", "convert_units"]

SENT_COLUMNS = ("value_sent", "unit_sent")
"""Columns added to telemetry rows: the value and unit as sent, null when not converted."""


def convert_units(
    rows: pa.Table,
    index: RegistryIndex,
    units: UnitSystem,
    *,
    keys: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """``rows`` (decoded telemetry rows) with convertible readings in their registry unit.

    Returns the same rows, in order, plus :data:`SENT_COLUMNS`. Cost when every unit already
    matches: one registry lookup and one string comparison per row. ``keys`` receives the
    key columns derived on the way (see :func:`quality.enrich.derive_columns`).
    """
    n = rows.num_rows
    sent_value = pa.nulls(n, pa.float64())
    sent_unit = pa.nulls(n, pa.string())
    if n and "unit" in rows.column_names:
        registry_unit = derive_columns(
            EventKind.TELEMETRY, rows, ("registry_unit",), index, keys=keys
        ).column(0)
        unit = rows.column("unit")
        differs = pc.fill_null(pc.not_equal(unit, registry_unit), False)
        positions = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
        if positions.size:
            rows, sent_value, sent_unit = _convert(rows, positions, registry_unit, units)
        if unit.null_count:
            rows, sent_value = _assume(rows, registry_unit, sent_value)
    rows = _set(rows, "value_sent", sent_value)
    return _set(rows, "unit_sent", sent_unit)


def _convert(
    rows: pa.Table, positions: np.ndarray, registry_unit: pa.ChunkedArray, units: UnitSystem
) -> tuple[pa.Table, pa.Array, pa.Array]:
    values = rows.column("value").to_numpy().astype(np.float64, copy=True)
    unit_list = rows.column("unit").to_pylist()
    target_list = registry_unit.to_pylist()
    new_units = list(unit_list)
    sent_value: list[float | None] = [None] * rows.num_rows
    sent_unit: list[str | None] = [None] * rows.num_rows
    for i in positions.tolist():
        source, target = unit_list[i], target_list[i]
        conv = units.conversion(source, target)
        if conv is None:
            continue
        sent_value[i], sent_unit[i] = float(values[i]), source
        values[i] = values[i] * conv.scale + conv.offset
        new_units[i] = target
    rows = _set(rows, "value", pa.array(values, pa.float64()))
    rows = _set(rows, "unit", pa.array(new_units, pa.string()))
    return rows, pa.array(sent_value, pa.float64()), pa.array(sent_unit, pa.string())


def _assume(
    rows: pa.Table, registry_unit: pa.ChunkedArray, sent_value: pa.Array
) -> tuple[pa.Table, pa.Array]:
    """Readings without a unit: ``unit`` = the registry unit (when the tag is known) and
    ``value_sent`` = the value, ``unit_sent`` left null."""
    assumed = pc.and_(pc.is_null(rows.column("unit")), pc.is_valid(registry_unit))
    if not pc.any(assumed).as_py():
        return rows, sent_value
    unit = pc.if_else(assumed, registry_unit, rows.column("unit"))
    value = pc.if_else(assumed, rows.column("value"), pa.chunked_array([sent_value]))
    rows = _set(rows, "unit", unit.combine_chunks())
    return rows, value.combine_chunks()


def _set(rows: pa.Table, name: str, column: pa.Array) -> pa.Table:
    i = rows.schema.get_field_index(name)
    if i < 0:
        return rows.append_column(name, column)
    return rows.set_column(i, rows.schema.field(i).with_type(column.type), column)
