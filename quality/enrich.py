"""Registry facts joined onto a batch, so that suites check them with plain GX expectations.

Great Expectations compares columns with constants or with other columns of the same row; it
cannot look a machine's tag range up in the asset registry. So before validation the gateway
adds *derived columns*: hash lookups (``pyarrow.compute.index_in`` on composite keys, an
order-preserving vectorised join) of the registry tables built once in :class:`RegistryIndex`,
plus a few per-row computations (latency, process duration). One GX expectation then checks
every tag's range at once through a column pair such as ``value >= tag_min``.

Only derived columns that the suite reads are computed. Their names and meanings are listed in
:data:`DERIVED_COLUMNS` and in docs/QUALITY.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import EventKind, Registry
from schemas.registry import DimensionSpec
from schemas.units import UnitSystem

__all__ = ["DERIVED_COLUMNS", "KEY_SEP", "RegistryIndex", "derive_columns", "raw_columns_needed"]

KEY_SEP = "/"
"""Separator of composite keys; ids cannot contain it (see ``schemas.ID_PATTERN``)."""

_STR = pa.string()
_ENVELOPE = ("tenant", "plant", "line", "machine")


class RegistryIndex:
    """Registry lookups as Arrow arrays, built once per gateway.

    Attributes:
        machine_keys: ``tenant/plant/line/machine`` per machine.
        machine_types: the machine type of each entry of ``machine_keys``.
        tag_keys: ``machine_type/tag`` per tag spec, with ``tag_min``, ``tag_max``,
            ``tag_unit`` aligned to it.
        alarm_keys: ``machine_type/code`` per alarm spec, with ``alarm_severity``.
        tenant_machines: ``tenant/machine`` for every machine of every tenant.
        tenant_defects: ``tenant/defect_code`` for the defect codes of every machine type a
            tenant operates.
        tenant_dimensions: ``(tenant, dimension name)`` -> the registry's dimension spec.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.tenant_dimensions: Mapping[tuple[str, str], DimensionSpec] = MappingProxyType(
            registry.tenant_dimensions()
        )
        machines = registry.machines()
        self.machine_keys = _join([machines[c] for c in ("tenant", "plant", "line", "machine")])
        self.machine_types = machines["machine_type"].combine_chunks()
        ranges = registry.tag_ranges()
        self.tag_keys = _join([ranges["machine_type"], ranges["tag"]])
        self.tag_min = ranges["min"].combine_chunks()
        self.tag_max = ranges["max"].combine_chunks()
        self.tag_unit = ranges["unit"].combine_chunks()
        units = pc.dictionary_encode(self.tag_unit)
        self.tag_unit_codes = units.indices
        self.tag_unit_values = units.dictionary
        types = registry.machine_types
        alarms = [(t.id, a.code, a.severity) for t in types.values() for a in t.alarms]
        self.alarm_keys = pa.array([f"{t}{KEY_SEP}{c}" for t, c, _ in alarms], _STR)
        self.alarm_severity = pa.array([s for _, _, s in alarms], pa.int16())
        self.tenant_machines = pc.unique(_join([machines["tenant"], machines["machine"]]))
        self.hierarchy: frozenset[tuple[str, ...]] = frozenset(
            key[:depth]
            for key in zip(*(machines[c].to_pylist() for c in _ENVELOPE), strict=True)
            for depth in (1, 2, 3)
        )
        """Every known ``(tenant,)``, ``(tenant, plant)`` and ``(tenant, plant, line)``."""
        pairs = {
            (tenant, code)
            for tenant, mtype in zip(
                machines["tenant"].to_pylist(), machines["machine_type"].to_pylist(), strict=True
            )
            for code in types[mtype].defect_codes
        }
        self.tenant_defects = pa.array(sorted(f"{t}{KEY_SEP}{c}" for t, c in pairs), _STR)
        self.placeholders: Mapping[str, list[str]] = MappingProxyType(
            {
                "machine_keys": sorted(self.machine_keys.to_pylist()),
                "machine_types": sorted(types),
                "machine_type_tags": sorted(self.tag_keys.to_pylist()),
                "machine_type_alarm_codes": sorted(self.alarm_keys.to_pylist()),
                "alarm_codes": sorted({a.code for t in types.values() for a in t.alarms}),
                "defect_codes": sorted({d for t in types.values() for d in t.defect_codes}),
                "tenants": sorted(t.id for t in registry.tenants),
            }
        )
        """Values of the ``$registry.<name>`` suite placeholders."""

    @property
    def units(self) -> UnitSystem:
        """The registry's unit system (pint plus its ``[[units]]``; shared, cached)."""
        return self._registry.unit_system()


