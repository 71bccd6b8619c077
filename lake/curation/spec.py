"""Dataset specs: the TOML file a model team writes to ask for a training set.

A spec names the feature job, the source tables (optionally pinned to Delta versions), the
filters (tenants, plants, machine types, a UTC time range) and the job's parameters, which are
passed through verbatim. The whole file is validated up front so a typo fails with the file,
the key and the valid values named, not as an empty dataset an hour later.

``spec_hash`` is the sha256 of the spec's canonical JSON: key order, whitespace, comments and
the way a time is written in the file do not change it; any change of meaning does.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lake.curation.errors import SpecError
from schemas import ID_PATTERN, EventKind

__all__ = [
    "NAME_PATTERN",
    "OUTPUT_FORMATS",
    "SOURCE_KINDS",
    "DatasetSpec",
    "Filters",
    "load_spec",
    "parse_spec",
    "spec_hash",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Dataset (and split) names: lower case, digits, ``_`` and ``-``; no dots, no slashes."""

SOURCE_KINDS = tuple(k.value for k in EventKind)
"""Keys of ``[sources]``: one per silver table."""

OUTPUT_FORMATS = ("parquet",)

_NAME = re.compile(NAME_PATTERN)
_ID = re.compile(ID_PATTERN)
_TOP_KEYS = ("name", "description", "purpose", "job", "params", "sources", "filters", "output")
_FILTER_KEYS = ("tenants", "plants", "machine_types", "start", "end")


