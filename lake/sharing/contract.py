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
    pseudonymise = ["plant", "line", "machine", "part_serial", "lot"]
    suppress_rare = true                       # drop machine types too few tenants share

The version is not in the file: the contract store numbers each file it accepts (``v1``,
``v2``, ...), so a published version never changes.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lake.sharing.errors import ContractError
from schemas import ID_PATTERN, EventKind, lake_schema

__all__ = [
    "ALWAYS_REMOVED",
    "CONTRACT_ID_PATTERN",
    "PSEUDONYMISABLE",
    "PURPOSE_PATTERN",
    "Contract",
    "parse_contract",
]

CONTRACT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PURPOSE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}\*?$"
PSEUDONYMISABLE = ("tenant", "plant", "line", "machine", "part_serial", "lot")
"""Identifier columns a contract may pseudonymise (``machine`` covers ``inspection.machines``)."""
ALWAYS_REMOVED = {"machine_event": ("alarm_text",)}
"""Free-text columns, emptied in every shared row whatever the contract says."""

_STRUCTURAL = frozenset(
    {"event_id", "schema_version", "tenant", "plant", "line", "machine", "event_time", "date"}
)
_CONTRACT_ID = re.compile(CONTRACT_ID_PATTERN)
_PURPOSE = re.compile(PURPOSE_PATTERN)
_ID = re.compile(ID_PATTERN)
_TOP = ("id", "tenant", "purposes", "description", "share", "deidentify")
_SHARE = ("kinds", "tags", "confidential_tags", "confidential_columns", "start", "end")
_DEID = ("pseudonymise", "suppress_rare")


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
        pseudonymise: identifier columns replaced by keyed pseudonyms.
        suppress_rare: drop rows of machine types fewer tenants than the group size share.
        description: free text for the catalog.
        sha256: hash of the file's bytes (recorded in manifests).
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

    def covers(self, purpose: str) -> bool:
        """Whether the contract releases data for ``purpose`` (exact or family prefix)."""
        for allowed in self.purposes:
            if allowed.endswith("*"):
                if purpose.startswith(allowed[:-1]):
                    return True
            elif purpose == allowed:
                return True
        return False

    def shares_tag(self, tag: str) -> bool:
        """Whether telemetry of ``tag`` may be shared."""
        if tag in self.confidential_tags:
            return False
        return self.tags is None or tag in self.tags

    def emptied_columns(self, kind: str) -> tuple[str, ...]:
        """Columns of ``kind`` set to null: free text plus the contract's confidential ones."""
        confidential = [
            c.split(".", 1)[1] for c in self.confidential_columns if c.startswith(f"{kind}.")
        ]
        return tuple(sorted({*ALWAYS_REMOVED.get(kind, ()), *confidential}))

    @property
    def ref(self) -> dict[str, Any]:
        """What a manifest records about the contract."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


def parse_contract(data: bytes, *, source: str, version: int = 0) -> Contract:
    """Validate a contract file's bytes.

    Raises:
        ContractError: naming ``source``, the key and the valid values.
    """
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ContractError(source, "file", f"not valid UTF-8 TOML: {exc}") from exc
    p = _Parser(source)
    p.keys(doc, _TOP, "")
    cid = p.string(doc, "id")
    if not _CONTRACT_ID.fullmatch(cid):
        raise p.fail("id", f"{cid!r} does not match {CONTRACT_ID_PATTERN}")
    tenant = p.string(doc, "tenant")
    if not _ID.fullmatch(tenant):
        raise p.fail("tenant", f"{tenant!r} does not match {ID_PATTERN}")
    purposes = p.strings(doc, "purposes", required=True)
    for purpose in purposes:
        if not _PURPOSE.fullmatch(purpose):
            raise p.fail("purposes", f"{purpose!r} does not match {PURPOSE_PATTERN}")
    share, deid = p.table(doc, "share"), p.table(doc, "deidentify")
    p.keys(share, _SHARE, "share")
    p.keys(deid, _DEID, "deidentify")
    kinds = p.strings(share, "kinds", required=True, where="share.kinds")
    valid_kinds = [k.value for k in EventKind]
    for kind in kinds:
        if kind not in valid_kinds:
            raise p.fail("share.kinds", f"unknown kind {kind!r} (valid: {', '.join(valid_kinds)})")
    tags = p.strings(share, "tags", where="share.tags") if "tags" in share else None
    columns = p.strings(share, "confidential_columns", where="share.confidential_columns")
    for column in columns:
        p.column(column)
    start, end = p.instant(share, "start"), p.instant(share, "end")
    if start is not None and end is not None and start >= end:
        raise p.fail("share.end", "must be after share.start")
    pseudonymise = p.strings(deid, "pseudonymise", where="deidentify.pseudonymise")
    for column in pseudonymise:
        if column not in PSEUDONYMISABLE:
            valid = ", ".join(PSEUDONYMISABLE)
            raise p.fail(
                "deidentify.pseudonymise", f"{column!r} cannot be pseudonymised (valid: {valid})"
            )
    suppress = deid.get("suppress_rare", True)
    if not isinstance(suppress, bool):
        raise p.fail("deidentify.suppress_rare", f"must be true or false, got {suppress!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise p.fail("description", "must be a string")
    return Contract(
        id=cid,
        version=version,
        tenant=tenant,
        purposes=purposes,
        kinds=tuple(sorted(set(kinds))),
        tags=tuple(sorted(set(tags))) if tags is not None else None,
        confidential_tags=tuple(
            sorted(set(p.strings(share, "confidential_tags", where="share.confidential_tags")))
        ),
        confidential_columns=tuple(sorted(set(columns))),
        start=start,
        end=end,
        pseudonymise=tuple(sorted(set(pseudonymise))),
        suppress_rare=suppress,
        description=description,
        sha256=hashlib.sha256(data).hexdigest(),
    )


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ContractError:
        return ContractError(self.source, key, problem)

    def keys(self, doc: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
        for key in doc:
            if key not in valid:
                at = f"{where}.{key}" if where else key
                raise self.fail(at, f"unknown key (valid: {', '.join(valid)})")

    def table(self, doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, "must be a table")
        return value

    def string(self, doc: Mapping[str, Any], key: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def strings(
        self, doc: Mapping[str, Any], key: str, *, required: bool = False, where: str = ""
    ) -> tuple[str, ...]:
        value = doc.get(key, [])
        at = where or key
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(at, "must be an array of non-empty strings")
        if required and not value:
            raise self.fail(at, "must name at least one value")
        return tuple(value)

    def column(self, column: str) -> None:
        kind, _, name = column.partition(".")
        valid_kinds = [k.value for k in EventKind]
        where = "share.confidential_columns"
        if kind not in valid_kinds:
            raise self.fail(
                where, f"{column!r}: write kind.column (kinds: {', '.join(valid_kinds)})"
            )
        names = [n for n in lake_schema(kind).names if n not in _STRUCTURAL]
        if name not in names:
            raise self.fail(
                where, f"{column!r}: {kind} has no such sharable column (valid: {', '.join(names)})"
            )

    def instant(self, doc: Mapping[str, Any], key: str) -> datetime | None:
        if key not in doc:
            return None
        value = doc[key]
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                value = None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise self.fail(
                f"share.{key}", "must be an RFC 3339 time with an offset, e.g. 2026-01-01T00:00:00Z"
            )
        return value.astimezone(UTC)