class _Batch:
    """The rows of one batch plus the columns computed so far (memoised)."""

    def __init__(self, rows: pa.Table, index: RegistryIndex, kind: EventKind) -> None:
        self.rows = rows
        self.index = index
        self.kind = kind
        self.n = rows.num_rows
        self.cache: dict[str, pa.Array] = {}

    def col(self, name: str) -> pa.Array:
        """A row column as one chunk, or a derived column of this batch's kind."""
        if name not in self.cache:
            spec = _DERIVED.get(name)
            if spec is not None and self.kind in spec.kinds:
                self.cache[name] = spec.compute(self)
            else:
                self.cache[name] = self.rows.column(name).combine_chunks()
        return self.cache[name]

    def memo(self, key: str, compute: Callable[[], pa.Array]) -> pa.Array:
        """An intermediate array shared by several derived columns."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


def _join(parts: list[pa.Array | pa.ChunkedArray]) -> pa.Array:
    joined = pc.binary_join_element_wise(*parts, KEY_SEP)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _plain(arr: pa.Array) -> pa.Array:
    """A dictionary array's values, row by row; other arrays as they are."""
    return arr.dictionary.take(arr.indices) if pa.types.is_dictionary(arr.type) else arr


def _dictionary(arr: pa.Array) -> pa.DictionaryArray:
    """``arr`` dictionary-encoded (unique, non-null dictionary values; nulls in the indices)."""
    return arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)


def _recode(indices: pa.Array, values: pa.Array) -> pa.DictionaryArray:
    """Rows ``values.take(indices)`` as a dictionary array with unique, non-null values."""
    encoded = pc.dictionary_encode(values)
    return pa.DictionaryArray.from_arrays(encoded.indices.take(indices), encoded.dictionary)


_DENSE_GROUPS = 1 << 20
"""Largest product of the parts' dictionary sizes that :func:`_join_keys` groups through a
lookup table of that many entries instead of hashing the rows' combined codes."""


def _join_keys(parts: list[pa.Array]) -> pa.DictionaryArray:
    """``_join(parts)`` as a dictionary array: each distinct combination is joined once.

    A batch holds few distinct machines and tags, so the rows are grouped by the codes of
    their parts (integer work) and only one row per group is joined into a string."""
    n = len(parts[0])
    encoded = [_dictionary(part) for part in parts]
    code = np.zeros(n, np.int64)
    bound = 1
    for part in encoded:
        size = len(part.dictionary) + 1
        if bound * size >= 1 << 62:
            compact = pc.dictionary_encode(pa.array(code))
            code = compact.indices.to_numpy().astype(np.int64)
            bound = len(compact.dictionary)
        codes = pc.fill_null(part.indices, size - 1).to_numpy().astype(np.int64)
        code = code * size + codes
        bound *= size
    if bound <= _DENSE_GROUPS:
        seen = np.zeros(bound, np.bool_)
        seen[code] = True
        rank = np.cumsum(seen, dtype=np.int64) - 1
        group = rank[code]
        count = int(rank[-1]) + 1
    else:
        groups = pc.dictionary_encode(pa.array(code))
        group = groups.indices.to_numpy().astype(np.int64)
        count = len(groups.dictionary)
    first = np.zeros(count, np.int64)
    first[group] = np.arange(n)
    firsts = pa.array(first)
    keys = _join([_plain(part.take(firsts)) for part in encoded])
    return _recode(pa.array(group), keys)


