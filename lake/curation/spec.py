"""Dataset specs: the TOML file a model team writes to ask for a training set.

A spec names the feature job, the source tables (optionally pinned to Delta versions), the
filters (tenants, plants, machine types, a UTC time range) and the job's parameters, which are
passed through verbatim. The whole file is validated up front against pydantic models
(:class:`SpecDocument`, whose JSON Schema is published as ``lake/curation/spec.schema.json``
for editors) so a typo fails with the file, the exact key and the valid values named, not as
an empty dataset an hour later.

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
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from lake.curation.errors import SpecError
from maxlake.errors import did_you_mean
from schemas import EventKind
from schemas.kinds import ID_PATTERN

__all__ = [
    "NAME_PATTERN",
    "OUTPUT_FORMATS",
    "SCHEMA_ID",
    "SOURCE_KINDS",
    "DatasetSpec",
    "Filters",
    "SpecDocument",
    "load_spec",
    "parse_spec",
    "published_schema_path",
    "reference_specs",
    "resolve_spec",
    "spec_hash",
    "spec_json_schema",
    "write_published_schema",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Dataset (and split) names: lower case, digits, ``_`` and ``-``; no dots, no slashes."""

SOURCE_KINDS = tuple(k.value for k in EventKind)
"""Keys of ``[sources]``: one per silver table."""

OUTPUT_FORMATS = ("parquet",)

SCHEMA_ID = "https://maxlake.dev/schemas/dataset-spec.schema.json"
"""``$id`` of the published JSON Schema (``lake/curation/spec.schema.json``)."""


_NAME = re.compile(NAME_PATTERN)
_ID = re.compile(ID_PATTERN)


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
        card: the data card's ``license`` (a Hugging Face license id) and ``source`` (a
            citation of the raw data); both optional, recorded only when given.
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
    card: Mapping[str, str] = field(default_factory=dict)
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
        out = {
            "name": self.name,
            "description": self.description,
            "purpose": self.purpose,
            "job": self.job,
            "sources": dict(sorted(self.sources.items())),
            "filters": {k: v for k, v in filters.items() if v is not None},
            "params": _jsonable(self.params),
            "output": {"format": self.output_format},
        }
        if self.card:
            out["card"] = dict(sorted(self.card.items()))
        return out


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


def reference_specs() -> dict[str, Path]:
    """The packaged reference specs (``lake/curation/specs/*.toml``): dataset name -> file."""
    out: dict[str, Path] = {}
    for path in sorted(Path(__file__).with_name("specs").glob("*.toml")):
        with open(path, "rb") as fh:
            name = tomllib.load(fh).get("name")
        if isinstance(name, str):
            out[name] = path
    return out


def resolve_spec(ref: str | Path) -> Path:
    """A spec file path, or the packaged reference spec named ``ref``
    (``predictive-maintenance``, ``part-quality``, ...; ``_`` and ``-`` are interchangeable).

    Raises:
        SpecError: ``ref`` is neither an existing file nor a reference dataset name.
    """
    path = Path(ref)
    if path.exists():
        return path
    references = reference_specs()
    wanted = str(ref).replace("_", "-")
    if wanted in references:
        return references[wanted]
    hint = did_you_mean(wanted, sorted(references))
    raise SpecError(
        str(ref),
        "file",
        f"no such file, and not a reference dataset name{hint} "
        f"(reference: {', '.join(sorted(references))})",
    )


def parse_spec(
    doc: Mapping[str, Any], *, source: str = "<spec>", jobs: Collection[str] | None = None
) -> DatasetSpec:
    """Validate a parsed spec document (a TOML file's tables or a manifest's ``spec``).

    The document is checked against :class:`SpecDocument` (the published JSON Schema); every
    problem is reported at once, each with its exact location (``filters.start``,
    ``sources.telemetry``), and with them an unknown job when ``jobs`` is given.

    Raises:
        SpecError: naming ``source``, each key and the valid values (``problems`` has them all).
    """
    flat = _flatten_job(doc, source)
    problems: list[tuple[str, str]] = []
    model: SpecDocument | None = None
    try:
        model = SpecDocument.model_validate(flat)
    except ValidationError as exc:
        job_table = isinstance(doc.get("job"), Mapping)
        problems = [_problem(err, job_table=job_table) for err in exc.errors(include_url=False)]
    job = flat.get("job")
    if jobs is not None and isinstance(job, str) and job.strip() and job not in jobs:
        valid = ", ".join(sorted(jobs)) or "none"
        hint = did_you_mean(job, sorted(jobs))
        problems.append(("job", f"unknown job {job!r}{hint} (valid: {valid})"))
    if problems or model is None:
        raise SpecError.of(source, problems) from None
    assert isinstance(model.job, str)
    f = model.filters
    return DatasetSpec(
        name=model.name,
        purpose=model.purpose,
        job=model.job,
        description=model.description,
        sources=MappingProxyType({k.value: v for k, v in sorted(model.sources.items())}),
        filters=Filters(
            tenants=f.tenants,
            plants=f.plants,
            machine_types=f.machine_types,
            start=f.start,
            end=f.end,
        ),
        params=MappingProxyType(dict(model.params)),
        output_format=model.output.format,
        card=MappingProxyType(model.card.model_dump(exclude_none=True)),
        path=source if source != "<spec>" else None,
    )


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (what ``spec.schema.json`` publishes for editors)."""
    schema = SpecDocument.model_json_schema()
    schema.setdefault("$defs", {})["JobTable"] = JobTable.model_json_schema()
    schema["properties"]["job"] = _JOB_SCHEMA
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return schema


def _ids(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("must be a non-empty array of ids (omit the key for all)")
    for item in value:
        if not isinstance(item, str) or not _ID.fullmatch(item):
            raise ValueError(f"{item!r} is not an id matching {ID_PATTERN}")
    return tuple(sorted(set(value)))


def _instant(value: Any) -> Any:
    form = "an RFC 3339 time with an offset, e.g. 2025-01-31T00:00:00Z"
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not {form}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"must be {form}, got {value!r}")  # noqa: TRY004 - pydantic wants ValueError
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no offset: write {form}")
    return value.astimezone(UTC)


_Ids = Annotated[
    Annotated[
        tuple[Annotated[str, StringConstraints(pattern=ID_PATTERN)], ...], Field(min_length=1)
    ]
    | None,
    BeforeValidator(_ids),
]
_Instant = Annotated[AwareDatetime | None, BeforeValidator(_instant)]


class FiltersTable(BaseModel):
    """``[filters]``: which source rows a build reads (omit a key for no restriction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: _Ids = Field(None, description="tenant ids to read")
    plants: _Ids = Field(None, description="plant ids to read")
    machine_types: _Ids = Field(None, description="machine types to read (registry ids)")
    start: _Instant = Field(None, description="inclusive UTC start of event_time (RFC 3339)")
    end: _Instant = Field(None, description="exclusive UTC end of event_time (RFC 3339)")

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if end is not None and start is not None and start >= end:
            raise ValueError(f"must be after filters.start ({_rfc3339(start)})")
        return end


class OutputTable(BaseModel):
    """``[output]``: how the splits are written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["parquet"] = "parquet"


class CardTable(BaseModel):
    """``[card]``: what the data card says about the data's origin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    license: str | None = Field(
        None, min_length=1, description="Hugging Face license id (cc-by-4.0, other, ...)"
    )
    source: str | None = Field(None, min_length=1, description="citation of the raw data")


