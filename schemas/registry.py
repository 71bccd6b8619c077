"""The alliance's asset registry: tenants, plants, lines, machines and machine types.

The registry is a TOML file (``schemas/registry/alliance.toml`` by default) read with the
standard library. It is the reference the simulator draws machines and tags from and the
quality suites check telemetry against (tag ranges, known machines). Loading validates the
whole file up front so that a typo fails at start-up with the file and entry named, not as
odd rows later.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa

from schemas.errors import RegistryError
from schemas.kinds import ID_PATTERN

__all__ = [
    "AlarmSpec",
    "Line",
    "Machine",
    "MachineType",
    "Plant",
    "Registry",
    "TagSpec",
    "Tenant",
    "default_registry_path",
    "load_registry",
]

_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class TagSpec:
    """One sensor tag of a machine type: unit, physical range and nominal operating value."""

    tag: str
    unit: str
    min: float
    max: float
    nominal: float


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    """One alarm a machine type can raise; severity on the OPC UA 1..1000 scale."""

    code: str
    severity: int
    text: str


@dataclass(frozen=True, slots=True)
class MachineType:
    """What a kind of machine reports: its tags, alarm codes and inspection defect codes."""

    id: str
    description: str
    tags: tuple[TagSpec, ...]
    alarms: tuple[AlarmSpec, ...]
    defect_codes: tuple[str, ...]

    def tag(self, name: str) -> TagSpec | None:
        """The spec of tag ``name``, or None when this machine type has no such tag."""
        return next((t for t in self.tags if t.tag == name), None)


@dataclass(frozen=True, slots=True)
class Machine:
    """A physical machine on a line; ``machine_type`` is a key of ``Registry.machine_types``."""

    id: str
    machine_type: str


@dataclass(frozen=True, slots=True)
class Line:
    """A production line of a plant."""

    id: str
    name: str
    machines: tuple[Machine, ...]


@dataclass(frozen=True, slots=True)
class Plant:
    """A plant of a tenant; ``timezone`` is the IANA zone its producers use for offsets."""

    id: str
    name: str
    timezone: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Tenant:
    """A member company of the alliance; its id is the tenant segment of topics and partitions."""

    id: str
    name: str
    industry: str
    plants: tuple[Plant, ...]


@dataclass(frozen=True)
class Registry:
    """The validated registry. Lookups and Arrow views for the validation suites."""

    tenants: tuple[Tenant, ...]
    machine_types: Mapping[str, MachineType]
    source: str
    _index: Mapping[tuple[str, str, str, str], str] = field(repr=False, compare=False)

    def tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant with id ``tenant_id``, or None."""
        return next((t for t in self.tenants if t.id == tenant_id), None)

    def machine_type_of(self, tenant: str, plant: str, line: str, machine: str) -> str | None:
        """The machine type id of one machine, or None when the registry does not know it."""
        return self._index.get((tenant, plant, line, machine))

    def machines(self) -> pa.Table:
        """One row per machine: tenant, plant, line, machine, machine_type (all strings)."""
        keys = list(self._index)
        return pa.table(
            {
                "tenant": [k[0] for k in keys],
                "plant": [k[1] for k in keys],
                "line": [k[2] for k in keys],
                "machine": [k[3] for k in keys],
                "machine_type": list(self._index.values()),
            }
        )

    def tag_ranges(self) -> pa.Table:
        """One row per (machine_type, tag): unit and the physical min/max range (float64)."""
        specs = [(mt.id, t) for mt in self.machine_types.values() for t in mt.tags]
        return pa.table(
            {
                "machine_type": pa.array([m for m, _ in specs], pa.string()),
                "tag": pa.array([t.tag for _, t in specs], pa.string()),
                "unit": pa.array([t.unit for _, t in specs], pa.string()),
                "min": pa.array([t.min for _, t in specs], pa.float64()),
                "max": pa.array([t.max for _, t in specs], pa.float64()),
            }
        )