def _machine_key(b: _Batch) -> pa.DictionaryArray:
    """``tenant/plant/line/machine`` per row, joined once per message where the rows say which
    message they came from.

    A message's readings are rows with the same ``_msg`` and the message's envelope
    (:data:`schemas.MSG_FIELD`), so when ``_msg`` never decreases (rows in message order, as
    one decode gives them) the key is derived from the first row of each run of equal ``_msg``
    (a quarter of a snapshot batch's rows) and spread back to the run. Without ``_msg``, or
    out of message order (rows of several decodes concatenated), every row is keyed."""
    runs = _message_runs(b.rows)
    if runs is None:
        return _join_keys([b.col(c) for c in _ENVELOPE])
    starts, run_of_row = runs
    keys = _join_keys([b.rows.column(c).take(starts).combine_chunks() for c in _ENVELOPE])
    return pa.DictionaryArray.from_arrays(keys.indices.take(run_of_row), keys.dictionary)


def _message_runs(rows: pa.Table) -> tuple[pa.Array, pa.Array] | None:
    """(first row of each run of equal ``_msg``, run number per row), or None when ``rows``
    lack ``_msg`` or it decreases somewhere."""
    if "_msg" not in rows.column_names or rows.num_rows == 0:
        return None
    msg = rows.column("_msg").to_numpy()
    change = np.empty(msg.size, np.bool_)
    change[0] = True
    np.not_equal(msg[1:], msg[:-1], out=change[1:])
    if np.any(msg[1:] < msg[:-1]):
        return None
    return pa.array(np.flatnonzero(change)), pa.array(np.cumsum(change, dtype=np.int64) - 1)


def _seconds(later: pa.Array, earlier: pa.Array) -> pa.Array:
    micros = pc.cast(pc.subtract(later, earlier), pa.int64())
    return pc.multiply(pc.cast(micros, pa.float64()), 1e-6)


def _machine_type(b: _Batch) -> pa.Array:
    keys = b.col("machine_key")
    idx = pc.index_in(keys.dictionary, value_set=b.index.machine_keys)
    return _recode(keys.indices, b.index.machine_types.take(idx))


def _tag_idx(b: _Batch) -> pa.Array:
    def compute() -> pa.Array:
        keys = b.col("machine_type_tag")
        return pc.index_in(keys.dictionary, value_set=b.index.tag_keys).take(keys.indices)

    return b.memo("(tag index)", compute)


def _registry_unit(b: _Batch) -> pa.Array:
    codes = b.index.tag_unit_codes.take(_tag_idx(b))
    return pa.DictionaryArray.from_arrays(codes, b.index.tag_unit_values)


def _in_registry_unit(b: _Batch, limits: pa.Array) -> pa.Array:
    """``limits`` (a tag's min or max per row), null where the reading's unit is not the
    registry unit (it did not convert: ``unit_mismatch`` alone judges the reading) and where
    its quality is ``BAD`` (OPC UA: the number is not a measurement, so a dead sensor's
    placeholder never quarantines the snapshot's good readings)."""

    def compute() -> pa.Array:
        same = pc.fill_null(pc.equal(_plain(b.col("unit")), _plain(b.col("registry_unit"))), True)
        bad = pc.fill_null(pc.equal(_plain(b.col("quality")), "BAD"), False)
        return pc.and_(same, pc.invert(bad))

    same = b.memo("(range applies: registry unit, not BAD)", compute)
    return pc.if_else(same, limits.take(_tag_idx(b)), pa.scalar(None, pa.float64()))


def _unit_note(b: _Batch) -> pa.Array:
    """``: <why>`` for a reading whose unit differs from the registry unit (the unit system's
    refusal, e.g. the Hz/rpm ambiguity), "" otherwise (quarantine details)."""
    units = b.index.units
    notes: list[str] = []
    for unit, target in zip(
        _plain(b.col("unit")).to_pylist(), _plain(b.col("registry_unit")).to_pylist(), strict=True
    ):
        why = None if unit is None or target is None else units.refusal(unit, target)
        notes.append("" if why is None else f": {why}")
    return pa.array(notes, _STR)


