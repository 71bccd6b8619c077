"""Replay quarantined messages after a fix (a suite, the registry or the decoder).

:func:`replay_quarantine` re-runs the raw bytes of quarantined messages through the ingest
pipeline itself (same decoder, the current suite, the same classification) with a writer that
captures the classified batch instead of committing it. Messages that are now valid go to
``silver/<kind>`` with their original Kafka coordinates; every attempt is recorded in
``ops/replays`` (see :mod:`lake.replays`). It is idempotent:

- replayed rows carry the whole Kafka lineage of the quarantined record (topic, partition,
  offset, timestamp, key and topic id), exactly as a worker-written row would;
- messages recorded as ``replayed`` or ``duplicate`` are skipped;
- an event whose ``event_id`` is already in silver (any offset) is a ``duplicate`` when its
  content hash is the silver copy's (or either is unknown), else ``still_invalid`` with reason
  ``event_id_conflict`` (:mod:`streams.content_hash`); neither is written;
- a crash between the silver commit and the ``ops/replays`` commit is repaired by the next run,
  which finds the coordinates already in silver and only records them;
- both commits carry the app transaction ``replay:<kind>`` (one version per run), so a commit
  that reports failure but landed is not written again.

The quarantine rows stay in place as the record of the first rejection; the accounting
invariant counts a replayed offset as silver (:mod:`lake.accounting`).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from lake import (
    BatchOutput,
    BatchWriter,
    DeltaStore,
    WriteResult,
    quarantine_table,
    silver_schema,
    silver_table,
)
from lake.registry_store import registry_source
from lake.replays import FINAL_OUTCOMES, REPLAYS, REPLAYS_SCHEMA, replay_marks, replay_records
from lake.tables import SILVER_PARTITIONS
from maxlake.settings import Settings
from quality import ValidationGateway, load_suites
from schemas import EventKind, RejectReason
from schemas.silver import TIMESTAMP
from streams.content_hash import EVENT_ID_CONFLICT
from streams.ingest import IngestPipeline, RawMessage

__all__ = [
    "ReplayReport",
    "escape_payload",
    "known_reasons",
    "quarantine_page",
    "quarantine_summary",
    "quarantined_messages",
    "replay_quarantine",
]

logger = logging.getLogger(__name__)

_CHUNK = 5000
_KEYS = ["kafka_topic", "kafka_partition", "kafka_offset"]


@dataclass
class ReplayReport:
    """What one replay did (or, with ``dry_run``, would do)."""

    kind: str
    dry_run: bool
    suite_version: str | None = None
    registry_version: int | None = None
    selected: int = 0
    skipped_already_replayed: int = 0
    replayed: int = 0
    silver_rows: int = 0
    duplicates: int = 0
    still_invalid: int = 0
    still_invalid_by_reason: Counter[str] = field(default_factory=Counter)
    recovered: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        out = dict(self.__dict__)
        out["still_invalid_by_reason"] = dict(self.still_invalid_by_reason.most_common())
        return out


class _CapturingWriter(BatchWriter):
    """Keeps the classified batches instead of writing them (the pipeline's verdicts only)."""

    def __init__(self, store: DeltaStore) -> None:
        super().__init__(store)
        self.batches: list[BatchOutput] = []

    def write(self, batch: BatchOutput) -> WriteResult:
        self.batches.append(batch)
        return WriteResult(batch.offsets.num_rows, 0, 0, 0, 0, 0, 0.0)


def _read_quarantine(
    store: DeltaStore,
    kind: str,
    *,
    since: datetime | None,
    reason: str | None,
    tenant: str | None,
) -> pa.Table:
    flt = ds.field("kind") == kind
    if since is not None:
        flt &= (ds.field("date") >= pa.scalar(since.date(), pa.date32())) & (
            ds.field("quarantined_at") >= pa.scalar(since, TIMESTAMP)
        )
    if tenant is not None:
        flt &= ds.field("tenant") == tenant
    rows = store.read(quarantine_table(kind), filter=flt)
    if rows is None:
        return pa.table({})
    if reason is not None and rows.num_rows:
        keep = [reason in rs for rs in rows["reasons"].to_pylist()]
        rows = rows.filter(pa.array(keep))
    return rows.sort_by([(k, "ascending") for k in _KEYS])


def _silver_keys(store: DeltaStore, kind: str, tenants: Sequence[str]) -> pl.DataFrame:
    """``event_id``, coordinates and ``content_hash`` (null: unknown) of the silver rows of
    ``tenants`` (all dates)."""
    schema = {"event_id": pl.String, **dict.fromkeys(_KEYS, pl.Int64)}
    schema["kafka_topic"] = pl.String
    schema["kafka_partition"] = pl.Int32
    schema["content_hash"] = pl.Int64
    have = store.schema(silver_table(kind))
    hashed = have is not None and "content_hash" in have.names
    frame = store.read_frame(
        silver_table(kind),
        columns=["event_id", *_KEYS, *(["content_hash"] if hashed else [])],
        filter=ds.field("tenant").isin(list(tenants)),
    )
    if frame is None:
        return pl.DataFrame(schema=schema)
    if not hashed:
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("content_hash"))
    return frame.unique()