@dataclass(frozen=True)
class Filters:
    """Which source rows a build reads. ``None`` means no restriction.

    ``start`` is inclusive and ``end`` exclusive, both timezone-aware UTC, applied to
    ``event_time``; the ``date`` partition column is pruned with the same range first.
    """

    tenants: tuple[str, ...] | None = None
    plants: tuple[str, ...] | None = None
    machine_types: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset spec.

    Attributes:
        name: dataset name (:data:`NAME_PATTERN`); versions are numbered per name.
        description: free text for the catalog.
        purpose: what the data is for; sharing contracts are keyed by purpose.
        job: key of the feature job registry (``lake.curation.jobs.JOBS``).
        sources: silver kind -> pinned Delta version; kinds absent here are read at their
            latest version at build time (and the version read is recorded in the manifest).
        filters: row filters applied before the job runs.
        params: the ``[job]`` table, passed to the job verbatim.
        output_format: file format of the splits (``parquet``).
        path: the file the spec was read from (not part of the hash).
    """

    name: str
    purpose: str
    job: str
    description: str = ""
    sources: Mapping[str, int] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    params: Mapping[str, Any] = field(default_factory=dict)
    output_format: str = "parquet"
    path: str | None = None

    def pinned(self, versions: Mapping[str, int | None]) -> DatasetSpec:
        """This spec with every source pinned to ``versions`` (for example a manifest's).

        Kinds mapped to None (the table did not exist at build time) stay unpinned.
        """
        merged = dict(self.sources)
        merged.update({k: v for k, v in versions.items() if v is not None})
        return replace(self, sources=MappingProxyType(dict(sorted(merged.items()))))

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready form (what the manifest records and the hash covers)."""
        f = self.filters
        filters: dict[str, Any] = {
            "tenants": list(f.tenants) if f.tenants is not None else None,
            "plants": list(f.plants) if f.plants is not None else None,
            "machine_types": list(f.machine_types) if f.machine_types is not None else None,
            "start": _rfc3339(f.start) if f.start else None,
            "end": _rfc3339(f.end) if f.end else None,
        }
        return {
            "name": self.name,
            "description": self.description,
            "purpose": self.purpose,
            "job": self.job,
            "sources": dict(sorted(self.sources.items())),
            "filters": {k: v for k, v in filters.items() if v is not None},
            "params": _jsonable(self.params),
            "output": {"format": self.output_format},
        }


def spec_hash(spec: DatasetSpec) -> str:
    """sha256 (hex) of the canonical JSON of ``spec``."""
    canonical = json.dumps(
        spec.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_spec(path: str | Path, *, jobs: Collection[str] | None = None) -> DatasetSpec:
    """Read and validate a spec file.

    Args:
        path: the TOML file.
        jobs: the valid job names; None skips that check (the build checks again).

    Raises:
        SpecError: (a ``ConfigError``) naming the file, the key and the valid values.
    """
    src = str(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise SpecError(src, "file", f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(src, "file", f"not valid TOML: {exc}") from exc
    return parse_spec(doc, source=src, jobs=jobs)


def parse_spec(
    doc: Mapping[str, Any], *, source: str = "<spec>", jobs: Collection[str] | None = None
) -> DatasetSpec:
    """Validate a parsed spec document (a TOML file's tables or a manifest's ``spec``).

    Raises:
        SpecError: naming ``source``, the key and the valid values.
    """
    p = _Parser(source)
    p.keys(doc, _TOP_KEYS, "spec")
    name = p.string(doc, "name")
    if not _NAME.fullmatch(name):
        raise p.fail("name", f"{name!r} does not match {NAME_PATTERN}")
    job, params = p.job(doc)
    if jobs is not None and job not in jobs:
        raise p.fail("job", f"unknown job {job!r} (valid: {', '.join(sorted(jobs)) or 'none'})")
    output = p.table(doc, "output")
    p.keys(output, ("format",), "output")
    fmt = output.get("format", "parquet")
    if fmt not in OUTPUT_FORMATS:
        raise p.fail("output.format", f"{fmt!r} is not supported (valid: parquet)")
    return DatasetSpec(
        name=name,
        purpose=p.string(doc, "purpose"),
        job=job,
        description=p.string(doc, "description", required=False),
        sources=MappingProxyType(p.sources(p.table(doc, "sources"))),
        filters=p.filters(p.table(doc, "filters")),
        params=MappingProxyType(params),
        output_format=str(fmt),
        path=source if source != "<spec>" else None,
    )


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError(self.source, key, problem)

    def keys(self, doc: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
        for key in doc:
            if key not in valid:
                at = key if where == "spec" else f"{where}.{key}"
                raise self.fail(at, f"unknown key (valid: {', '.join(valid)})")

    def job(self, doc: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """``job = "<name>"`` with an optional ``[params]`` table, or a ``[job]`` table whose
        ``name`` picks the job and whose other keys are its parameters."""
        value = doc.get("job")
        if isinstance(value, Mapping):
            if "params" in doc:
                raise self.fail("params", "give parameters in [job] or [params], not both")
            params = {k: v for k, v in value.items() if k != "name"}
            return self.string(value, "name", where="job.name"), params
        return self.string(doc, "job"), dict(self.table(doc, "params"))

    def table(self, doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {type(value).__name__}")
        return value

    def string(
        self, doc: Mapping[str, Any], key: str, *, required: bool = True, where: str = ""
    ) -> str:
        value = doc.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(where or key, f"must be a non-empty string, got {value!r}")
        return value

    def sources(self, doc: Mapping[str, Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind, version in doc.items():
            if kind not in SOURCE_KINDS:
                raise self.fail(
                    f"sources.{kind}", f"unknown source (valid: {', '.join(SOURCE_KINDS)})"
                )
            if type(version) is not int or version < 0:
                raise self.fail(
                    f"sources.{kind}",
                    f"must be a Delta table version (an integer >= 0), got {version!r}; "
                    "omit the key to read the latest version",
                )
            out[kind] = version
        return dict(sorted(out.items()))

    def filters(self, doc: Mapping[str, Any]) -> Filters:
        self.keys(doc, _FILTER_KEYS, "filters")
        start, end = self.instant(doc, "start"), self.instant(doc, "end")
        if start is not None and end is not None and start >= end:
            raise self.fail("filters.end", f"must be after filters.start ({_rfc3339(start)})")
        return Filters(
            tenants=self.ids(doc, "tenants"),
            plants=self.ids(doc, "plants"),
            machine_types=self.ids(doc, "machine_types"),
            start=start,
            end=end,
        )

    def ids(self, doc: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
        if key not in doc:
            return None
        value = doc[key]
        where = f"filters.{key}"
        if not isinstance(value, list) or not value:
            raise self.fail(where, "must be a non-empty array of ids (omit the key for all)")
        for item in value:
            if not isinstance(item, str) or not _ID.fullmatch(item):
                raise self.fail(where, f"{item!r} is not an id matching {ID_PATTERN}")
        return tuple(sorted(set(value)))

    def instant(self, doc: Mapping[str, Any], key: str) -> datetime | None:
        if key not in doc:
            return None
        value = doc[key]
        where = f"filters.{key}"
        form = "an RFC 3339 time with an offset, e.g. 2025-01-31T00:00:00Z"
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(where, f"{doc[key]!r} is not {form}") from None
        if not isinstance(value, datetime):
            raise self.fail(where, f"must be {form}, got {value!r}")
        if value.tzinfo is None:
            raise self.fail(where, f"{value.isoformat()} has no offset: write {form}")
        return value.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    """TOML values as JSON values: times become ISO strings, tables sorted by key."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return _rfc3339(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return value
