"""The audit trail: one row per request, allowed or refused, in the Delta table ``ops/audit``.

Rows are appended through :class:`lake.DeltaStore`, partitioned by date. The table is created
with ``delta.appendOnly = true`` (and an older table gets the property on first use), so Delta
itself refuses any commit that removes a row: a ``DELETE``, an ``UPDATE`` or an overwrite fails;
only compaction (which changes no data) is allowed. Each row has a random ``audit_id``: an append
that delta-rs reports as failed may still have landed (delta-rs #2279) and is then retried, so
readers drop repeated ids (:meth:`AuditLog.read` does). A caller that serves data writes the row
*before* the bytes and refuses to serve when the write fails, so nothing is read without a
trace; refusals may be batched (:meth:`AuditLog.record_many`), so a flood of bad requests costs
one commit per batch, not one per request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from lake.delta import DeltaStore
from maxlake.errors import ERROR_CODES, TerminalError
from schemas.silver import TIMESTAMP

__all__ = ["APPEND_ONLY", "AUDIT", "AUDIT_SCHEMA", "OUTCOMES", "AuditEntry", "AuditLog"]

AUDIT = "ops/audit"
OUTCOMES = ("allowed", *ERROR_CODES)
"""``allowed`` and every refusal code of :data:`maxlake.errors.ERROR_CODES`."""
APPEND_ONLY = {"delta.appendOnly": "true"}
AUDIT_SCHEMA = pa.schema(
    [
        pa.field("audit_id", pa.string(), nullable=False),
        pa.field("at", TIMESTAMP, nullable=False),
        pa.field("principal", pa.string()),
        pa.field("action", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("version", pa.int32()),
        pa.field("split", pa.string()),
        pa.field("format", pa.string()),
        pa.field("rows", pa.int64()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("status", pa.int16()),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("client", pa.string()),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("method", pa.string()),
        pa.field("key_id", pa.string()),
    ]
)
"""``principal`` is None when no valid token was given; ``key_id`` then holds the public key id
of a well-formed token that failed (never the secret); ``method`` is the HTTP method (``HEAD``
is recorded as such, with no rows); ``dataset`` and ``split`` hold what was asked for only when
it is a well-formed name (anything else is summarised in ``detail``)."""


@dataclass(frozen=True)
class AuditEntry:
    """One access. ``outcome`` is one of :data:`OUTCOMES`."""

    action: str
    outcome: str
    principal: str | None = None
    dataset: str | None = None
    version: int | None = None
    split: str | None = None
    format: str | None = None
    rows: int | None = None
    status: int | None = None
    detail: str = ""
    channel: str = "http"
    client: str | None = None
    method: str | None = None
    key_id: str | None = None


class AuditLog:
    """Append to and read ``ops/audit`` of one lake."""

    def __init__(self, store: DeltaStore) -> None:
        self.store = store
        self._ready = False

    def record(self, entry: AuditEntry, *, at: datetime | None = None) -> None:
        """Append one row (one Delta commit).

        Raises:
            TerminalError: ``entry.outcome`` is not one of :data:`OUTCOMES`.
            CommitConflict: the commit kept failing.
        """
        self.record_many([(entry, at or datetime.now(UTC))])

    def record_many(self, entries: Sequence[tuple[AuditEntry, datetime]]) -> None:
        """Append ``(entry, at)`` rows in one Delta commit (nothing for an empty list).

        Raises:
            TerminalError: an outcome is not one of :data:`OUTCOMES`.
            CommitConflict: the commit kept failing.
        """
        if not entries:
            return
        rows = []
        for entry, when in entries:
            if entry.outcome not in OUTCOMES:
                raise TerminalError(f"audit outcome {entry.outcome!r} is not one of {OUTCOMES}")
            rows.append(
                {
                    "audit_id": uuid.uuid4().hex,
                    "at": when,
                    **{k: getattr(entry, k) for k in AUDIT_SCHEMA.names if hasattr(entry, k)},
                    "date": when.date(),
                }
            )
        self._ensure_table()
        table = pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA)
        self.store.append(AUDIT, table, partition_by=["date"], txns={})

    def _ensure_table(self) -> None:
        """Create the table append-only (or make an older one so, with the new columns)."""
        if not self._ready:
            self.store.ensure_table(
                AUDIT, AUDIT_SCHEMA, partition_by=["date"], properties=APPEND_ONLY
            )
            self._ready = True

    def read(self, *, since: datetime | None = None, principal: str | None = None) -> pl.DataFrame:
        """Audit rows (oldest first), optionally from ``since`` on and of one principal."""
        version = self.store.version(AUDIT)
        if version is None:
            empty = pl.from_arrow(AUDIT_SCHEMA.empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty
        lf = self.store.scan_at(AUDIT, version)
        if since is not None:
            lf = lf.filter(pl.col("date") >= pl.lit(since.date()), pl.col("at") >= pl.lit(since))
        if principal is not None:
            lf = lf.filter(pl.col("principal") == principal)
        return lf.unique("audit_id", keep="first", maintain_order=True).sort("at").collect()