def _messages(rows: pa.Table) -> list[RawMessage]:
    """The quarantined records as the worker consumed them, with their full Kafka lineage
    (coordinates and topic id), so that replayed silver rows carry what worker rows carry."""
    if "kafka_topic_id" not in rows.column_names:  # quarantine written before lineages
        rows = rows.append_column("kafka_topic_id", pa.nulls(rows.num_rows, pa.string()))
    out = []
    columns = [*_KEYS, "kafka_timestamp", "kafka_key", "raw", "kafka_topic_id"]
    for r in rows.select(columns).to_pylist():
        ts = r["kafka_timestamp"]
        out.append(
            RawMessage(
                r["kafka_topic"],
                r["kafka_partition"],
                r["kafka_offset"],
                int(ts.timestamp() * 1000) if ts is not None else None,
                r["kafka_key"],
                r["raw"],
                r["kafka_topic_id"],
            )
        )
    return out


def replay_quarantine(
    settings: Settings,
    kind: EventKind | str,
    *,
    since: datetime | None = None,
    reason: str | None = None,
    tenant: str | None = None,
    dry_run: bool = False,
    gateway: ValidationGateway | None = None,
    suites_dir: Path | None = None,
    registry_file: Path | None = None,
) -> ReplayReport:
    """Validate quarantined messages of ``kind`` again and move the valid ones to silver.

    Args:
        settings: lake root and decode limits (the same ``MAXLAKE_*`` values as the worker).
        kind: event kind whose quarantine to replay.
        since: only messages quarantined at or after this instant.
        reason: only messages carrying this reason.
        tenant: only this tenant's messages.
        dry_run: classify and report, write nothing.
        gateway: the validation gateway to use (default: a new one over ``suites_dir``).
        suites_dir: suites folder for a new gateway (default: the packaged suites).
        registry_file: registry TOML file for a new gateway (default: ``settings.registry_file``,
            else the newest version of the live registry under the lake root).

    Returns:
        The counts; ``replayed`` messages now have ``silver_rows`` rows in silver.
    """
    kind = EventKind(kind)
    store = DeltaStore.from_settings(settings)
    report = ReplayReport(kind=kind.value, dry_run=dry_run)
    rows = _read_quarantine(store, kind.value, since=since, reason=reason, tenant=tenant)
    report.selected = rows.num_rows
    if rows.num_rows == 0:
        return report
    done = replay_records(store, kind.value, outcomes=FINAL_OUTCOMES).select(_KEYS).unique()
    frame = pl.from_arrow(rows.select(_KEYS))
    assert isinstance(frame, pl.DataFrame)
    fresh = frame.with_row_index("i").join(done, on=_KEYS, how="anti")["i"].to_list()
    report.skipped_already_replayed = rows.num_rows - len(fresh)
    rows = rows.take(pa.array(sorted(fresh), pa.int64()))
    if rows.num_rows == 0:
        return report

    gateway = gateway or ValidationGateway(
        registry_source(settings, registry_file=registry_file), suites_dir=suites_dir
    )
    report.suite_version = gateway.suite_version(kind)
    report.registry_version = gateway.registry_version
    capture = _CapturingWriter(store)
    pipeline = IngestPipeline(settings, gateway, capture, worker="replay", skip_in_lake=False)
    by_lineage: dict[tuple[str, str | None], list[RawMessage]] = {}
    for m in _messages(rows):
        by_lineage.setdefault((m.topic, m.topic_id), []).append(m)
    for messages in by_lineage.values():
        for start in range(0, len(messages), _CHUNK):
            pipeline.process(kind, messages[start : start + _CHUNK])

    now = datetime.now(UTC)
    tenants = sorted(set(rows["tenant"].to_pylist()))
    in_silver = _silver_keys(store, kind.value, tenants)
    silver_coords = {tuple(r) for r in in_silver.select(_KEYS).iter_rows()}
    silver_ids = set(in_silver["event_id"].to_list())
    silver_hash = {
        e: h for e, h in in_silver.select("event_id", "content_hash").iter_rows() if h is not None
    }
    event_id_at = _event_ids(rows)
    outcomes: dict[tuple[str, int, int], tuple[str, list[str], int]] = {}
    new_silver: list[pa.Table] = []
    claimed: set[str] = set()
    for batch in capture.batches:
        for r in batch.quarantine.select([*_KEYS, "reasons"]).to_pylist():
            outcomes[(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])] = (
                "still_invalid",
                list(r["reasons"]),
                0,
            )
        for r in batch.duplicates.select(_KEYS).to_pylist():
            outcomes[(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])] = (
                "duplicate",
                [],
                0,
            )
        silver = batch.silver
        if silver.num_rows == 0:
            continue
        coords = list(
            zip(
                silver["kafka_topic"].to_pylist(),
                silver["kafka_partition"].to_pylist(),
                silver["kafka_offset"].to_pylist(),
                strict=True,
            )
        )
        per_message = Counter(coords)
        event_id_at.update(zip(coords, silver["event_id"].to_pylist(), strict=True))
        digest_at = dict(zip(coords, silver["content_hash"].to_pylist(), strict=True))
        keep_coords: set[tuple[str, int, int]] = set()
        for coord, n in sorted(per_message.items()):
            eid = event_id_at.get(coord)
            if coord in silver_coords:
                outcomes[coord] = ("replayed", [], n)
                report.recovered += 1
            elif (
                eid is not None
                and eid in silver_hash
                and digest_at.get(coord)
                not in (
                    None,
                    silver_hash[eid],
                )
            ):
                outcomes[coord] = ("still_invalid", [EVENT_ID_CONFLICT], 0)
            elif eid is not None and (eid in silver_ids or eid in claimed):
                outcomes[coord] = ("duplicate", [], 0)
            else:
                outcomes[coord] = ("replayed", [], n)
                keep_coords.add(coord)
                if eid is not None:
                    claimed.add(eid)
        if keep_coords:
            mask = [c in keep_coords for c in coords]
            new_silver.append(silver.filter(pa.array(mask)))

    for outcome, reasons, n in outcomes.values():
        if outcome == "replayed":
            report.replayed += 1
            report.silver_rows += n
        elif outcome == "duplicate":
            report.duplicates += 1
        else:
            report.still_invalid += 1
            report.still_invalid_by_reason.update(reasons)
    if dry_run:
        return report

    records = _replay_rows(rows, outcomes, event_id_at, report.suite_version, now)
    seq = store.txn_versions(REPLAYS, [f"replay:{kind.value}"])[f"replay:{kind.value}"] + 1
    txns = {f"replay:{kind.value}": seq}
    if new_silver:
        silver_rows = pa.concat_tables(new_silver).cast(silver_schema(kind))
        store.append(silver_table(kind), silver_rows, partition_by=SILVER_PARTITIONS, txns=txns)
    store.append(REPLAYS, records, partition_by=("date",), txns=txns)
    logger.info(
        "replayed %s: %d to silver, %d duplicates, %d still invalid",
        kind.value,
        report.replayed,
        report.duplicates,
        report.still_invalid,
    )
    return report


