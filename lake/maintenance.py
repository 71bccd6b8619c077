"""Lake maintenance: status, compaction, vacuum and checkpoints, safe beside a running worker.

Streaming ingest writes one small file per partition per batch. Compaction bin-packs the files of
*closed* partitions (dates before today, UTC) so that it never rewrites files the worker is still
appending to; Delta's optimistic concurrency lets a blind append and a compaction of other
partitions commit side by side, and a real conflict surfaces as :class:`CommitConflict` — the
table is never left half-written. Compaction and vacuum never touch app transactions, so the
exactly-once bookkeeping survives them.

Vacuum physically deletes files that no version newer than the retention still references. The
default retention (168 h) keeps a week of time travel: dataset builds pin Delta versions, and a
rebuild of a pinned spec needs those versions' files, so keep the retention longer than the
oldest pinned version you intend to rebuild (curated sets already built are materialised and
unaffected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow.compute as pc

from lake.delta import DeltaStore
from lake.errors import TableNotFound

__all__ = [
    "DEFAULT_RETENTION_HOURS",
    "PartitionStatus",
    "TableStatus",
    "checkpoint",
    "compact",
    "discover_tables",
    "table_status",
    "vacuum",
]

DEFAULT_RETENTION_HOURS = 168
_GROUPS = ("silver", "quarantine", "ops")


@dataclass(frozen=True)
class PartitionStatus:
    """Files and bytes of one partition (``values`` = partition column values, in order)."""

    values: tuple[str, ...]
    files: int
    bytes: int


@dataclass(frozen=True)
class TableStatus:
    """What ``maxlake lake status`` shows for one table."""

    name: str
    version: int
    files: int
    bytes: int
    last_commit: datetime | None
    partition_columns: tuple[str, ...]
    partitions: list[PartitionStatus] = field(default_factory=list)

    @property
    def last_commit_age_s(self) -> float | None:
        """Seconds since the last commit."""
        if self.last_commit is None:
            return None
        return (datetime.now(UTC) - self.last_commit).total_seconds()

    @property
    def small_files(self) -> int:
        """Partitions' files beyond one per partition: what compaction would merge."""
        return sum(max(0, p.files - 1) for p in self.partitions)


def discover_tables(store: DeltaStore) -> list[str]:
    """Every Delta table under the lake root's ``silver``, ``quarantine`` and ``ops`` folders."""
    files = store.files
    names = []
    for group in _GROUPS:
        for child in files.list(group)[0]:
            if "_delta_log" in files.list(f"{group}/{child}")[0]:
                names.append(f"{group}/{child}")
    return names


def table_status(store: DeltaStore, name: str) -> TableStatus:
    """Version, files, bytes, partitions and last commit of one table.

    Raises:
        TableNotFound: the table does not exist.
    """
    described = store.describe(name)
    if described is None:
        raise TableNotFound(name)
    parts = described.partition_columns
    actions = described.files
    partitions: list[PartitionStatus] = []
    if parts and actions.num_rows:
        keys = [f"partition.{c}" for c in parts]
        grouped = actions.group_by(keys).aggregate([("size_bytes", "count"), ("size_bytes", "sum")])
        for row in grouped.to_pylist():
            values = tuple(str(row[k]) for k in keys)
            partitions.append(
                PartitionStatus(values, int(row["size_bytes_count"]), int(row["size_bytes_sum"]))
            )
        partitions.sort(key=lambda p: p.values)
    return TableStatus(
        name=name,
        version=described.version,
        files=actions.num_rows,
        bytes=int(pc.sum(actions.column("size_bytes")).as_py() or 0) if actions.num_rows else 0,
        last_commit=described.last_commit,
        partition_columns=parts,
        partitions=partitions,
    )


def compact(
    store: DeltaStore,
    name: str,
    *,
    before: date | None = None,
    z_order: list[str] | None = None,
    target_size_mb: int = 256,
    attempts: int = 3,
) -> dict[str, Any]:
    """Bin-pack (or z-order) the partitions whose ``date`` is before ``before`` (default today).

    Tables without a ``date`` partition are compacted whole. Returns delta-rs's metrics
    (files added and removed, ...). A commit conflict with a concurrent writer is retried
    ``attempts`` times, then raised as :class:`CommitConflict`.

    Raises:
        TableNotFound: the table does not exist.
    """
    before = before or datetime.now(UTC).date()
    described = store.describe(name)
    if described is None:
        raise TableNotFound(name)
    filters = [("date", "<", before.isoformat())] if "date" in described.partition_columns else None
    return store.compact(
        name,
        partition_filters=filters,
        target_size_bytes=target_size_mb << 20,
        z_order=z_order,
        attempts=attempts,
    )


def vacuum(
    store: DeltaStore, name: str, *, retention_hours: int = DEFAULT_RETENTION_HOURS, dry_run: bool
) -> list[str]:
    """Delete (or, with ``dry_run``, list) files unreferenced for ``retention_hours``.

    Returns the files this call deletes (or would delete). delta-rs lists every expired
    tombstone of the log, including files an earlier vacuum already deleted; those are left
    out, so the count is this run's, not cumulative.

    Raises:
        TableNotFound: the table does not exist.
    """
    candidates = store.vacuum(name, retention_hours=retention_hours, dry_run=True)
    files = store.files
    present = [f for f in candidates if files.exists(f"{name}/{_relative(f, store.uri(name))}")]
    if not dry_run and present:
        store.vacuum(name, retention_hours=retention_hours, dry_run=False)
    return present


def _relative(path: str, table_uri: str) -> str:
    """A file path delta-rs reports (relative, or absolute under the table) relative to it."""
    prefix = table_uri.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def checkpoint(store: DeltaStore, name: str) -> int:
    """Write a checkpoint at the current version and drop expired log files; returns it.

    Raises:
        TableNotFound: the table does not exist.
    """
    return store.checkpoint(name)
