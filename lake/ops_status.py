"""What operators need to know about the lake, read from the lake alone.

Three views, all JSON-serialisable dicts so that ``maxlake status --json`` and the HTTP status
page show the same thing:

- :func:`table_health`: every table's version, files, small files, size and last commit age
  (from :func:`lake.maintenance.table_status`).
- :func:`quality_window`: per kind, what the workers did over a recent window, from
  ``ops/validation_runs`` (counts, quarantine rate and reasons, failed expectations, batch checks,
  timings) and from ``quarantine/<kind>`` (quarantined messages by tenant, stage and reason).
- :func:`runs_history`: the same counts in fixed time buckets, for charts.

Reads prune on the ``date`` partition and then filter on the batch's ``finished_at`` (or the
message's ``quarantined_at``), so a short window reads only today's (and yesterday's) files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from lake.delta import DeltaStore
from lake.lineage import (
    BEYOND_LOG_END,
    DELETED_AT_CORRUPT_BATCH,
    DISCARDED_TOPIC_RECREATED,
    EXPIRED_BEFORE_INGEST,
    GAP_CAUSES,
    gap_records,
    lineage_records,
    merge_spans,
)
from lake.maintenance import discover_tables, table_status
from lake.tables import DUPLICATES, RUNS, quarantine_table
from schemas import EventKind
from schemas.silver import TIMESTAMP

__all__ = ["offset_events", "quality_window", "runs_history", "table_health"]

RECENT_RATE_WINDOW = timedelta(minutes=5)
"""How far back ``recent_events_per_s`` reaches (capped at the status window)."""

_RUN_COLUMNS = [
    "kind",
    "worker",
    "finished_at",
    "consumed",
    "silver_events",
    "silver_rows",
    "quarantined",
    "duplicates",
    "quarantined_by_reason",
    "warn_counts",
    "batch_checks",
    "failed_expectations",
    "suite_version",
    "decode_ms",
    "validate_ms",
    "write_ms",
]


def table_health(store: DeltaStore) -> list[dict[str, Any]]:
    """One entry per table: version, files, small files, bytes, last commit and its age."""
    out = []
    for name in discover_tables(store):
        status = table_status(store, name)
        out.append(
            {
                "table": name,
                "version": status.version,
                "files": status.files,
                "small_files": status.small_files,
                "bytes": status.bytes,
                "partitions": len(status.partitions),
                "last_commit": status.last_commit.isoformat() if status.last_commit else None,
                "last_commit_age_s": status.last_commit_age_s,
            }
        )
    return out


def _runs(store: DeltaStore, since: datetime, *, offsets: bool = False) -> pl.DataFrame:
    """Rows of ``ops/validation_runs`` whose batch finished at or after ``since`` (with their
    ``offsets`` column when ``offsets``)."""
    flt = (ds.field("date") >= pa.scalar(since.date(), pa.date32())) & (
        ds.field("finished_at") >= pa.scalar(since, TIMESTAMP)
    )
    columns = [*_RUN_COLUMNS, "offsets"] if offsets else _RUN_COLUMNS
    frame = store.read_frame(RUNS, columns=columns, filter=flt)
    return pl.DataFrame() if frame is None else frame


def _consumed_from(runs: pl.DataFrame, topics: Sequence[str]) -> pl.DataFrame:
    """``runs`` (with ``offsets``) that read any of ``topics``, each with ``topic_offsets``: the
    offsets it read from them (``last_offset - first_offset + 1`` per partition)."""
    spans = (
        runs.with_row_index("_run")
        .select("_run", "offsets")
        .explode("offsets")
        .drop_nulls()
        .unnest("offsets")
        .filter(pl.col("topic").is_in(list(topics)))
        .group_by("_run")
        .agg((pl.col("last_offset") - pl.col("first_offset") + 1).sum().alias("topic_offsets"))
    )
    return runs.with_row_index("_run").join(spans, on="_run", how="inner").drop("_run")


def _tenant_rows(
    store: DeltaStore, table: str, kind: str, tenants: Sequence[str], column: str, since: datetime
) -> pl.DataFrame:
    """Rows of ``table`` of ``kind`` and ``tenants`` whose ``column`` is at or after ``since``."""
    flt = (
        (ds.field("kind") == kind)
        & ds.field("tenant").isin(list(tenants))
        & (ds.field("date") >= pa.scalar(since.date(), pa.date32()))
        & (ds.field(column) >= pa.scalar(since, TIMESTAMP))
    )
    frame = store.read_frame(
        table, columns=["tenant", "reasons"] if table != DUPLICATES else ["tenant"], filter=flt
    )
    return pl.DataFrame() if frame is None else frame


def _named_counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    """Sum a ``list<struct<name, count>>`` column by name."""
    if frame.is_empty():
        return {}
    exploded = frame.select(pl.col(column).explode()).drop_nulls().unnest(column)
    if exploded.is_empty():
        return {}
    sums = exploded.group_by("name").agg(pl.col("count").sum()).sort("count", descending=True)
    return {str(n): int(c) for n, c in sums.iter_rows()}


def _failed_checks(frame: pl.DataFrame) -> dict[str, int]:
    """Batch-level expectation name -> number of batches that failed it."""
    if frame.is_empty():
        return {}
    checks = frame.select(pl.col("batch_checks").explode()).drop_nulls().unnest("batch_checks")
    failed = checks.filter(~pl.col("success")).group_by("name").agg(pl.len().alias("n"))
    return {str(n): int(c) for n, c in failed.sort("n", descending=True).iter_rows()}


def _failed_expectations(frame: pl.DataFrame) -> dict[str, int]:
    """Expectation name (any level) -> number of batches in which it failed."""
    if frame.is_empty():
        return {}
    names = frame.select(pl.col("failed_expectations").explode()).drop_nulls()
    counts = names.group_by("failed_expectations").agg(pl.len().alias("n"))
    return {str(n): int(c) for n, c in counts.sort("n", descending=True).iter_rows()}


def _quarantine_breakdown(store: DeltaStore, kind: str, since: datetime) -> list[dict[str, Any]]:
    """Quarantined messages of ``kind`` since ``since`` by tenant, stage and reason."""
    flt = (ds.field("date") >= pa.scalar(since.date(), pa.date32())) & (
        ds.field("quarantined_at") >= pa.scalar(since, TIMESTAMP)
    )
    frame = store.read_frame(
        quarantine_table(kind), columns=["tenant", "stage", "reasons"], filter=flt
    )
    if frame is None or frame.is_empty():
        return []
    grouped = (
        frame.explode("reasons")
        .group_by(["tenant", "stage", "reasons"])
        .agg(pl.len().alias("messages"))
        .sort(["messages", "tenant", "reasons"], descending=[True, False, False])
    )
    return [
        {"tenant": t, "stage": s, "reason": r, "messages": int(n)}
        for t, s, r, n in grouped.iter_rows()
    ]


def quality_window(
    store: DeltaStore,
    window: timedelta,
    *,
    tenants: Sequence[str] | None = None,
    topics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per event kind, what the workers did in the last ``window``, for every tenant or only
    ``tenants`` (whose ingest topics are ``topics``).

    Returns:
        ``{"since": iso, "window_s": float, "recent_s": float, "tenants": list or None,
        "kinds": {kind: {...}}}``;
        each kind holds ``batches``, ``consumed``, ``silver_events``, ``silver_rows``,
        ``quarantined``, ``duplicates``, ``quarantine_rate`` (quarantined / consumed, 0 when
        idle), ``events_per_s`` (consumed / window), ``recent_events_per_s`` (consumed by the
        batches that finished in the last ``recent_s`` seconds, the last 5 minutes or the
        whole window if shorter, / ``recent_s``), ``quarantined_by_reason`` (every reason,
        most frequent first),
        ``quarantine_by_tenant`` (from ``quarantine/<kind>``), ``failed_expectations`` (name ->
        batches), ``failed_batch_checks`` (name -> batches), ``warn_counts`` (name -> rows),
        ``suite_versions``, ``workers``, ``last_batch_at`` and mean/max timings in ms.

        A batch reads several tenants' topics, so with ``tenants`` the counts come from
        elsewhere: ``consumed`` is the offsets the window's batches read from ``topics``
        (first to last per partition: transaction markers in between included),
        ``quarantined`` and ``quarantined_by_reason`` are these tenants' rows of
        ``quarantine/<kind>``, ``duplicates`` their rows of ``ops/duplicates``,
        ``silver_events`` the rest (consumed - quarantined - duplicates, the accounting
        invariant) and ``silver_rows`` None; ``batches``, the failed checks, warnings, workers
        and timings are those of the batches that read any of ``topics`` (other tenants'
        messages included).
    """
    now = datetime.now(UTC)
    since = now - window
    recent = min(RECENT_RATE_WINDOW, window)
    runs = _runs(store, since, offsets=tenants is not None)
    kinds: dict[str, Any] = {}
    for kind in EventKind:
        frame = runs.filter(pl.col("kind") == kind.value) if not runs.is_empty() else runs
        if tenants is not None:
            frame = _consumed_from(frame, topics or []) if not frame.is_empty() else frame
            kinds[kind.value] = _tenant_kind(store, kind.value, frame, since, tenants)
            kinds[kind.value]["events_per_s"] = (
                kinds[kind.value]["consumed"] / window.total_seconds()
            )
            kinds[kind.value]["recent_events_per_s"] = _recent_rate(
                frame, "topic_offsets", now - recent, recent
            )
            continue
        consumed = int(frame["consumed"].sum()) if not frame.is_empty() else 0
        quarantined = int(frame["quarantined"].sum()) if not frame.is_empty() else 0
        kinds[kind.value] = {
            "batches": frame.height,
            "consumed": consumed,
            "silver_events": int(frame["silver_events"].sum()) if consumed else 0,
            "silver_rows": int(frame["silver_rows"].sum()) if consumed else 0,
            "quarantined": quarantined,
            "duplicates": int(frame["duplicates"].sum()) if consumed else 0,
            "quarantine_rate": quarantined / consumed if consumed else 0.0,
            "events_per_s": consumed / window.total_seconds(),
            "recent_events_per_s": _recent_rate(frame, "consumed", now - recent, recent),
            "quarantined_by_reason": _named_counts(frame, "quarantined_by_reason"),
            "quarantine_by_tenant": _quarantine_breakdown(store, kind.value, since),
            **_batch_facts(frame),
        }
    return {
        "since": since.isoformat(),
        "window_s": window.total_seconds(),
        "recent_s": recent.total_seconds(),
        "tenants": None if tenants is None else list(tenants),
        "kinds": kinds,
    }