def _event_ids(rows: pa.Table) -> dict[tuple[str, int, int], str | None]:
    return {
        (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]): r["event_id"]
        for r in rows.select([*_KEYS, "event_id"]).to_pylist()
    }


def _replay_rows(
    rows: pa.Table,
    outcomes: dict[tuple[str, int, int], tuple[str, list[str], int]],
    event_ids: dict[tuple[str, int, int], str | None],
    suite_version: str | None,
    now: datetime,
) -> pa.Table:
    replay_id = str(uuid.uuid4())
    records = []
    for r in rows.select([*_KEYS, "kind", "tenant"]).to_pylist():
        coord = (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])
        outcome, reasons, n = outcomes.get(coord, ("still_invalid", ["not_classified"], 0))
        records.append(
            {
                "replay_id": replay_id,
                "kind": r["kind"],
                "tenant": r["tenant"],
                "kafka_topic": coord[0],
                "kafka_partition": coord[1],
                "kafka_offset": coord[2],
                "event_id": event_ids.get(coord),
                "outcome": outcome,
                "reasons": reasons,
                "silver_rows": n,
                "suite_version": suite_version,
                "replayed_at": now,
                "date": now.date(),
            }
        )
    return pa.Table.from_pylist(records, schema=REPLAYS_SCHEMA)