def _dimension_problems(b: _Batch) -> tuple[pa.Array, pa.Array]:
    """Per inspection row, (dimensions whose unit does not convert to the registry unit or is
    unknown, dimensions outside the registry range), each joined with "; " and null if none.

    A dimension is looked up by (tenant, name) among the machine types the tenant operates;
    one without a spec is only checked for a unit pint knows. A missing unit is taken to be
    the registry unit."""
    lists = b.col("dimensions")
    flat = pc.list_flatten(lists)
    bad_units: list[str | None] = [None] * b.n
    out_of_range: list[str | None] = [None] * b.n
    if len(flat) == 0:
        return pa.array(bad_units, _STR), pa.array(out_of_range, _STR)
    parents = pc.list_parent_indices(lists).to_pylist()
    tenants = b.col("tenant").take(pc.list_parent_indices(lists)).to_pylist()
    names = flat.field("name").to_pylist()
    values = flat.field("value").to_pylist()
    sent_units = flat.field("unit").to_pylist()
    specs = b.index.tenant_dimensions
    units = b.index.units

    def add(out: list[str | None], row: int, text: str) -> None:
        out[row] = text if out[row] is None else f"{out[row]}; {text}"

    for row, tenant, name, value, sent in zip(
        parents, tenants, names, values, sent_units, strict=True
    ):
        spec = specs.get((tenant, name))
        if spec is None:
            complaint = None if sent is None else units.check(sent)
            if complaint is not None:
                add(bad_units, row, f"{name!r} in {sent!r}, which is not a unit pint knows")
            continue
        unit = spec.unit if sent is None else sent
        conv = units.conversion(unit, spec.unit)
        if conv is None:
            why = units.refusal(unit, spec.unit)
            add(
                bad_units,
                row,
                f"{name!r} in {unit!r} does not convert to the registry unit {spec.unit!r} ({why})",
            )
            continue
        converted = value * conv.scale + conv.offset
        if not spec.min <= converted <= spec.max:
            shown = f"{value:.6g} {unit}"
            if unit != spec.unit:
                shown += f" (= {converted:.6g} {spec.unit})"
            limits = f"{spec.min}..{spec.max} {spec.unit}"
            add(out_of_range, row, f"{name!r} {shown} is outside the registry range {limits}")
    return pa.array(bad_units, _STR), pa.array(out_of_range, _STR)


def _dimension_column(b: _Batch, name: str) -> pa.Array:
    """``bad_dimension_units`` or ``dimensions_out_of_range`` (both computed in one pass)."""
    if name not in b.cache:
        bad, out = _dimension_problems(b)
        b.cache["bad_dimension_units"], b.cache["dimensions_out_of_range"] = bad, out
    return b.cache[name]


def _alarm_key(b: _Batch) -> pa.Array:
    key = _join([_plain(b.col("machine_type")), pc.coalesce(b.col("alarm_code"), "")])
    return pc.if_else(pc.equal(b.col("event_type"), "ALARM"), key, pa.scalar(None, _STR))


def _unknown_members(b: _Batch, list_column: str, known: pa.Array) -> pa.Array:
    """Per row, the list elements whose ``tenant/element`` key is not in ``known``, joined
    with ", "; null when every element is known (the common case costs one ``is_in``)."""
    lists = b.col(list_column)
    flat = pc.fill_null(pc.list_flatten(lists), "<null>")
    parents = pc.list_parent_indices(lists)
    keys = _join([b.col("tenant").take(parents), flat])
    unknown = pc.indices_nonzero(pc.invert(pc.is_in(keys, value_set=known)))
    out: list[str | None] = [None] * b.n
    if len(unknown):
        for row, element in zip(
            parents.take(unknown).to_pylist(), flat.take(unknown).to_pylist(), strict=True
        ):
            out[row] = element if out[row] is None else f"{out[row]}, {element}"
    return pa.array(out, _STR)


