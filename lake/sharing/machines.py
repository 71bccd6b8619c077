"""The registry machines and raw identifiers of the companies in a curated set.

Shapes: ``machines`` frames hold one row per registry machine with columns ``tenant``,
``plant``, ``line``, ``machine`` (:data:`MACHINE`) and ``machine_type``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from lake.sharing.contract import Contract
from schemas import event_schema_for

__all__ = ["MACHINE", "count_dropped_types", "drop_rare", "raw_identifiers", "semi_machines"]

MACHINE = ["tenant", "plant", "line", "machine"]
"""The ISA-95 columns that name one machine."""


def drop_rare(
    machines: pl.DataFrame, contracts: Mapping[str, Contract], rare: frozenset[str]
) -> pl.DataFrame:
    """Registry machines of the included tenants, minus suppressed ones."""
    suppressing = [t for t, c in contracts.items() if c.suppress_rare]
    drop = pl.col("tenant").is_in(suppressing) & pl.col("machine_type").is_in(list(rare))
    return machines.filter(pl.col("tenant").is_in(list(contracts)) & ~drop)


def count_dropped_types(
    machines: pl.DataFrame, contracts: Mapping[str, Contract], kept: pl.DataFrame
) -> int:
    """Machine types that contracted tenants have but that were suppressed from the set."""
    had = machines.filter(pl.col("tenant").is_in(list(contracts))).get_column("machine_type")
    return len(set(had.to_list()) - set(kept.get_column("machine_type").to_list()))


def semi_machines(lf: pl.LazyFrame, machines: pl.DataFrame) -> pl.LazyFrame:
    """Rows of machines still in ``machines`` (drops suppressed and unregistered machines)."""
    return lf.join(machines.lazy().select(MACHINE), on=MACHINE, how="semi", maintain_order="left")


def raw_identifiers(
    contracts: Sequence[Contract],
    machines: pl.DataFrame,
    frames: Mapping[str, pl.LazyFrame],
    *,
    others: Sequence[str] = (),
) -> dict[str, frozenset[str]]:
    """Column -> the raw identifiers that must never appear in a set built under
    ``contracts``.

    For each contract's tenant, the ids it pseudonymises: the registry ids of all its machines
    (``machines``: tenant, plant, line, machine; suppressed rare types included) and the
    identifier values (part serial, lot) of all its rows in ``frames`` (kind -> silver rows,
    every kind, whatever the contract shares). For each tenant in ``others`` (companies
    without a contract in the set: withdrawn, excluded, never signed), every such id. Values
    a contract of the set releases in clear are left out.
    """
    ids = _identifier_rows(frames)
    forbidden: dict[str, set[str]] = {}
    clear: dict[str, set[str]] = {}
    for contract in contracts:
        for column, raw in _tenant_ids(machines, ids, contract.tenant).items():
            target = forbidden if column in contract.pseudonymise else clear
            target.setdefault(column, set()).update(raw)
    for tenant in others:
        for column, values in _tenant_ids(machines, ids, tenant).items():
            forbidden.setdefault(column, set()).update(values)
    return {c: frozenset(v - clear.get(c, set())) for c, v in forbidden.items()}


def _identifier_rows(frames: Mapping[str, pl.LazyFrame]) -> list[pl.DataFrame]:
    """Each kind's distinct (tenant, identifier columns) rows (kinds with identifier columns)."""
    out = []
    for kind, lf in frames.items():
        columns = list(event_schema_for(kind).identifier_columns)
        if columns:
            out.append(lf.select("tenant", *columns).unique().collect())
    return out


def _tenant_ids(
    machines: pl.DataFrame, rows: Sequence[pl.DataFrame], tenant: str
) -> dict[str, set[str]]:
    """Column -> the tenant's registry ids and its rows' identifier values (``rows``: see
    :func:`_identifier_rows`)."""
    own = machines.filter(pl.col("tenant") == tenant)
    values: dict[str, set[str]] = {c: set(own.get_column(c).to_list()) for c in MACHINE}
    for frame in rows:
        mine = frame.filter(pl.col("tenant") == tenant)
        for column in frame.columns[1:]:
            values.setdefault(column, set()).update(mine.get_column(column).drop_nulls().to_list())
    return values