class JobTable(BaseModel):
    """``[job]``: ``name`` picks the job; every other key is one of its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, description="a job of lake.curation.jobs.JOBS")


def _name(value: Any) -> Any:
    if isinstance(value, str) and not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} does not match {NAME_PATTERN}")
    return value


def _text(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


_JOB_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "job name; its parameters go in [params]"},
        {"$ref": "#/$defs/JobTable"},
    ]
}


class SpecDocument(BaseModel):
    """A dataset spec file as written (TOML). See docs/DATASETS.md."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="maxlake dataset spec")

    name: Annotated[str, BeforeValidator(_name)] = Field(
        pattern=NAME_PATTERN, description="dataset name; versions are numbered per name"
    )
    description: str = Field("", description="free text for the catalog")
    purpose: Annotated[str, BeforeValidator(_text)] = Field(
        min_length=1, description="what the data is for; sharing contracts are keyed by purpose"
    )
    job: Annotated[str, BeforeValidator(_text)]
    params: dict[str, Any] = Field(
        default_factory=dict, description='the job\'s parameters (with job = "<name>")'
    )
    sources: dict[EventKind, Annotated[int, Field(ge=0, strict=True)]] = Field(
        default_factory=dict,
        description="silver kind -> pinned Delta version (omit a kind to read its latest)",
    )
    filters: FiltersTable = Field(default_factory=FiltersTable)
    output: OutputTable = Field(default_factory=OutputTable)
    card: CardTable = Field(default_factory=CardTable)


def _flatten_job(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The ``[job]`` table form as ``job = name`` plus ``params``."""
    flat = dict(doc)
    job = doc.get("job")
    if isinstance(job, Mapping):
        if "params" in doc:
            raise SpecError(source, "params", "give parameters in [job] or [params], not both")
        flat["job"] = job.get("name")
        flat["params"] = {k: v for k, v in job.items() if k != "name"}
    return flat


_VALID_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): tuple(k for k in SpecDocument.model_fields),
    ("filters",): tuple(FiltersTable.model_fields),
    ("output",): tuple(OutputTable.model_fields),
    ("card",): tuple(CardTable.model_fields),
}
_HINTS = {
    "sources": "must be a Delta table version (an integer >= 0), got {input!r}; "
    "omit the key to read the latest version",
    "output.format": "{input!r} is not supported (valid: parquet)",
}


def _problem(err: ErrorDetails, *, job_table: bool) -> tuple[str, str]:
    """(dotted key, problem) of one error pydantic found."""
    loc = tuple(str(p) for p in err["loc"] if p != "[key]")
    key = ".".join(loc) or "spec"
    if key == "job" and job_table:
        key = "job.name"
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        valid = _VALID_KEYS.get(loc[:-1], ())
        close = did_you_mean(loc[-1], valid) if loc else ""
        return key, f"unknown key{close} (valid: {', '.join(valid)})"
    if kind == "missing":
        return key, "is required"
    if kind == "enum" and loc[:1] == ("sources",):
        close = did_you_mean(loc[-1], SOURCE_KINDS)
        return key, f"unknown source{close} (valid: {', '.join(SOURCE_KINDS)})"
    if kind == "model_type":
        return key, f"must be a table, got {type(value).__name__}"
    if kind == "value_error":
        return key, str(err.get("ctx", {}).get("error", err["msg"]))
    known = _HINTS.get(key) or _HINTS.get(loc[0] if loc else "")
    if known:
        return key, known.format(input=value)
    return key, f"{err['msg'][:1].lower()}{err['msg'][1:]}, got {value!r}"


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


def published_schema_path() -> Path:
    """Where the spec's JSON Schema is published (inside the installed package)."""
    return Path(__file__).with_name("spec.schema.json")


def write_published_schema() -> Path:
    """Regenerate ``spec.schema.json`` from :class:`SpecDocument` (run after changing it)."""
    path = published_schema_path()
    path.write_text(json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n")
    return path
