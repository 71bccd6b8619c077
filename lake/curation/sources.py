"""The sources of a dataset build: silver tables at their pinned versions, with a spec's filters.

A build reads each event kind's silver table at one Delta version (the spec's ``sources`` pin, or
the table's newest version), filtered by tenant, plant, machine type and event time.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lake.curation.errors import SpecError
from lake.curation.spec import DatasetSpec, Filters
from lake.delta import DeltaStore
from lake.tables import silver_schema, silver_table
from schemas import EventKind, Registry, event_schema_for

__all__ = ["check_filters", "pinned_version", "row_count", "source_frame"]


def check_filters(spec: DatasetSpec, registry: Registry) -> None:
    """Refuse a spec whose filters name a tenant, plant or machine type the registry does not know.

    Raises:
        SpecError: naming the filter key and the known values.
    """
    f = spec.filters
    where = spec.path or spec.name
    known_tenants = sorted(t.id for t in registry.tenants)
    for tenant in f.tenants or ():
        if tenant not in known_tenants:
            raise SpecError(
                where,
                "filters.tenants",
                f"unknown tenant {tenant!r} (known: {', '.join(known_tenants)})",
            )
    selected = [t for t in registry.tenants if f.tenants is None or t.id in f.tenants]
    known_plants = sorted({p.id for t in selected for p in t.plants})
    for plant in f.plants or ():
        if plant not in known_plants:
            raise SpecError(
                where,
                "filters.plants",
                f"unknown plant {plant!r} in the selected tenants "
                f"(known: {', '.join(known_plants)})",
            )
    known_types = sorted(registry.machine_types)
    for mtype in f.machine_types or ():
        if mtype not in known_types:
            raise SpecError(
                where,
                "filters.machine_types",
                f"unknown machine type {mtype!r} (known: {', '.join(known_types)})",
            )


def pinned_version(store: DeltaStore, spec: DatasetSpec, kind: EventKind) -> int | None:
    """The Delta version of ``kind``'s silver table a build reads: the spec's pin, else the
    newest (None: the table does not exist yet)."""
    pinned = spec.sources.get(kind.value)
    return pinned if pinned is not None else store.version(silver_table(kind))


def source_frame(
    store: DeltaStore,
    kind: EventKind,
    version: int | None,
    filters: Filters,
    machines: pl.DataFrame,
) -> pl.LazyFrame:
    """One source at its pinned version with the spec's filters applied (lazy)."""
    if version is None:
        empty = pl.from_arrow(silver_schema(kind).empty_table())
        assert isinstance(empty, pl.DataFrame)
        lf = empty.lazy()
    else:
        lf = store.scan_at(silver_table(kind), version)
    partition: list[pl.Expr] = []
    rows: list[pl.Expr] = []
    if filters.tenants is not None:
        partition.append(pl.col("tenant").is_in(list(filters.tenants)))
    if filters.plants is not None:
        partition.append(pl.col("plant").is_in(list(filters.plants)))
    if filters.start is not None:
        partition.append(pl.col("date") >= pl.lit(filters.start.date()))
        rows.append(pl.col("event_time") >= pl.lit(filters.start))
    if filters.end is not None:
        last_day = (filters.end - timedelta(microseconds=1)).date()
        partition.append(pl.col("date") <= pl.lit(last_day))
        rows.append(pl.col("event_time") < pl.lit(filters.end))
    if partition:
        lf = lf.filter(*partition)
    if rows:
        lf = lf.filter(*rows)
    if filters.machine_types is not None:
        lf = _machine_type_filter(lf, kind, machines, filters.machine_types)
    return lf


def _machine_type_filter(
    lf: pl.LazyFrame, kind: EventKind, machines: pl.DataFrame, types: tuple[str, ...]
) -> pl.LazyFrame:
    """Rows of machines of ``types``; a row of a kind with a ``machine_list_column`` (an
    inspection) is kept when its machine or any listed machine (that made the part) is of one
    of the types."""
    ids = ["tenant", "plant", "line", "machine"]
    allowed = machines.lazy().filter(pl.col("machine_type").is_in(list(types))).select(ids)
    listed = event_schema_for(kind).machine_list_column
    if listed is None:
        return lf.join(allowed, on=ids, how="semi", maintain_order="left")
    wanted = (
        lf.select(
            "event_id", "tenant", "plant", "line", pl.concat_list(listed, "machine").alias("m")
        )
        .explode("m")
        .rename({"m": "machine"})
        .join(allowed, on=ids, how="semi")
        .select("event_id")
        .unique()
    )
    return lf.join(wanted, on="event_id", how="semi", maintain_order="left")


def row_count(lf: pl.LazyFrame) -> int:
    """Rows of ``lf`` (collects a count only)."""
    return int(lf.select(pl.len()).collect().item())