def _recent_rate(frame: pl.DataFrame, column: str, since: datetime, span: timedelta) -> float:
    """Events per second in ``column`` of the batches of ``frame`` that finished at or after
    ``since``, over ``span`` (0 when none did)."""
    if frame.is_empty():
        return 0.0
    recent = frame.filter(pl.col("finished_at") >= since)
    return int(recent[column].sum()) / span.total_seconds() if recent.height else 0.0


def _tenant_kind(
    store: DeltaStore, kind: str, frame: pl.DataFrame, since: datetime, tenants: Sequence[str]
) -> dict[str, Any]:
    """One kind's entry of :func:`quality_window` for ``tenants`` only, from the batches of
    ``frame`` that read their topics (with ``topic_offsets``, :func:`_consumed_from`)."""
    consumed = int(frame["topic_offsets"].sum()) if not frame.is_empty() else 0
    rejected = _tenant_rows(store, quarantine_table(kind), kind, tenants, "quarantined_at", since)
    duplicates = _tenant_rows(store, DUPLICATES, kind, tenants, "detected_at", since).height
    by_reason: dict[str, int] = {}
    if not rejected.is_empty():
        counts = rejected.select(pl.col("reasons").explode()).group_by("reasons").len()
        by_reason = {
            str(r): int(n)
            for r, n in counts.sort(["len", "reasons"], descending=[True, False]).iter_rows()
        }
    breakdown = [
        row for row in _quarantine_breakdown(store, kind, since) if row["tenant"] in tenants
    ]
    return {
        "batches": frame.height,
        "consumed": consumed,
        "silver_events": max(consumed - rejected.height - duplicates, 0),
        "silver_rows": None,
        "quarantined": rejected.height,
        "duplicates": duplicates,
        "quarantine_rate": rejected.height / consumed if consumed else 0.0,
        "quarantined_by_reason": by_reason,
        "quarantine_by_tenant": breakdown,
        **_batch_facts(frame),
    }


