"""The alliance's asset registry: tenants, plants, lines, machines, machine types and units.

The registry is a TOML document (the packaged ``schemas/registry/alliance.toml`` is the demo's
seed; the live copy is versioned under the lake root, see ``lake.registry_store``). It is the
reference the simulator draws machines and tags from and the quality suites check events
against (known machines, tags, units, ranges, alarm and defect codes). The document is
validated by the pydantic models below; an error names the exact location, such as
``tenants[2].plants[0].lines[1].machines[3].machine_type``. :func:`registry_json_schema` is the
JSON Schema of the TOML format (published as ``schemas/published/registry.schema.json``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from maxlake.errors import validation_location
from schemas.errors import RegistryError
from schemas.kinds import ID_PATTERN, TENANT_ID_PATTERN
from schemas.units import UnitSystem, unit_system

__all__ = [
    "AlarmSpec",
    "DimensionSpec",
    "Line",
    "Machine",
    "MachineType",
    "Plant",
    "Registry",
    "TagSpec",
    "Tenant",
    "UnitDef",
    "default_registry_path",
    "load_registry",
    "parse_registry",
    "registry_json_schema",
]

Id = Annotated[str, Field(pattern=ID_PATTERN, description="id: " + ID_PATTERN)]
TenantId = Annotated[
    str, Field(pattern=TENANT_ID_PATTERN, description="tenant id (no dots): " + TENANT_ID_PATTERN)
]
Text = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TagSpec(_Model):
    """One sensor tag of a machine type: unit, physical range and nominal operating value."""

    tag: Id
    unit: Text = Field(description="pint unit expression, e.g. degC, l/min, %")
    min: float = Field(description="physical minimum, in ``unit``")
    max: float = Field(description="physical maximum, in ``unit``")
    nominal: float = Field(description="nominal operating value, min <= nominal <= max")


class DimensionSpec(_Model):
    """A measured dimension of the parts a machine type makes (inspection ``dimensions``).

    An inspection dimension with this ``name`` must be sent in a unit that converts to
    ``unit`` (absent = ``unit``), and its value in ``unit`` must lie within ``min..max``: a
    sanity range that catches wrong units and garbage, not the part's tolerance."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    unit: Text = Field(description="pint unit expression, e.g. mm, um, Ah, V")
    min: float = Field(description="smallest plausible value, in ``unit``")
    max: float = Field(description="largest plausible value, in ``unit``")


class AlarmSpec(_Model):
    """One alarm a machine type can raise; severity on the OPC UA 1..1000 scale."""

    code: Text
    severity: int = Field(ge=1, le=1000, strict=True)
    text: Text


class MachineType(_Model):
    """What a kind of machine reports: its tags, alarm codes and inspection defect codes."""

    id: SkipJsonSchema[str] = Field("", exclude=True)
    description: str = ""
    tags: tuple[TagSpec, ...] = Field(min_length=1)
    alarms: tuple[AlarmSpec, ...] = ()
    defect_codes: tuple[Text, ...] = ()
    dimensions: tuple[DimensionSpec, ...] = ()

    def tag(self, name: str) -> TagSpec | None:
        """The spec of tag ``name``, or None when this machine type has no such tag."""
        return next((t for t in self.tags if t.tag == name), None)


class Machine(_Model):
    """A physical machine on a line; ``machine_type`` is a key of ``Registry.machine_types``."""

    id: Id
    machine_type: Id


class Line(_Model):
    """A production line of a plant."""

    id: Id
    name: Text
    machines: tuple[Machine, ...] = Field(min_length=1)