def _registry_miss(b: _Batch) -> pa.Array:
    """Per row, the highest ISA-95 level of its envelope the registry lacks, in words
    (``tenant 'acme' is not in the asset registry``, ``line 'l9' is not a line of plant
    northwind-auto/stuttgart``, ...); "" for a machine the registry holds."""
    known = b.index.hierarchy
    machine_keys = set(b.index.placeholders["machine_keys"])
    out: list[str] = []
    for tenant, plant, line, machine in zip(
        *(b.col(c).to_pylist() for c in _ENVELOPE), strict=True
    ):
        if (tenant,) not in known:
            out.append(f"tenant {tenant!r} is not in the asset registry")
        elif (tenant, plant) not in known:
            out.append(f"plant {plant!r} is not a plant of tenant {tenant!r} in the asset registry")
        elif (tenant, plant, line) not in known:
            out.append(
                f"line {line!r} is not a line of plant {tenant}/{plant} in the asset registry"
            )
        elif KEY_SEP.join((tenant, plant, line, machine)) not in machine_keys:
            out.append(
                f"machine {machine!r} is not a machine of line {tenant}/{plant}/{line}"
                " in the asset registry"
            )
        else:
            out.append("")
    return pa.array(out, _STR)


def _sent_note(b: _Batch) -> pa.Array:
    """`` (sent as 200.0 degF)`` for a converted reading, `` (sent without a unit)`` for one
    given the registry unit, "" otherwise (quarantine details)."""
    notes = [
        ("" if value is None else " (sent without a unit)")
        if unit is None
        else f" (sent as {value} {unit})"
        for value, unit in zip(
            b.col("value_sent").to_pylist(), b.col("unit_sent").to_pylist(), strict=True
        )
    ]
    return pa.array(notes, _STR)


_ALL_KINDS = frozenset(EventKind)
_TELEMETRY = frozenset({EventKind.TELEMETRY})
_MACHINE_EVENT = frozenset({EventKind.MACHINE_EVENT})
_INSPECTION = frozenset({EventKind.INSPECTION})


@dataclass(frozen=True, slots=True)
class _Derived:
    compute: Callable[[_Batch], pa.Array]
    sources: tuple[str, ...]
    kinds: frozenset[EventKind]