def default_registry_path() -> Path:
    """Path of the packaged ``alliance.toml``."""
    return Path(str(files("schemas") / "registry" / "alliance.toml"))


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate a registry file.

    Args:
        path: a TOML registry file; None loads the packaged ``alliance.toml``.

    Raises:
        RegistryError: (a ``ConfigError``) naming the file and the bad entry when the file is
            missing, not TOML, or inconsistent (duplicate or malformed ids, unknown machine
            type, a tag range with min > max or a nominal value outside it, a bad severity).
    """
    src = path if path is not None else default_registry_path()
    try:
        with open(src, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise RegistryError(str(src), "file", f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(str(src), "file", f"not valid TOML: {exc}") from exc
    return _Builder(str(src)).build(doc)


class _Builder:
    """Turns the parsed TOML into frozen dataclasses, failing on the first bad entry."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, entry: str, problem: str) -> RegistryError:
        return RegistryError(self.source, entry, problem)

    def build(self, doc: dict[str, Any]) -> Registry:
        types_doc = self.table(doc, "machine_types", "machine_types")
        machine_types = {
            name: self.machine_type(name, self.table(types_doc, name, f"machine_types.{name}"))
            for name in types_doc
        }
        if not machine_types:
            raise self.fail("machine_types", "at least one machine type is required")
        tenants = tuple(
            self.tenant(t, f"tenants[{i}]", machine_types)
            for i, t in enumerate(self.array(doc, "tenants", "tenants"))
        )
        self.unique([t.id for t in tenants], "tenants")
        index = {
            (t.id, p.id, ln.id, m.id): m.machine_type
            for t in tenants
            for p in t.plants
            for ln in p.lines
            for m in ln.machines
        }
        return Registry(tenants, MappingProxyType(machine_types), self.source, index)

    def machine_type(self, name: str, doc: dict[str, Any]) -> MachineType:
        entry = f"machine_types.{name}"
        self.check_id(name, entry)
        tags = tuple(
            self.tag_spec(t, f"{entry}.tags[{i}]")
            for i, t in enumerate(self.array(doc, "tags", entry))
        )
        self.unique([t.tag for t in tags], f"{entry}.tags")
        alarms = tuple(
            self.alarm(a, f"{entry}.alarms[{i}]")
            for i, a in enumerate(self.array(doc, "alarms", entry, required=False))
        )
        self.unique([a.code for a in alarms], f"{entry}.alarms")
        defects = doc.get("defect_codes", [])
        if not isinstance(defects, list) or not all(isinstance(d, str) and d for d in defects):
            raise self.fail(f"{entry}.defect_codes", "must be an array of non-empty strings")
        desc = self.string(doc, "description", entry, required=False)
        return MachineType(name, desc, tags, alarms, tuple(defects))

    def tag_spec(self, doc: Any, entry: str) -> TagSpec:
        doc = self.as_table(doc, entry)
        tag = self.string(doc, "tag", entry)
        self.check_id(tag, f"{entry}.tag")
        lo, hi, nominal = (self.number(doc, k, entry) for k in ("min", "max", "nominal"))
        if not lo <= nominal <= hi:
            problem = f"tag {tag!r} needs min <= nominal <= max, got {lo}, {nominal}, {hi}"
            raise self.fail(entry, problem)
        return TagSpec(tag, self.string(doc, "unit", entry), lo, hi, nominal)

    def alarm(self, doc: Any, entry: str) -> AlarmSpec:
        doc = self.as_table(doc, entry)
        severity = doc.get("severity")
        if type(severity) is not int or not 1 <= severity <= 1000:
            raise self.fail(entry, f"severity must be an integer 1..1000, got {severity!r}")
        return AlarmSpec(self.string(doc, "code", entry), severity, self.string(doc, "text", entry))

    def tenant(self, doc: Any, entry: str, types: Mapping[str, MachineType]) -> Tenant:
        doc = self.as_table(doc, entry)
        tid = self.string(doc, "id", entry)
        self.check_id(tid, f"{entry}.id")
        plants = tuple(
            self.plant(p, f"{entry}.plants[{i}]", types)
            for i, p in enumerate(self.array(doc, "plants", entry))
        )
        self.unique([p.id for p in plants], f"{entry}.plants")
        name, industry = self.string(doc, "name", entry), self.string(doc, "industry", entry)
        return Tenant(tid, name, industry, plants)

    def plant(self, doc: Any, entry: str, types: Mapping[str, MachineType]) -> Plant:
        doc = self.as_table(doc, entry)
        pid = self.string(doc, "id", entry)
        self.check_id(pid, f"{entry}.id")
        lines = tuple(
            self.line(ln, f"{entry}.lines[{i}]", types)
            for i, ln in enumerate(self.array(doc, "lines", entry))
        )
        self.unique([ln.id for ln in lines], f"{entry}.lines")
        tz = self.string(doc, "timezone", entry, required=False) or "UTC"
        return Plant(pid, self.string(doc, "name", entry), tz, lines)

    def line(self, doc: Any, entry: str, types: Mapping[str, MachineType]) -> Line:
        doc = self.as_table(doc, entry)
        lid = self.string(doc, "id", entry)
        self.check_id(lid, f"{entry}.id")
        machines = []
        for i, raw in enumerate(self.array(doc, "machines", entry)):
            m_entry = f"{entry}.machines[{i}]"
            m = self.as_table(raw, m_entry)
            mid, mtype = self.string(m, "id", m_entry), self.string(m, "machine_type", m_entry)
            self.check_id(mid, f"{m_entry}.id")
            if mtype not in types:
                known = ", ".join(sorted(types))
                raise self.fail(m_entry, f"unknown machine_type {mtype!r} (known: {known})")
            machines.append(Machine(mid, mtype))
        self.unique([m.id for m in machines], f"{entry}.machines")
        return Line(lid, self.string(doc, "name", entry), tuple(machines))

    def as_table(self, doc: Any, entry: str) -> dict[str, Any]:
        if not isinstance(doc, dict):
            raise self.fail(entry, f"expected a table, got {type(doc).__name__}")
        return doc

    def table(self, doc: dict[str, Any], key: str, entry: str) -> dict[str, Any]:
        if key not in doc:
            raise self.fail(entry, "missing")
        return self.as_table(doc[key], entry)

    def array(
        self, doc: dict[str, Any], key: str, entry: str, *, required: bool = True
    ) -> list[Any]:
        value = doc.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or (required and not value):
            raise self.fail(entry, f"{key!r} must be a non-empty array")
        return value

    def string(self, doc: dict[str, Any], key: str, entry: str, *, required: bool = True) -> str:
        value = doc.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value:
            raise self.fail(entry, f"{key!r} must be a non-empty string, got {value!r}")
        return value

    def number(self, doc: dict[str, Any], key: str, entry: str) -> float:
        value = doc.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(entry, f"{key!r} must be a number, got {value!r}")
        return float(value)

    def check_id(self, value: str, entry: str) -> None:
        if not _ID.fullmatch(value):
            raise self.fail(entry, f"id {value!r} does not match {ID_PATTERN}")

    def unique(self, ids: list[str], entry: str) -> None:
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                raise self.fail(entry, f"duplicate id {i!r}")
            seen.add(i)