class Plant(_Model):
    """A plant of a tenant; ``timezone`` is the IANA zone of the plant (documentation for
    people reading the registry: event times carry their own offsets)."""

    id: Id
    name: Text
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin")
    lines: tuple[Line, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from None
        return value


class Tenant(_Model):
    """A member company of the alliance; its id is the tenant segment of topics and partitions."""

    id: TenantId
    name: Text
    industry: Text
    plants: tuple[Plant, ...] = Field(min_length=1)


class UnitDef(_Model):
    """A unit the registry adds to pint's: ``symbol = "spm"``, ``definition = "1 / minute"``."""

    symbol: Id
    definition: Text
    description: str = ""

    def pint_line(self) -> str:
        """The pint definition line ``symbol = definition``."""
        return f"{self.symbol} = {self.definition}"


class Registry(_Model):
    """The validated registry, with lookups and the Arrow views the validation suites use.

    ``source`` names where it was read from (a file, or ``<lake>/registry vN``).
    """

    version: Literal[1] = Field(1, description="format version of this document")
    units: tuple[UnitDef, ...] = ()
    machine_types: Mapping[Id, MachineType] = Field(min_length=1)
    tenants: tuple[Tenant, ...] = Field(min_length=1)
    _source: str = PrivateAttr("<registry>")
    _index: Mapping[tuple[str, str, str, str], str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        types = {
            name: mt.model_copy(update={"id": name}) for name, mt in self.machine_types.items()
        }
        object.__setattr__(self, "machine_types", types)
        self._index = MappingProxyType(
            {
                (t.id, p.id, ln.id, m.id): m.machine_type
                for t in self.tenants
                for p in t.plants
                for ln in p.lines
                for m in ln.machines
            }
        )

    @property
    def source(self) -> str:
        """Where this registry was read from."""
        return self._source

    def with_source(self, source: str) -> Registry:
        """This registry, labelled as read from ``source``."""
        self._source = source
        return self

    def tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant with id ``tenant_id``, or None."""
        return next((t for t in self.tenants if t.id == tenant_id), None)

    def machine_type_of(self, tenant: str, plant: str, line: str, machine: str) -> str | None:
        """The machine type id of one machine, or None when the registry does not know it."""
        return self._index.get((tenant, plant, line, machine))

    def unit_system(self) -> UnitSystem:
        """pint units plus this registry's ``units`` definitions (shared, cached)."""
        return unit_system(tuple(u.pint_line() for u in self.units))

    def document(self) -> dict[str, Any]:
        """The registry as a plain TOML-shaped document (what :func:`parse_registry` reads)."""
        doc: dict[str, Any] = self.model_dump(mode="json", exclude_defaults=False)
        if not doc["units"]:
            del doc["units"]
        return doc

    def tenant_dimensions(self) -> dict[tuple[str, str], DimensionSpec]:
        """``(tenant, dimension name)`` -> the spec declared by a machine type the tenant
        operates (parse checks that the types of one tenant agree)."""
        out: dict[tuple[str, str], DimensionSpec] = {}
        for (tenant, *_), type_id in self._index.items():
            for spec in self.machine_types[type_id].dimensions:
                out.setdefault((tenant, spec.name), spec)
        return out

    def machines(self) -> pa.Table:
        """One row per machine: tenant, plant, line, machine, machine_type (all strings)."""
        keys = list(self._index)
        return pa.table(
            {
                "tenant": _column([k[0] for k in keys], pa.string()),
                "plant": _column([k[1] for k in keys], pa.string()),
                "line": _column([k[2] for k in keys], pa.string()),
                "machine": _column([k[3] for k in keys], pa.string()),
                "machine_type": _column(list(self._index.values()), pa.string()),
            }
        )

    def tag_ranges(self) -> pa.Table:
        """One row per (machine_type, tag): unit and the physical min/max range (float64)."""
        specs = [(mt.id, t) for mt in self.machine_types.values() for t in mt.tags]
        return pa.table(
            {
                "machine_type": _column([m for m, _ in specs], pa.string()),
                "tag": _column([t.tag for _, t in specs], pa.string()),
                "unit": _column([t.unit for _, t in specs], pa.string()),
                "min": _column([float(t.min) for _, t in specs], pa.float64()),
                "max": _column([float(t.max) for _, t in specs], pa.float64()),
            }
        )


def default_registry_path() -> Path:
    """Path of the packaged ``alliance.toml`` (the demo's seed registry)."""
    return Path(str(files("schemas") / "registry" / "alliance.toml"))


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate a registry file.

    Args:
        path: a TOML registry file; None loads the packaged ``alliance.toml``.

    Raises:
        RegistryError: (a ``ConfigError``) naming the file and the exact location of the bad
            entry when the file is missing, not TOML, or inconsistent.
    """
    src = path if path is not None else default_registry_path()
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise RegistryError(str(src), "file", f"cannot read: {exc.strerror or exc}") from exc
    return parse_registry(data, source=str(src))


def parse_registry(data: bytes | Mapping[str, Any], *, source: str = "<registry>") -> Registry:
    """Validate a registry document (TOML bytes or an already parsed mapping).

    Raises:
        RegistryError: naming ``source`` and the location of the first problem found.
    """
    if isinstance(data, bytes):
        try:
            doc: Any = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RegistryError(source, "file", f"not valid TOML: {exc}") from exc
    else:
        doc = data
    try:
        registry = Registry.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        problem = f"{err['msg']}, got {err.get('input')!r}"[:300] + more
        raise RegistryError(source, validation_location(err["loc"]), problem) from None
    _check_consistency(registry, source)
    return registry.with_source(source)


def _check_consistency(registry: Registry, source: str) -> None:
    """Checks across entries: unique ids, known machine types, ranges, units."""
    units = _check_units(registry, source)
    for name, mt in registry.machine_types.items():
        where = f"machine_types.{name}"
        _unique([t.tag for t in mt.tags], f"{where}.tags", source)
        _unique([a.code for a in mt.alarms], f"{where}.alarms", source)
        for i, spec in enumerate(mt.tags):
            if not spec.min <= spec.nominal <= spec.max:
                got = f"{spec.min}, {spec.nominal}, {spec.max}"
                problem = f"needs min <= nominal <= max, got {got}"
                raise RegistryError(source, f"{where}.tags[{i}]", problem)
            _check_unit(units, spec.unit, source, f"{where}.tags[{i}].unit")
        _unique([d.name for d in mt.dimensions], f"{where}.dimensions", source)
        for i, dim in enumerate(mt.dimensions):
            if not dim.min <= dim.max:
                problem = f"needs min <= max, got {dim.min}, {dim.max}"
                raise RegistryError(source, f"{where}.dimensions[{i}]", problem)
            _check_unit(units, dim.unit, source, f"{where}.dimensions[{i}].unit")
    _unique([t.id for t in registry.tenants], "tenants", source)
    known = ", ".join(sorted(registry.machine_types))
    for ti, t in enumerate(registry.tenants):
        _unique([p.id for p in t.plants], f"tenants[{ti}].plants", source)
        for pi, p in enumerate(t.plants):
            _unique([ln.id for ln in p.lines], f"tenants[{ti}].plants[{pi}].lines", source)
            for li, ln in enumerate(p.lines):
                where = f"tenants[{ti}].plants[{pi}].lines[{li}].machines"
                _unique([m.id for m in ln.machines], where, source)
                for mi, m in enumerate(ln.machines):
                    if m.machine_type not in registry.machine_types:
                        raise RegistryError(
                            source,
                            f"{where}[{mi}].machine_type",
                            f"unknown machine type {m.machine_type!r} (known: {known})",
                        )
        _check_dimensions_agree(registry, t, f"tenants[{ti}]", source)


def _check_dimensions_agree(registry: Registry, tenant: Tenant, where: str, source: str) -> None:
    """The machine types one tenant operates declare each dimension name the same way."""
    types = sorted({m.machine_type for p in tenant.plants for ln in p.lines for m in ln.machines})
    seen: dict[str, tuple[str, DimensionSpec]] = {}
    for type_id in types:
        for dim in registry.machine_types[type_id].dimensions:
            first = seen.setdefault(dim.name, (type_id, dim))
            if first[1] != dim:
                raise RegistryError(
                    source,
                    where,
                    f"machine types {first[0]!r} and {type_id!r} of tenant {tenant.id!r} "
                    f"declare dimension {dim.name!r} differently; use one spec or two names",
                )


def _check_units(registry: Registry, source: str) -> UnitSystem:
    _unique([u.symbol for u in registry.units], "units", source)
    try:
        return registry.unit_system()
    except ValueError as exc:
        raise RegistryError(source, "units", str(exc)) from None


def _column(values: list[Any], kind: pa.DataType) -> pa.Array:
    """``values`` (str or float, no nulls) as an Arrow array of ``kind`` (string or float64).

    Built without ``pa.array``, which asks pandas whether its argument is array-like or
    categorical and so imports pandas when it is installed: ~1.4 s and ~50 MiB RSS for every
    command that reads the registry (a dataset build, ``maxlake status``), which need no pandas.
    """
    if kind == pa.float64():
        data = np.asarray(values, dtype=np.float64)
        return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])
    builder = pa.lib.StringBuilder()
    builder.append_values(values)
    return builder.finish()


def _check_unit(units: UnitSystem, unit: str, source: str, entry: str) -> None:
    """Raise :class:`RegistryError` at ``entry`` when ``units`` cannot parse ``unit``."""
    complaint = units.check(unit)
    if complaint is not None:
        raise RegistryError(
            source, entry, f"unknown unit {unit!r} ({complaint}); define it in [[units]]"
        )


def _unique(ids: list[str], entry: str, source: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            raise RegistryError(source, f"{entry}[{i}]", f"duplicate id {value!r}")
        seen.add(value)


def registry_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the registry TOML format, for editors."""
    schema = Registry.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://maxlake.dev/schemas/registry.schema.json"
    schema["title"] = "maxlake asset registry"
    return schema
