"""Why a built set came out empty, and what to change: the text of its refusal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lake.curation.manifest import SourceInfo
from lake.curation.spec import DatasetSpec

if TYPE_CHECKING:
    from lake.sharing import SharedInputs

__all__ = ["why_empty"]


def why_empty(
    spec: DatasetSpec, sources: Mapping[str, SourceInfo], shared: SharedInputs | None
) -> str:
    """What removed the rows of an empty set, and what to change.

    Sharing causes (no contract for the purpose, rare machine types suppressed) come first;
    the spec's filters are blamed only when sharing removed nothing.
    """
    causes: list[str] = []
    if shared is not None:
        counts = shared.counts()
        if counts["tenants"] == 0:
            causes.append(
                f"no tenant has a sharing contract for purpose {spec.purpose!r}: add one "
                "(maxlake contracts add FILE) or change the spec's purpose"
            )
        elif counts["excluded_tenants"]:
            causes.append(
                f"{counts['excluded_tenants']} tenant(s) excluded: no contract for purpose "
                f"{spec.purpose!r}"
            )
        if counts["suppressed_machine_types"]:
            causes.append(
                f"{counts['suppressed_machine_types']} machine type(s) suppressed as rare "
                "(fewer tenants than MAXLAKE_SHARING_MIN_GROUP_SIZE share them): lower it or "
                "set suppress_rare = false in the contracts"
            )
    read = ", ".join(f"{kind}={s.rows:,} rows" for kind, s in sources.items())
    f = spec.filters
    active = [
        name
        for name, value in (
            ("tenants", f.tenants),
            ("plants", f.plants),
            ("machine_types", f.machine_types),
            ("start", f.start),
            ("end", f.end),
        )
        if value is not None
    ]
    if active and not causes:
        causes.append(f"filters {', '.join(active)} left source rows {read}: widen them")
    else:
        causes.append(f"source rows read (after filters and sharing): {read}")
    causes.append("--allow-failed-quality would publish an empty set")
    return "; ".join(causes)