_DERIVED: Mapping[str, _Derived] = MappingProxyType(
    {
        "machine_key": _Derived(_machine_key, _ENVELOPE, _ALL_KINDS),
        "machine_type": _Derived(_machine_type, ("machine_key",), _ALL_KINDS),
        "registry_miss": _Derived(_registry_miss, _ENVELOPE, _ALL_KINDS),
        "latency_s": _Derived(
            lambda b: _seconds(b.col("sent_time"), b.col("event_time")),
            ("sent_time", "event_time"),
            _ALL_KINDS,
        ),
        "machine_type_tag": _Derived(
            lambda b: _join_keys([b.col("machine_type"), b.col("tag")]),
            ("machine_type", "tag"),
            _TELEMETRY,
        ),
        "tag_min": _Derived(
            lambda b: _in_registry_unit(b, b.index.tag_min),
            ("machine_type_tag", "registry_unit", "unit", "quality"),
            _TELEMETRY,
        ),
        "tag_max": _Derived(
            lambda b: _in_registry_unit(b, b.index.tag_max),
            ("machine_type_tag", "registry_unit", "unit", "quality"),
            _TELEMETRY,
        ),
        "registry_unit": _Derived(_registry_unit, ("machine_type_tag",), _TELEMETRY),
        "unit_note": _Derived(_unit_note, ("unit", "registry_unit"), _TELEMETRY),
        "sent_note": _Derived(_sent_note, ("value_sent", "unit_sent"), _TELEMETRY),
        "is_bad": _Derived(
            lambda b: pc.cast(pc.equal(b.col("quality"), "BAD"), pa.float64()),
            ("quality",),
            _TELEMETRY,
        ),
        "machine_type_alarm_code": _Derived(
            _alarm_key, ("machine_type", "alarm_code", "event_type"), _MACHINE_EVENT
        ),
        "registry_alarm_severity": _Derived(
            lambda b: b.index.alarm_severity.take(
                pc.index_in(_plain(b.col("machine_type_alarm_code")), value_set=b.index.alarm_keys)
            ),
            ("machine_type_alarm_code",),
            _MACHINE_EVENT,
        ),
        "unknown_machines": _Derived(
            lambda b: _unknown_members(b, "machines", b.index.tenant_machines),
            ("tenant", "machines"),
            _INSPECTION,
        ),
        "unknown_defect_codes": _Derived(
            lambda b: _unknown_members(b, "defect_codes", b.index.tenant_defects),
            ("tenant", "defect_codes"),
            _INSPECTION,
        ),
        "bad_dimension_units": _Derived(
            lambda b: _dimension_column(b, "bad_dimension_units"),
            ("tenant", "dimensions"),
            _INSPECTION,
        ),
        "dimensions_out_of_range": _Derived(
            lambda b: _dimension_column(b, "dimensions_out_of_range"),
            ("tenant", "dimensions"),
            _INSPECTION,
        ),
        "process_duration_s": _Derived(
            lambda b: _seconds(b.col("process_end"), b.col("process_start")),
            ("process_end", "process_start"),
            _INSPECTION,
        ),
        "fail_defect_count": _Derived(
            lambda b: pc.if_else(
                pc.equal(b.col("result"), "FAIL"),
                pc.list_value_length(b.col("defect_codes")),
                pa.scalar(None, pa.int32()),
            ),
            ("result", "defect_codes"),
            _INSPECTION,
        ),
    }
)

DERIVED_COLUMNS: Mapping[EventKind, frozenset[str]] = MappingProxyType(
    {kind: frozenset(n for n, d in _DERIVED.items() if kind in d.kinds) for kind in EventKind}
)
"""Derived column names each event kind's suite may read, besides the row columns."""


def raw_columns_needed(kind: EventKind, columns: tuple[str, ...]) -> frozenset[str]:
    """The row columns that ``columns`` (row or derived) are computed from."""
    derived = DERIVED_COLUMNS[kind]
    out: set[str] = set()
    todo = list(columns)
    while todo:
        name = todo.pop()
        if name in derived:
            todo.extend(_DERIVED[name].sources)
        else:
            out.add(name)
    return frozenset(out)


KEY_COLUMNS = frozenset(
    {"machine_key", "machine_type", "machine_type_tag", "(tag index)", "registry_unit"}
)
"""Derived columns (and intermediates) computed from the envelope (tenant, plant, line,
machine), ``tag`` and the registry alone: unit conversion leaves them as they are."""


def derive_columns(
    kind: EventKind,
    rows: pa.Table,
    columns: tuple[str, ...],
    index: RegistryIndex,
    *,
    dictionary: frozenset[str] = frozenset(),
    keys: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """A table of exactly ``columns`` (row columns passed through, derived ones computed), in
    input row order, each as one chunk. ``rows`` must hold :func:`raw_columns_needed`.

    The key-like derived columns (``machine_key``, ``machine_type``, ``machine_type_tag``,
    ``registry_unit``) are computed as dictionary arrays; those named in ``dictionary`` stay
    dictionary arrays (unique, non-null dictionary values), the others become plain strings.

    ``keys``: :data:`KEY_COLUMNS` already derived for rows with the same envelope and tag
    columns under the same ``index`` (used instead of being derived again); the ones this
    call derives are added to it."""
    batch = _Batch(rows, index, kind)
    if keys is not None:
        batch.cache.update(keys)
    table = pa.table(
        {
            name: batch.col(name) if name in dictionary else _plain(batch.col(name))
            for name in columns
        }
    )
    if keys is not None:
        keys.update({k: v for k, v in batch.cache.items() if k in KEY_COLUMNS})
    return table
