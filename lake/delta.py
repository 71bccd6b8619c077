"""The one place maxlake talks to deltalake (delta-rs).

Everything else goes through :class:`DeltaStore` and never sees a ``DeltaTable``: reads (Arrow
tables or Polars frames with a column list and a filter, lazy scans of a pinned version),
versions, file listings and the last commit, app-transaction versions, idempotent appends, and
maintenance (compact, vacuum, checkpoint). The exactly-once guarantee of
:meth:`DeltaStore.append` follows kafka-delta-ingest: each commit carries one app transaction per
Kafka partition (:func:`app_id` names the topic, its topic id and the partition; ``version`` =
last offset covered), and
delta-rs does not skip duplicates itself, so callers filter rows by the stored versions first.
A commit that reports failure may still have landed (delta-rs #2279): on ``CommitFailedError`` the
versions are re-read and the write counts as done when they already cover it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Field,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from lake.errors import CommitConflict, LakeError, OffsetsMoved, TableNotFound
from lake.location import LakeFiles, LakeLocation
from lake.tables import PLAIN_COLUMNS
from maxlake.errors import TerminalError
from maxlake.settings import Settings

if TYPE_CHECKING:
    import polars as pl

__all__ = ["DeltaStore", "TableFiles", "VersionUnavailable", "app_id", "writer_properties"]

logger = logging.getLogger(__name__)

_COMMIT_ATTEMPTS = 5


class VersionUnavailable(LakeError, TerminalError):
    """A table version cannot be read: it never existed, or vacuum removed its files."""

    def __init__(self, table: str, version: int, detail: str) -> None:
        super().__init__(f"cannot read {table} at version {version}: {detail}")
        self.table = table
        self.version = version


@dataclass(frozen=True)
class TableFiles:
    """The live data files of a table at its latest version.

    Attributes:
        version: the table version described.
        partition_columns: the table's partition columns, in order.
        files: one row per data file: ``path``, ``size_bytes`` (int64) and one
            ``partition.<column>`` column per partition column.
        last_commit: when the latest commit was written (UTC), None when the log does not say.
    """

    version: int
    partition_columns: tuple[str, ...]
    files: pa.Table
    last_commit: datetime | None


def app_id(topic: str, partition: int, topic_id: str | None = None) -> str:
    """The Delta app-transaction id of one Kafka partition of one topic lineage.

    ``<topic>@<topic_id>/<partition>``; without a topic id, the pre-lineage key
    ``<topic>/<partition>`` (lakes written before lineages; see :mod:`lake.lineage`).
    """
    return f"{topic}/{partition}" if topic_id is None else f"{topic}@{topic_id}/{partition}"


class DeltaStore:
    """Delta tables under one lake location (a local path or an object-store URI)."""

    def __init__(
        self,
        root: str | Path | LakeLocation,
        *,
        storage_options: Mapping[str, str] | None = None,
    ):
        self.location = LakeLocation.of(root, storage_options)
        self.root = self.location.root
        self.storage_options = dict(self.location.storage_options) or None
        self._tables: dict[str, DeltaTable] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> DeltaStore:
        """The store of ``MAXLAKE_LAKE_ROOT`` with ``MAXLAKE_LAKE_STORAGE_OPTIONS``."""
        return cls(LakeLocation.from_settings(settings))

    def sibling(self) -> DeltaStore:
        """A store on the same root with its own table handles.

        A deltalake table handle must not be used by two threads at once (a commit in one
        thread holds it while another refreshes it); a thread that reads while another writes
        takes its own sibling.
        """
        return DeltaStore(self.location)

    @property
    def files(self) -> LakeFiles:
        """Plain files under the lake root."""
        return self.location.files()

    def uri(self, name: str) -> str:
        """URI of table ``name`` (for example ``silver/telemetry``)."""
        return self.location.uri(name)

    def _open(self, name: str, *, refresh: bool = True) -> DeltaTable | None:
        """The table at its latest version, or None when it does not exist yet."""
        table = self._tables.get(name)
        if table is not None:
            if refresh:
                table.update_incremental()
            return table
        try:
            table = DeltaTable(self.uri(name), storage_options=self.storage_options)
        except TableNotFoundError:
            return None
        self._tables[name] = table
        return table

    def exists(self, name: str) -> bool:
        """Whether table ``name`` has been created."""
        return self._open(name, refresh=False) is not None

    def version(self, name: str) -> int | None:
        """The latest committed version of table ``name``, or None when it does not exist."""
        table = self._open(name)
        return None if table is None else int(table.version())

    def scan_at(self, name: str, version: int) -> pl.LazyFrame:
        """Table ``name`` as it was at ``version``, as a lazy Polars scan.

        Filters on partition columns with literal values prune files at plan time. The
        version's files are checked up front (for local tables) because vacuum deletes old
        files while the log still lists the version; a scan would otherwise fail halfway.

        Raises:
            VersionUnavailable: the table or version does not exist, or its files are gone.
        """
        latest = self.version(name)
        if latest is None:
            raise VersionUnavailable(name, version, "the table does not exist")
        if not 0 <= version <= latest:
            raise VersionUnavailable(name, version, f"versions are 0..{latest}")
        try:
            table = DeltaTable(
                self.uri(name), version=version, storage_options=self.storage_options
            )
            files = table.file_uris()
        except DeltaError as exc:
            raise VersionUnavailable(name, version, str(exc)) from exc
        if self.location.is_local:
            missing = [f for f in files if not Path(f).exists()]
            if missing:
                raise VersionUnavailable(
                    name,
                    version,
                    f"{len(missing)} of its {len(files)} data files are gone (vacuumed?), "
                    f"e.g. {missing[0]}",
                )
        import polars as pl  # noqa: PLC0415 - lazy: not on an ingest worker's path (~35 MiB)

        return pl.scan_delta(table)

    def read(
        self,
        name: str,
        *,
        columns: Sequence[str] | None = None,
        filter: ds.Expression | None = None,
    ) -> pa.Table | None:
        """Rows of table ``name`` at its latest version, or None when the table does not exist.

        Args:
            columns: the columns to read, in this order (default all); a column the table
                lacks raises.
            filter: a ``pyarrow.dataset`` expression; comparisons of partition columns with
                literals prune files.
        """
        table = self._open(name)
        if table is None:
            return None
        dataset = table.to_pyarrow_dataset()
        return dataset.to_table(columns=None if columns is None else list(columns), filter=filter)

    def read_frame(
        self,
        name: str,
        *,
        columns: Sequence[str] | None = None,
        filter: ds.Expression | None = None,
    ) -> pl.DataFrame | None:
        """:meth:`read` as a Polars frame (None when the table does not exist)."""
        rows = self.read(name, columns=columns, filter=filter)
        if rows is None:
            return None
        import polars as pl  # noqa: PLC0415 - lazy: not on an ingest worker's path (~35 MiB)

        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def schema(self, name: str) -> pa.Schema | None:
        """The Arrow schema of table ``name``, or None when it does not exist."""
        table = self._open(name)
        return None if table is None else pa.schema(table.schema())

    def count(self, name: str) -> int:
        """Rows of table ``name`` at its latest version (0 when it does not exist)."""
        table = self._open(name)
        return 0 if table is None else int(table.count())

    def describe(self, name: str) -> TableFiles | None:
        """Version, partition columns, live data files and last commit time of ``name``."""
        table = self._open(name)
        if table is None:
            return None
        history = table.history(limit=1)
        last = None
        if history and "timestamp" in history[0]:
            last = datetime.fromtimestamp(history[0]["timestamp"] / 1000, UTC)
        return TableFiles(
            version=int(table.version()),
            partition_columns=tuple(table.metadata().partition_columns),
            files=pa.table(table.get_add_actions(flatten=True)),
            last_commit=last,
        )

    def compact(
        self,
        name: str,
        *,
        partition_filters: list[tuple[str, str, str]] | None,
        target_size_bytes: int,
        z_order: Sequence[str] | None = None,
        attempts: int = 3,
    ) -> dict[str, Any]:
        """Bin-pack (or z-order by ``z_order``) the files of the partitions matching
        ``partition_filters`` (all when None) into files of about ``target_size_bytes``.

        Returns delta-rs's metrics (files added and removed, ...). One task at a time, and a
        z-order spills above 512 MiB, to bound memory beside a running worker.

        Raises:
            TableNotFound: the table does not exist.
            CommitConflict: a concurrent writer conflicted ``attempts`` times in a row.
        """
        for attempt in range(1, attempts + 1):
            table = self._open(name)
            if table is None:
                raise TableNotFound(name)
            try:
                if z_order:
                    return dict(
                        table.optimize.z_order(
                            list(z_order),
                            partition_filters=partition_filters,
                            target_size=target_size_bytes,
                            max_concurrent_tasks=1,
                            max_spill_size=512 << 20,
                            writer_properties=writer_properties(pa.schema(table.schema())),
                        )
                    )
                return dict(
                    table.optimize.compact(
                        partition_filters=partition_filters,
                        target_size=target_size_bytes,
                        max_concurrent_tasks=1,
                        writer_properties=writer_properties(pa.schema(table.schema())),
                    )
                )
            except CommitFailedError as exc:
                logger.warning("%s: compaction conflicted (attempt %d): %s", name, attempt, exc)
                if attempt == attempts:
                    raise CommitConflict(name, str(exc)) from exc
        raise AssertionError("unreachable")

    def vacuum(self, name: str, *, retention_hours: int, dry_run: bool) -> list[str]:
        """Delete (or, with ``dry_run``, list) files unreferenced for ``retention_hours``.

        Returns the paths delta-rs reports (relative to the table, or absolute under it),
        including expired tombstones whose files an earlier vacuum already deleted.

        Raises:
            TableNotFound: the table does not exist.
        """
        table = self._open(name)
        if table is None:
            raise TableNotFound(name)
        return list(
            table.vacuum(
                retention_hours=retention_hours,
                dry_run=dry_run,
                enforce_retention_duration=False,
            )
        )

    def checkpoint(self, name: str) -> int:
        """Write a checkpoint at the latest version, drop expired log files; returns the version.

        Raises:
            TableNotFound: the table does not exist.
        """
        table = self._open(name)
        if table is None:
            raise TableNotFound(name)
        table.create_checkpoint()
        table.cleanup_metadata()
        return int(table.version())

    def txn_versions(self, name: str, app_ids: Sequence[str]) -> dict[str, int]:
        """Stored app-transaction version per app id (-1 when none)."""
        table = self._open(name)
        if table is None:
            return dict.fromkeys(app_ids, -1)
        out: dict[str, int] = {}
        for aid in app_ids:
            version = table.transaction_version(aid)
            out[aid] = -1 if version is None else int(version)
        return out

    def ensure_table(
        self,
        name: str,
        schema: pa.Schema,
        *,
        partition_by: Sequence[str],
        properties: Mapping[str, str],
    ) -> None:
        """Create ``name`` with ``schema`` and table ``properties`` unless it exists; an existing
        table gets the missing properties and the missing (nullable) columns of ``schema``."""
        table = self._open(name)
        if table is None:
            try:
                DeltaTable.create(
                    self.uri(name),
                    schema,
                    mode="ignore",
                    partition_by=list(partition_by),
                    configuration={**_TABLE_CONFIGURATION, **properties},
                    storage_options=self.storage_options,
                )
            except DeltaError as exc:
                raise CommitConflict(name, str(exc)) from exc
            self._tables.pop(name, None)
            table = self._open(name)
            assert table is not None
        config = table.metadata().configuration
        missing = {k: v for k, v in properties.items() if config.get(k) != v}
        if missing:
            table.alter.set_table_properties(missing)
        have = set(pa.schema(table.schema()).names)
        new = [f for f in schema if f.name not in have]
        if new:
            table.alter.add_columns([Field.from_arrow(f) for f in new])

    def append(
        self,
        name: str,
        data: pa.Table,
        *,
        partition_by: Sequence[str] | None,
        txns: Mapping[str, int],
        base: Mapping[str, int] | None = None,
    ) -> int:
        """Append ``data`` with one app transaction per entry of ``txns``; returns the version.

        Columns of ``data`` the table lacks are added (null in earlier rows), so a lake written
        by an older maxlake takes the columns a newer one writes without a migration.

        Retries commit conflicts a few times; when a failed commit turns out to have landed
        (the stored versions already reach ``txns``), it is not written again. delta-rs
        rejects a commit whose app ids another commit updated meanwhile; ``base`` are the
        stored versions ``data`` was filtered against.

        Raises:
            OffsetsMoved: after a conflict, a stored version differs from ``base`` (another
                writer committed some of these offsets): filter the rows again, then retry.
            CommitConflict: the commit kept failing.
        """
        transactions = [Transaction(aid, version) for aid, version in txns.items()]
        props = CommitProperties(app_transactions=transactions, max_commit_retries=10)
        parquet = writer_properties(data.schema)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                write_deltalake(
                    self._open(name, refresh=False) or self.uri(name),
                    in_slices(data),
                    mode="append",
                    schema_mode="merge",
                    partition_by=list(partition_by) if partition_by else None,
                    storage_options=self.storage_options,
                    commit_properties=props,
                    configuration=_TABLE_CONFIGURATION,
                    writer_properties=parquet,
                )
            except CommitFailedError as exc:
                stored = self.txn_versions(name, list(txns))
                if txns and all(stored[aid] >= v for aid, v in txns.items()):
                    logger.warning("%s: commit reported failure but landed: %s", name, exc)
                    break
                if base is not None and any(stored[aid] != base.get(aid, -1) for aid in txns):
                    raise OffsetsMoved(name, stored) from exc
                logger.warning("%s: commit conflict (attempt %d): %s", name, attempt, exc)
                if attempt == _COMMIT_ATTEMPTS:
                    raise CommitConflict(name, str(exc)) from exc
                time.sleep(0.05 * attempt)
                continue
            break
        table = self._open(name)
        assert table is not None
        return int(table.version())


WRITE_SLICE_ROWS: Final = 16_384
"""Rows delta-rs takes in at a time from an append (:func:`in_slices`)."""


def in_slices(data: pa.Table) -> pa.Table | pa.RecordBatchReader:
    """``data`` as a stream of slices of at most :data:`WRITE_SLICE_ROWS` rows (no copy), or
    itself when it is no longer than one.

    delta-rs holds what it is given while it partitions, casts and encodes it: handed a whole
    silver batch (~215,000 rows), an append peaked 50-70 MiB above the batch, handed 16,384
    rows at a time ~30 MiB, at the same CPU within noise (docs/BENCHMARKS.md, issue 20,
    seventeenth pass). The same rows, files and row groups are written; only the order of the
    rows inside a file may differ (delta-rs spreads the slices over its lanes), which no reader
    relies on: a table's rows have no order. A stream is read once: make it anew for each
    attempt.
    """
    if data.num_rows <= WRITE_SLICE_ROWS:
        return data
    return data.to_reader(max_chunksize=WRITE_SLICE_ROWS)


_TABLE_CONFIGURATION: dict[str, str | None] = {
    "delta.setTransactionRetentionDuration": "interval 3650 days",
    "delta.checkpointInterval": "10",
}
"""Properties of every table maxlake creates. App transactions must outlive any replay window,
or exactly-once silently ends. A checkpoint every 10 commits (Delta's default: 100): the
writer and the preparing thread read app-transaction versions and refresh their handles at
every batch, and delta-rs replays every commit since the last checkpoint to do so
(docs/BENCHMARKS.md, "Issue 20, fifteenth pass"). Tables created before keep their interval."""


PARQUET_COMPRESSION: Final = "ZSTD"
PARQUET_COMPRESSION_LEVEL: Final = 1


def writer_properties(schema: pa.Schema) -> WriterProperties:
    """How maxlake encodes the Parquet files of a table with ``schema`` (a storage property:
    readers see the same rows and schema).

    zstd level 1 instead of delta-rs's default snappy, and no dictionary for the columns of
    :data:`lake.tables.PLAIN_COLUMNS` (almost every value distinct: the dictionary outgrows
    its page and falls back to plain after costing the hashing). On the silver table of a
    50,000-event batch: files ~0.5x the size, ~20% less CPU per append (docs/BENCHMARKS.md,
    "Issue 20, sixteenth pass: the Delta write"). Every other column keeps its dictionary:
    deltalake turns it off for a column given its own properties, so it is set explicitly.
    """
    names = set(schema.names)
    return WriterProperties(
        compression=PARQUET_COMPRESSION,
        compression_level=PARQUET_COMPRESSION_LEVEL,
        default_column_properties=ColumnProperties(dictionary_enabled=True),
        column_properties={
            name: ColumnProperties(dictionary_enabled=False)
            for name in PLAIN_COLUMNS
            if name in names
        },
    )