def quarantine_summary(
    settings: Settings,
    *,
    kinds: Sequence[EventKind] = tuple(EventKind),
    reason: str | None = None,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Quarantined messages by kind and reason: how many, first and last time, replayed.

    A message with two reasons counts under both; ``replayed`` counts those moved to silver.
    """
    store = DeltaStore.from_settings(settings)
    out: list[dict[str, Any]] = []
    for kind in kinds:
        rows = _read_quarantine(store, kind.value, since=None, reason=reason, tenant=tenant)
        if rows.num_rows == 0:
            continue
        frame = pl.from_arrow(rows.select([*_KEYS, "stage", "reasons", "quarantined_at"]))
        assert isinstance(frame, pl.DataFrame)
        replayed = replay_records(store, kind.value, outcomes=("replayed",)).select(_KEYS)
        frame = frame.join(
            replayed.unique().with_columns(pl.lit(True).alias("replayed")), on=_KEYS, how="left"
        ).with_columns(pl.col("replayed").fill_null(False))
        exploded = frame.explode("reasons")
        if reason is not None:
            exploded = exploded.filter(pl.col("reasons") == reason)
        grouped = (
            exploded.group_by(["reasons", "stage"])
            .agg(
                pl.len().alias("messages"),
                pl.col("replayed").sum().alias("replayed"),
                pl.col("quarantined_at").min().alias("first"),
                pl.col("quarantined_at").max().alias("last"),
            )
            .sort("messages", descending=True)
        )
        for row in grouped.iter_rows(named=True):
            out.append(
                {
                    "kind": kind.value,
                    "reason": row["reasons"],
                    "stage": row["stage"],
                    "messages": int(row["messages"]),
                    "replayed": int(row["replayed"]),
                    "first": row["first"].isoformat(),
                    "last": row["last"].isoformat(),
                }
            )
    return out


def quarantined_messages(
    settings: Settings,
    *,
    kinds: Sequence[EventKind] = tuple(EventKind),
    reason: str | None = None,
    tenant: str | None = None,
    since: datetime | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The newest ``limit`` quarantined messages themselves, newest first, across ``kinds``.

    Each is a dict: ``kind``, ``tenant``, ``kafka_topic``, ``kafka_partition``, ``kafka_offset``,
    ``quarantined_at`` (ISO 8601 UTC), ``stage``, ``reasons``, ``details`` (one per reason),
    ``event_id`` (or None), ``raw`` (the payload bytes exactly as consumed) and ``replay``: None
    when ``maxlake quarantine replay`` never selected it, else what it did
    (:func:`lake.replays.replay_marks`: ``outcome``, ``replayed_at``, ``replay_id``, ...).
    """
    return quarantine_page(
        settings, kinds=kinds, reason=reason, tenant=tenant, since=since, limit=limit
    )[1]


def quarantine_page(
    settings: Settings,
    *,
    kinds: Sequence[EventKind] = tuple(EventKind),
    reason: str | None = None,
    tenant: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[int, list[dict[str, Any]]]:
    """One page of quarantined messages, newest first: the ``limit`` after the ``offset`` newest.

    Returns:
        How many messages match in all, and the page's messages (the dicts of
        :func:`quarantined_messages`).
    """
    store = DeltaStore.from_settings(settings)
    newest: list[dict[str, Any]] = []
    total = 0
    for kind in kinds:
        rows = _read_quarantine(store, kind.value, since=since, reason=reason, tenant=tenant)
        if rows.num_rows == 0:
            continue
        total += rows.num_rows
        rows = rows.sort_by([("quarantined_at", "descending"), ("kafka_offset", "descending")])
        newest.extend(rows.slice(0, offset + limit).to_pylist())
    newest.sort(key=lambda r: (r["quarantined_at"], r["kafka_offset"]), reverse=True)
    page = newest[offset : offset + limit]
    marks: dict[tuple[str, int, int], dict[str, object]] = {}
    for kind in {r["kind"] for r in page}:
        coords = [_coordinate(r) for r in page if r["kind"] == kind]
        marks.update(replay_marks(store, kind, coords))
    return total, [
        {
            "kind": r["kind"],
            "tenant": r["tenant"],
            "kafka_topic": r["kafka_topic"],
            "kafka_partition": r["kafka_partition"],
            "kafka_offset": r["kafka_offset"],
            "quarantined_at": r["quarantined_at"].isoformat(),
            "stage": r["stage"],
            "reasons": r["reasons"],
            "details": r["details"],
            "event_id": r["event_id"],
            "raw": r["raw"],
            "replay": marks.get(_coordinate(r)),
        }
        for r in page
    ]


def _coordinate(row: dict[str, Any]) -> tuple[str, int, int]:
    return (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"])


def known_reasons(
    settings: Settings, *, kinds: Sequence[EventKind] = tuple(EventKind)
) -> list[str]:
    """Every quarantine reason of ``kinds``, sorted: those the decoder, the ingest and the
    current suites' ``drop`` expectations write, and any other found in the quarantine tables
    (written by an older suite, say)."""
    names = {r.value for r in RejectReason} | {"validation_error", EVENT_ID_CONFLICT}
    suites = load_suites()
    for kind in kinds:
        names |= {e.reason or e.name for e in suites[kind].expectations if e.level == "drop"}
    names |= {row["reason"] for row in quarantine_summary(settings, kinds=kinds)}
    return sorted(names)


def escape_payload(raw: bytes, max_bytes: int) -> str:
    """``raw`` as one printable line: UTF-8 where valid, ``\\xNN`` for other bytes and every
    control character, cut at ``max_bytes`` bytes with the number of bytes left out."""
    text = raw[:max_bytes].decode("utf-8", errors="backslashreplace")
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    cut = len(raw) - max_bytes
    return text + (f" ... ({cut:,} more bytes)" if cut > 0 else "")
