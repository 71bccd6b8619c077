"""Sharing contracts: what one tenant shares for one purpose, and in which de-identified form.

A contract is a TOML file written by (or for) the tenant's data-protection officer::

    id = "northwind-pm"                        # unique across the alliance
    tenant = "northwind-auto"
    purposes = ["predictive-maintenance-*"]    # a purpose, or a family: a prefix ending in *
    description = "spindle data for the PM consortium model"

    [share]
    kinds = ["telemetry", "machine_event"]     # event kinds that may leave the tenant
    tags = ["spindle_temp", "vibration_rms"]   # telemetry tags; omit for every tag
    confidential_tags = ["feed_setpoint"]      # never shared (recipes, set-points)
    confidential_columns = ["inspection.dimensions"]  # emptied (set to null)
    start = 2026-01-01T00:00:00Z               # optional event-time range [start, end)
    end = 2027-01-01T00:00:00Z

    [deidentify]
    release = []                               # identifier columns published in clear
    suppress_rare = true                       # drop machine types too few tenants share

Secure by default: every identifier column (tenant, plant, line, machine, part serial, lot) is
replaced by a keyed pseudonym unless ``release`` names it, and the ``tenant`` column is left
out of a published set unless released. ``pseudonymise`` (the older key) is still accepted; it
changes nothing, since whatever is not released is pseudonymised.

The file is validated by the pydantic model :class:`ContractFile` (errors name the exact key,
e.g. ``share.kinds[0]``); its JSON Schema is published as
``docs/schemas/sharing-contract.schema.json`` for editors (:func:`event_json_schema`).
The version is not in the file: the contract store numbers each file it accepts (``v1``,
``v2``, ...), so a published version never changes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lake.sharing.errors import ContractError
from maxlake.errors import validation_location
from schemas import EVENT_SCHEMAS, EventKind, silver_schema
from schemas.kinds import TENANT_ID_PATTERN

__all__ = [
    "ALWAYS_REMOVED",
    "CONTRACT_ID_PATTERN",
    "PSEUDONYMISABLE",
    "PURPOSE_PATTERN",
    "Contract",
    "ContractFile",
    "event_json_schema",
    "parse_contract",
    "schema_text",
]

CONTRACT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PURPOSE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}\*?$"
PSEUDONYMISABLE = (
    "tenant",
    "plant",
    "line",
    "machine",
    *(c for contract in EVENT_SCHEMAS.values() for c in contract.identifier_columns),
)
"""Identifier columns, pseudonymised unless released: the envelope's and every kind's
``identifier_columns`` (``machine``: also a kind's ``machine_list_column``)."""
ALWAYS_REMOVED = {c.kind.value: c.free_text_columns for c in EVENT_SCHEMAS.values()}
"""Free-text columns of each kind (its contract's ``free_text_columns``), emptied in every
shared row whatever the contract says."""

if TYPE_CHECKING:
    Identifier = str
else:
    Identifier = Literal[PSEUDONYMISABLE]
    """One of :data:`PSEUDONYMISABLE` (a literal type, so the JSON Schema lists them)."""
_STRUCTURAL = frozenset(
    {"event_id", "schema_version", "tenant", "plant", "line", "machine", "event_time", "date"}
)
_NonEmpty = Annotated[str, Field(min_length=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShareSection(_Section):
    """``[share]``: what leaves the tenant."""

    kinds: list[str] = Field(min_length=1, description="event kinds that may be shared")
    tags: list[_NonEmpty] | None = Field(
        None, description="telemetry tags that may be shared; omit for every tag"
    )
    confidential_tags: list[_NonEmpty] = Field(
        default_factory=list, description="telemetry tags never shared"
    )
    confidential_columns: list[str] = Field(
        default_factory=list, description="kind.column values emptied (set to null)"
    )
    start: AwareDatetime | None = Field(None, description="first event time shared (inclusive)")
    end: AwareDatetime | None = Field(None, description="end of the event times shared (exclusive)")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        valid = [k.value for k in EventKind]
        for kind in kinds:
            if kind not in valid:
                raise ValueError(f"unknown kind {kind!r} (valid: {', '.join(valid)})")
        return kinds

    @field_validator("confidential_columns")
    @classmethod
    def _sharable_columns(cls, columns: list[str]) -> list[str]:
        valid_kinds = [k.value for k in EventKind]
        for column in columns:
            kind, _, name = column.partition(".")
            if kind not in valid_kinds:
                raise ValueError(f"{column!r}: write kind.column (kinds: {', '.join(valid_kinds)})")
            names = [n for n in silver_schema(kind).names if n not in _STRUCTURAL]
            if name not in names:
                raise ValueError(
                    f"{column!r}: {kind} has no such sharable column (valid: {', '.join(names)})"
                )
        return columns

    @model_validator(mode="after")
    def _range(self) -> ShareSection:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("end must be after start")
        return self


class DeidentifySection(_Section):
    """``[deidentify]``: the de-identified form (secure by default)."""

    release: list[Identifier] = Field(
        default_factory=list,
        description="identifier columns published in clear; every other one is pseudonymised "
        "and the tenant column is left out",
    )
    pseudonymise: list[Identifier] = Field(
        default_factory=list,
        description="accepted for older files; changes nothing (whatever is not released is "
        "pseudonymised)",
    )
    suppress_rare: bool = Field(
        True, description="drop rows of machine types fewer tenants than the group size share"
    )
    time_shift_days: float = Field(
        30.0,
        ge=0,
        le=3650,
        description="every event time of a plant is moved by one keyed, per-contract offset, "
        "uniform in +-days (whole seconds); keeps order and spacing within the plant; 0 = off",
    )
    value_noise: float = Field(
        0.01,
        ge=0,
        le=0.5,
        description="standard deviation of keyed noise on each telemetry value, as a share "
        "of the tag's registry range max - min (0.01 = 1 % of the range), and on each "
        "inspection dimension, as a share of the value (no registry range); 0 = off",
    )
    feature_noise: float = Field(
        0.01,
        ge=0,
        le=0.5,
        description="relative standard deviation of keyed multiplicative noise on each float "
        "feature value of the job's output rows (0.01 = 1 %), which averaging over readings "
        "does not shrink; 0 = off",
    )
    time_grid_s: int = Field(
        0,
        ge=0,
        le=86_400,
        description="published times are floored to multiples of this many seconds (after "
        "the time shift), so exact times cannot serve as a join key; 0 = off",
    )
    max_linkable_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="refuse to publish when more than this share of rows links uniquely to "
        "another published version (disclosure report)",
    )
    linkage_tolerance: float = Field(
        0.001,
        gt=0,
        le=1,
        description="relative tolerance of the nearest-neighbour linkage check",
    )
    min_group_size: int | None = Field(
        None,
        ge=1,
        description="refuse to publish when a machine type in the output comes from fewer "
        "companies; omit for no such limit",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> DeidentifySection:
        both = sorted(set(self.release) & set(self.pseudonymise))
        if both:
            raise ValueError(f"{', '.join(both)} both released and pseudonymised; pick one")
        return self


class ContractFile(_Section):
    """A sharing contract file as written by the tenant's data-protection officer."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="maxlake sharing contract",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    id: str = Field(pattern=CONTRACT_ID_PATTERN, description="unique across the alliance")
    tenant: str = Field(
        pattern=TENANT_ID_PATTERN, description="the tenant whose rows it releases (no dots)"
    )
    purposes: list[Annotated[str, Field(pattern=PURPOSE_PATTERN)]] = Field(
        min_length=1, description="purposes, or families: a prefix ending in *"
    )
    description: str = Field("", description="free text for the catalog")
    share: ShareSection
    deidentify: DeidentifySection = Field(default_factory=DeidentifySection)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of a contract file (docs/schemas/sharing-contract.schema.json)."""
    return ContractFile.model_json_schema()


@dataclass(frozen=True)
class Contract:
    """One version of a tenant's sharing contract.

    Attributes:
        id: contract id, unique across the alliance (also the pseudonym key's name).
        version: assigned by the store; 0 for a file not yet added.
        tenant: the tenant whose rows it releases.
        purposes: purposes or purpose families (``prefix*``) it covers.
        kinds: event kinds that may be shared.
        tags: telemetry tags that may be shared; None = all but the confidential ones.
        confidential_tags: tags never shared.
        confidential_columns: ``kind.column`` values emptied in shared rows.
        start: first event time shared (inclusive), or None.
        end: end of the shared event times (exclusive), or None.
        pseudonymise: identifier columns replaced by keyed pseudonyms (all not released).
        suppress_rare: drop rows of machine types fewer tenants than the group size share.
        description: free text for the catalog.
        sha256: hash of the file's bytes (recorded in manifests).
        release: identifier columns published in clear.
        time_shift_days: bound of the keyed per-plant time shift, in days (0 = off).
        value_noise: standard deviation of the noise on telemetry values, a share of the
            tag's registry range (max - min), and on inspection dimensions, a share of the
            value (0 = off).
        feature_noise: relative standard deviation of the noise on the output's float
            feature values (0 = off).
        time_grid_s: published times are floored to multiples of this, in seconds (0 = off).
        max_linkable_share: disclosure limit on uniquely linkable rows, a share in [0, 1].
        linkage_tolerance: relative tolerance of the nearest-neighbour check.
        min_group_size: disclosure limit on companies behind a machine type, or None.
    """

    id: str
    version: int
    tenant: str
    purposes: tuple[str, ...]
    kinds: tuple[str, ...]
    tags: tuple[str, ...] | None
    confidential_tags: tuple[str, ...]
    confidential_columns: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    pseudonymise: tuple[str, ...]
    suppress_rare: bool
    description: str
    sha256: str
    release: tuple[str, ...] = ()
    time_shift_days: float = 0.0
    value_noise: float = 0.0
    feature_noise: float = 0.0
    time_grid_s: int = 0
    max_linkable_share: float = 1.0
    linkage_tolerance: float = 0.001
    min_group_size: int | None = None

    def covers(self, purpose: str) -> bool:
        """Whether the contract releases data for ``purpose`` (exact or family prefix)."""
        for allowed in self.purposes:
            if allowed.endswith("*"):
                if purpose.startswith(allowed[:-1]):
                    return True
            elif purpose == allowed:
                return True
        return False

    def emptied_columns(self, kind: str) -> tuple[str, ...]:
        """Columns of ``kind`` set to null: free text plus the contract's confidential ones."""
        confidential = [
            c.split(".", 1)[1] for c in self.confidential_columns if c.startswith(f"{kind}.")
        ]
        return tuple(sorted({*ALWAYS_REMOVED.get(kind, ()), *confidential}))

    @property
    def releases_tenant(self) -> bool:
        """Whether the tenant column may appear (in clear) in a published set."""
        return "tenant" in self.release

    @property
    def ref(self) -> dict[str, Any]:
        """What a manifest records about the contract (the stored file; see published.py)."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


def parse_contract(data: bytes, *, source: str, version: int = 0) -> Contract:
    """Validate a contract file's bytes.

    Raises:
        ContractError: naming ``source``, the exact key (``share.kinds[0]``) and the problem.
    """
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ContractError(source, "file", f"not valid UTF-8 TOML: {exc}") from exc
    try:
        model = ContractFile.model_validate(doc)
    except ValidationError as exc:
        error = exc.errors()[0]
        problem = str(error["msg"]).removeprefix("Value error, ")
        if isinstance(error.get("input"), str | int | float | bool):
            problem += f" (got {error['input']!r})"
        where = validation_location(error["loc"], root="file")
        raise ContractError(source, where, problem) from exc
    share, deid = model.share, model.deidentify
    return Contract(
        id=model.id,
        version=version,
        tenant=model.tenant,
        purposes=tuple(model.purposes),
        kinds=tuple(sorted(set(share.kinds))),
        tags=tuple(sorted(set(share.tags))) if share.tags is not None else None,
        confidential_tags=tuple(sorted(set(share.confidential_tags))),
        confidential_columns=tuple(sorted(set(share.confidential_columns))),
        start=share.start.astimezone(UTC) if share.start else None,
        end=share.end.astimezone(UTC) if share.end else None,
        pseudonymise=tuple(c for c in PSEUDONYMISABLE if c not in deid.release),
        suppress_rare=deid.suppress_rare,
        description=model.description,
        sha256=hashlib.sha256(data).hexdigest(),
        release=tuple(c for c in PSEUDONYMISABLE if c in deid.release),
        time_shift_days=deid.time_shift_days,
        value_noise=deid.value_noise,
        feature_noise=deid.feature_noise,
        time_grid_s=deid.time_grid_s,
        max_linkable_share=deid.max_linkable_share,
        linkage_tolerance=deid.linkage_tolerance,
        min_group_size=deid.min_group_size,
    )


def schema_text() -> str:
    """The published JSON Schema file's text."""
    return json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n"
