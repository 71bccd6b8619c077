"""The audit trail: one row per dataset access, allowed or denied, in the Delta table ``ops/audit``.

Rows are appended through :class:`lake.DeltaStore` (one commit per access, partitioned by
date). Each row has a random ``audit_id``: an append that delta-rs reports as failed may still
have landed (delta-rs #2279) and is then retried, so readers drop repeated ids
(:meth:`AuditLog.read` does). A caller that serves data writes the row *before* the bytes and
refuses to serve when the write fails, so nothing is read without a trace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from lake.delta import DeltaStore
from maxlake.errors import TerminalError

__all__ = ["AUDIT", "AUDIT_SCHEMA", "OUTCOMES", "AuditEntry", "AuditLog"]

AUDIT = "ops/audit"
OUTCOMES = ("allowed", "denied", "unauthenticated", "not_found", "invalid", "revoked", "error")
AUDIT_SCHEMA = pa.schema(
    [
        pa.field("audit_id", pa.string(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
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
    ]
)
"""``principal`` is None when no valid token was given; ``dataset`` and ``split`` hold what was
asked for only when it is a well-formed name (anything else is summarised in ``detail``)."""


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


class AuditLog:
    """Append to and read ``ops/audit`` of one lake."""

    def __init__(self, store: DeltaStore) -> None:
        self.store = store

    def record(self, entry: AuditEntry, *, at: datetime | None = None) -> None:
        """Append one row (one Delta commit).

        Raises:
            TerminalError: ``entry.outcome`` is not one of :data:`OUTCOMES`.
            CommitConflict: the commit kept failing.
        """
        if entry.outcome not in OUTCOMES:
            raise TerminalError(f"audit outcome {entry.outcome!r} is not one of {OUTCOMES}")
        when = at or datetime.now(UTC)
        row = {
            "audit_id": uuid.uuid4().hex,
            "at": when,
            **{k: getattr(entry, k) for k in AUDIT_SCHEMA.names if hasattr(entry, k)},
            "date": when.date(),
        }
        table = pa.Table.from_pylist([row], schema=AUDIT_SCHEMA)
        self.store.append(AUDIT, table, partition_by=["date"], txns={})

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
