"""Telemetry readings in the registry's unit: convertible units are converted before validation.

A reading sent in a unit that converts to its tag's registry unit (``degF`` for a ``degC`` tag,
``bar`` for ``kPa``) gets ``value`` and ``unit`` in the registry unit; what was sent is kept in
``value_sent`` and ``unit_sent`` (null for readings that needed no conversion). A unit that does
not convert is left as sent, so the suite's ``unit_matches_registry`` expectation drops the row
with reason ``unit_mismatch``. Range checks therefore run on converted values, and silver holds
one unit per tag. Readings without a unit are taken to be in the registry unit.
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


def _set(rows: pa.Table, name: str, column: pa.Array) -> pa.Table:
    i = rows.schema.get_field_index(name)
    if i < 0:
        return rows.append_column(name, column)
    return rows.set_column(i, rows.schema.field(i).with_type(column.type), column)