def _batch_facts(frame: pl.DataFrame) -> dict[str, Any]:
    """What the batches of ``frame`` (rows of ``ops/validation_runs``) say beyond counts."""
    return {
        "failed_expectations": _failed_expectations(frame),
        "failed_batch_checks": _failed_checks(frame),
        "warn_counts": _named_counts(frame, "warn_counts"),
        "suite_versions": sorted({str(v) for v in frame["suite_version"].drop_nulls().to_list()})
        if frame.height
        else [],
        "workers": sorted(set(frame["worker"].to_list())) if frame.height else [],
        "last_batch_at": frame["finished_at"].max().isoformat()  # type: ignore[union-attr]
        if frame.height
        else None,
        "timings_ms": _timings(frame),
    }


def _timings(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    if frame.is_empty():
        return {}
    out: dict[str, dict[str, float]] = {}
    for column in ("decode_ms", "validate_ms", "write_ms"):
        series = frame[column]
        out[column.removesuffix("_ms")] = {
            "mean": float(series.mean()),  # type: ignore[arg-type]
            "max": float(series.max()),  # type: ignore[arg-type]
        }
    return out


def runs_history(store: DeltaStore, window: timedelta, bucket: timedelta) -> dict[str, Any]:
    """Throughput and quarantine rate per time bucket over the last ``window``, for charts.

    Buckets are aligned to multiples of ``bucket`` since the epoch, oldest first, and every
    bucket of the window is present (zeros when no batch finished in it). A batch counts in the
    bucket of its ``finished_at``.

    Returns:
        ``{"bucket_s", "since", "until", "buckets": [{"start", "consumed", "silver_events",
        "quarantined", "duplicates", "batches", "events_per_s", "quarantine_rate",
        "by_kind": {kind: consumed}}]}``.
    """
    if bucket <= timedelta(0):
        raise ValueError("bucket must be positive")
    now = datetime.now(UTC)
    step = bucket.total_seconds()
    first = datetime.fromtimestamp(((now - window).timestamp() // step) * step, UTC)
    runs = _runs(store, first)
    starts: list[datetime] = []
    cursor = first
    while cursor <= now:
        starts.append(cursor)
        cursor += bucket
    sums: dict[datetime, dict[str, Any]] = {
        s: {
            "consumed": 0,
            "silver_events": 0,
            "quarantined": 0,
            "duplicates": 0,
            "batches": 0,
            "by_kind": {},
        }
        for s in starts
    }
    if not runs.is_empty():
        every = f"{int(step * 1_000_000)}us"
        keyed = runs.with_columns(pl.col("finished_at").dt.truncate(every).alias("bucket"))
        grouped = keyed.group_by(["bucket", "kind"]).agg(
            pl.col("consumed").sum(),
            pl.col("silver_events").sum(),
            pl.col("quarantined").sum(),
            pl.col("duplicates").sum(),
            pl.len().alias("batches"),
        )
        for row in grouped.iter_rows(named=True):
            slot = sums.get(row["bucket"])
            if slot is None:
                continue
            for key in ("consumed", "silver_events", "quarantined", "duplicates", "batches"):
                slot[key] += int(row[key])
            slot["by_kind"][row["kind"]] = slot["by_kind"].get(row["kind"], 0) + int(
                row["consumed"]
            )
    buckets = []
    for start in starts:
        slot = sums[start]
        consumed = slot["consumed"]
        buckets.append(
            {
                "start": start.isoformat(),
                **slot,
                "events_per_s": consumed / step,
                "quarantine_rate": slot["quarantined"] / consumed if consumed else 0.0,
            }
        )
    return {
        "bucket_s": step,
        "since": first.isoformat(),
        "until": now.isoformat(),
        "buckets": buckets,
    }


def offset_events(store: DeltaStore, since: datetime) -> dict[str, Any]:
    """Topic lineage changes and offset gaps recorded at or after ``since`` (lake/lineage.py).

    Returns:
        ``{"lineage_changes": [{"topic", "topic_id", "previous_topic_id", "detected_at",
        "worker"}], "gaps": [{"topic", "topic_id", "partition", "from_offset", "to_offset",
        "offsets", "cause", "detected_at"}], "gaps_total": int, "gaps_by_cause": {cause:
        int}, "offsets_expired_total": int, "offsets_discarded_total": int,
        "lineage_changes_total": int}``; the totals cover all time. ``offsets_expired_total``
        counts the offsets Kafka no longer had (``expired_before_ingest``, ``beyond_log_end``,
        ``deleted_at_corrupt_batch``),
        ``offsets_discarded_total`` those of a topic's old incarnation that a worker discarded
        or never read when the topic was deleted and created again
        (``discarded_topic_recreated``); ``gaps_by_cause`` has every known cause.
    """
    lineage = lineage_records(store)
    changes = lineage.filter((pl.col("cause") == "recreated") & (pl.col("detected_at") >= since))
    gaps = gap_records(store)
    keys = ["topic", "topic_id", "partition", "cause"]
    # Two workers may record the same loss with different bounds: offsets count once, and
    # ``gaps`` are the merged ranges (as ``lake verify`` counts them, lake.lineage.merge_spans).
    merged = merge_spans(
        ((t, tid, p, c), lo, hi)
        for t, tid, p, c, lo, hi in gaps.select([*keys, "from_offset", "to_offset"]).iter_rows()
    )
    expired = merge_spans(
        ((t, tid, p), lo, hi)
        for (t, tid, p, c), spans in merged.items()
        if c in (EXPIRED_BEFORE_INGEST, BEYOND_LOG_END, DELETED_AT_CORRUPT_BATCH)
        for lo, hi in spans
    )
    by_cause = dict.fromkeys(GAP_CAUSES, 0)
    for (*_, cause), spans in merged.items():
        by_cause[cause] = by_cause.get(cause, 0) + len(spans)
    recent = _recent_gaps(gaps.filter(pl.col("detected_at") >= since), keys)
    return {
        "lineage_changes": [
            {
                "topic": r["topic"],
                "topic_id": r["topic_id"],
                "previous_topic_id": r["previous_topic_id"],
                "detected_at": r["detected_at"].isoformat(),
                "worker": r["worker"],
            }
            for r in changes.iter_rows(named=True)
        ],
        "gaps": recent,
        "gaps_total": sum(by_cause.values()),
        "gaps_by_cause": by_cause,
        "offsets_expired_total": _offsets(expired.values()),
        "offsets_discarded_total": _offsets(
            s for (*_, c), s in merged.items() if c == DISCARDED_TOPIC_RECREATED
        ),
        "lineage_changes_total": int((lineage["cause"] == "recreated").sum()),
    }


def _offsets(spans: Iterable[list[tuple[int, int]]]) -> int:
    return sum(hi - lo + 1 for ranges in spans for lo, hi in ranges)


def _recent_gaps(recent: pl.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    """The gaps recorded since the window began, merged as :func:`offset_events` counts them;
    each dated by the first of its rows."""
    merged = merge_spans(
        (tuple(r[k] for k in keys), r["from_offset"], r["to_offset"])
        for r in recent.iter_rows(named=True)
    )
    out = []
    for key, spans in merged.items():
        rows = recent.filter(*(pl.col(k).eq_missing(v) for k, v in zip(keys, key, strict=True)))
        for lo, hi in spans:
            first = rows.filter((pl.col("from_offset") >= lo) & (pl.col("to_offset") <= hi))
            gap = dict(zip(keys, key, strict=True))
            out.append(
                {
                    **gap,
                    "from_offset": lo,
                    "to_offset": hi,
                    "offsets": hi - lo + 1,
                    "detected_at": first["detected_at"].min().isoformat(),  # type: ignore[union-attr]
                }
            )
    return sorted(out, key=lambda g: g["detected_at"])
