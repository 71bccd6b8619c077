"""The protocol's names over curated sets: share = the caller's grants, schema = dataset,
table = split, table version = dataset version.

Every principal sees one share, named by ``MAXLAKE_SHARE_NAME`` (default ``curated``): the
datasets it holds a grant for and that have a servable version (built under contracts, active,
no contract revoked, output checks passed). Its twin ``<share>-allow-failed-quality`` (not
listed; a reader asks for it by name, as ``?allow_failed_quality=true`` on the HTTP API) also
serves versions that failed their output checks. Names are case-insensitive in the protocol;
maxlake's are lower case, so they are lower-cased before any check. Every decision is
:func:`lake.access.check_read`'s. These functions block (manifest reads): call them in a thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lake.access import Decision, Principal, check_read
from lake.curation import list_datasets
from lake.curation.manifest import Manifest
from maxlake.server.context import ServiceContext

__all__ = [
    "OPT_IN_SUFFIX",
    "TableRef",
    "check",
    "opt_in_share",
    "opts_in",
    "resolve",
    "share_id",
    "table_id",
    "unknown_share",
    "visible",
]

OPT_IN_SUFFIX = "-allow-failed-quality"
"""Appended to the share's name, the share that also serves versions that failed their checks."""

_NAMESPACE = uuid.UUID("6f1b7c52-3a0e-4d8e-9f57-2f0f3c1a9b11")


@dataclass(frozen=True)
class TableRef:
    """A ``share.schema.table`` as asked (lower-cased)."""

    share: str
    schema: str
    table: str | None = None

    @classmethod
    def of(cls, share: str, schema: str, table: str | None = None) -> TableRef:
        """Lower-case the three names."""
        return cls(share.lower(), schema.lower(), table.lower() if table is not None else None)


def share_id(share: str) -> str:
    """A stable UUID for a share name."""
    return str(uuid.uuid5(_NAMESPACE, f"share:{share}"))


def table_id(share: str, schema: str, table: str) -> str:
    """A stable UUID for a table (the same across dataset versions)."""
    return str(uuid.uuid5(_NAMESPACE, f"table:{share}.{schema}.{table}"))


def opt_in_share(share: str) -> str:
    """The name of ``share``'s twin that also serves versions that failed their checks."""
    return f"{share}{OPT_IN_SUFFIX}"


def opts_in(ctx: ServiceContext, share: str) -> bool | None:
    """Whether ``share`` (lower case) opts in to failed-quality versions: False for the
    service's share, True for its twin, None for a share that does not exist."""
    name = ctx.settings.share_name
    return {name: False, opt_in_share(name): True}.get(share)


def unknown_share(ctx: ServiceContext, share: str) -> Decision:
    """The 404 for a share that is neither the service's share nor its twin."""
    name = ctx.settings.share_name
    return Decision(
        "not_found",
        404,
        f"no share {share!r} (your share: {name!r}; {opt_in_share(name)!r} also serves "
        "versions that failed their output checks)",
    )


def visible(
    ctx: ServiceContext, principal: Principal, *, allow_failed_quality: bool = False
) -> list[Manifest]:
    """The newest servable manifest of each dataset ``principal`` may read (its schemas); with
    ``allow_failed_quality``, a newest version that failed its output checks too."""
    out = []
    for summary in list_datasets(ctx.curated):
        if not principal.may_read(summary.name) or summary.latest is None:
            continue
        decision = check(ctx, principal, summary.name, None, None, allow_failed_quality)
        if decision.allowed and decision.manifest is not None:
            out.append(decision.manifest)
    return out


def resolve(
    ctx: ServiceContext,
    principal: Principal | None,
    ref: TableRef,
    version: int | None = None,
) -> Decision:
    """May ``principal`` read ``ref`` (a schema, or a table when ``ref.table`` is set)?"""
    if principal is None:
        return Decision("unauthenticated", 401, "a valid bearer token is required")
    opted = opts_in(ctx, ref.share)
    if opted is None:
        return unknown_share(ctx, ref.share)
    return check(ctx, principal, ref.schema, version, ref.table, opted)


def check(
    ctx: ServiceContext,
    principal: Principal | None,
    name: str,
    version: str | int | None,
    split: str | None,
    allow_failed_quality: bool = False,
) -> Decision:
    """:func:`lake.access.check_read` against the service's curated area and contracts: may
    ``principal`` read ``name`` at ``version`` (newest active when None), and ``split`` when
    given? Every Delta Sharing route decides through this one call."""
    return check_read(
        principal,
        name,
        version,
        split,
        lake_root=ctx.curated,
        contracts=ctx.contracts,
        allow_failed_quality=allow_failed_quality,
    )
