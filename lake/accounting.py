"""The accounting invariant, checked from the lake (and the Kafka offsets the caller supplies).

Invariant: every consumed offset of an ingest topic is in exactly one of ``silver/<kind>``
(the rows its event yields: one per reading, each reading once), ``quarantine/<kind>`` or
``ops/duplicates``; no row key (event id, reading index) is in silver twice and no ``event_id``
at two different offsets; and the counts of ``ops/validation_runs`` add up to the offsets
found. Given the consumer group's committed offsets, every offset of the topic's current
lineage below them must be accounted for, except offsets that are not data records
(transaction markers and aborted records, which a ``read_committed`` consumer never sees: the
caller's ``data_offsets`` tells them apart) and offsets recorded in ``ops/gaps`` (offsets the
lake will never hold, with their cause: gone from Kafka before ingest, or discarded when the
topic was deleted and created again under a worker; reported, not violations).

Offsets are keyed by topic lineage (the Kafka topic id, see :mod:`lake.lineage`): rows of an
older incarnation of a topic never count for the current one. Rows written before lineages
(no ``kafka_topic_id``) belong to the lineage recorded as ``migrated``.

Replays extend the invariant consistently: a quarantined offset that ``ops/replays`` records as
``replayed`` counts as silver (its rows are there, under the original coordinates) and no longer
as quarantine; it must then be in silver, and in the quarantine table as the record of why it
was first rejected. A replayed row carries the topic id of its quarantine record; a replayed row
without one (written by replays before 2026-12, which dropped it) belongs to the lineage of the
quarantine record at its coordinates, not to the rows written before lineages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from lake.delta import DeltaStore
from lake.lineage import GAP_CAUSES, gap_records, lineage_records, merge_spans
from lake.replays import replay_records
from lake.tables import DUPLICATES, RUNS, quarantine_table, silver_table
from schemas import EventKind

__all__ = ["AccountingReport", "DataOffsets", "Violation", "check_accounting"]

_MAX_LISTED = 50
_LEGACY = "(before lineages)"
_COORDS = ["kafka_topic", "kafka_partition", "kafka_offset"]
_KEYS = ["kafka_topic", "lineage", "kafka_partition", "kafka_offset"]

DataOffsets = Callable[[str, int, list[int]], set[int]]
"""(topic, partition, offsets) -> those of ``offsets`` that Kafka holds as committed data
records (the rest are transaction markers or aborted records)."""


@dataclass(frozen=True)
class Violation:
    """One broken promise, with the offending Kafka coordinates."""

    problem: str
    topic: str
    partition: int
    offsets: tuple[int, ...]

    def __str__(self) -> str:
        if not self.offsets and self.partition < 0:
            return self.problem
        shown = ", ".join(map(str, self.offsets[:_MAX_LISTED]))
        more = (
            f" (+{len(self.offsets) - _MAX_LISTED} more)" if len(self.offsets) > _MAX_LISTED else ""
        )
        return f"{self.problem}: {self.topic}[{self.partition}] offsets {shown}{more}"


@dataclass
class AccountingReport:
    """Totals per kind, every violation found, and what is known but not a violation."""

    silver_events: dict[str, int] = field(default_factory=dict)
    silver_rows: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    replayed: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    runs_consumed: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    """Every recorded gap (``ops/gaps``), one line per merged range and cause, saying in words
    what the cause means (:data:`lake.lineage.GAP_CAUSES`). The name is historical: gaps of
    every cause are listed, not only offsets that expired."""
    gaps: dict[str, list[str]] = field(default_factory=dict)
    """The lines of :attr:`expired` by cause."""
    gap_offsets: dict[str, int] = field(default_factory=dict)
    """Offsets in the recorded gaps per cause (merged: an offset recorded twice counts once)."""
    not_data: int = 0
    """Offsets below the committed ones that are transaction markers or aborted records."""

    @property
    def ok(self) -> bool:
        """True when the invariant holds."""
        return not self.violations


def _with_lineage(frame: pl.DataFrame, migrated: Mapping[str, str]) -> pl.DataFrame:
    """``lineage``: the row's topic id; rows without one belong to the migrated lineage."""
    legacy = pl.col("kafka_topic").replace_strict(
        dict(migrated), default=_LEGACY, return_dtype=pl.String
    )
    tid = pl.col("kafka_topic_id") if "kafka_topic_id" in frame.columns else pl.lit(None)
    return frame.with_columns(pl.coalesce(tid.cast(pl.String), legacy).alias("lineage")).drop(
        "kafka_topic_id", strict=False
    )


def _read(
    store: DeltaStore, name: str, columns: list[str], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    have = store.schema(name)
    if have is None:
        return pl.DataFrame(schema=schema)
    frame = store.read_frame(name, columns=[c for c in columns if c in have.names])
    assert frame is not None
    return frame


_COORD_SCHEMA: dict[str, pl.DataType] = {
    "kafka_topic": pl.String(),
    "kafka_partition": pl.Int32(),
    "kafka_offset": pl.Int64(),
}


def _offsets(
    store: DeltaStore, name: str, migrated: Mapping[str, str], kind: str | None = None
) -> pl.DataFrame:
    extra = ["kind"] if kind is not None else []
    frame = _read(store, name, [*_COORDS, "kafka_topic_id", *extra], _COORD_SCHEMA)
    if kind is not None and "kind" in frame.columns:
        frame = frame.filter(pl.col("kind") == kind).drop("kind")
    return _with_lineage(frame, migrated).select(_KEYS)


def _replayed_topic_ids(store: DeltaStore, kind: EventKind, replayed: pl.DataFrame) -> pl.DataFrame:
    """Coordinates and topic id of the quarantine rows of replayed offsets (``_COORDS`` and
    ``replayed_topic_id``), for those with one topic id only.

    Replays before 2026-12 wrote silver rows without ``kafka_topic_id``; such a row inherits the
    lineage of the quarantine record it was replayed from.
    """
    schema = {**_COORD_SCHEMA, "kafka_topic_id": pl.String()}
    frame = _read(store, quarantine_table(kind), list(schema), schema)
    if "kafka_topic_id" not in frame.columns or replayed.is_empty():
        return pl.DataFrame(schema={**_COORD_SCHEMA, "replayed_topic_id": pl.String()})
    return (
        frame.join(replayed.select(_COORDS), on=_COORDS, how="semi")
        .filter(pl.col("kafka_topic_id").is_not_null())
        .group_by(_COORDS)
        .agg(pl.col("kafka_topic_id").unique().alias("ids"))
        .filter(pl.col("ids").list.len() == 1)
        .select(*_COORDS, pl.col("ids").list.first().alias("replayed_topic_id"))
    )


def _silver_keys(
    store: DeltaStore,
    kind: EventKind,
    migrated: Mapping[str, str],
    replayed_topic_ids: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Row keys of ``silver/<kind>``: event id, reading index (0 for one-row events), coords.

    A row without a topic id at a coordinate of ``replayed_topic_ids`` (see
    :func:`_replayed_topic_ids`) belongs to that lineage, not to the pre-lineage rows.
    """
    schema = {"event_id": pl.String(), "reading_index": pl.Int64(), **_COORD_SCHEMA}
    frame = _read(store, silver_table(kind), [*schema, "kafka_topic_id"], schema)
    if (
        replayed_topic_ids is not None
        and not replayed_topic_ids.is_empty()
        and "kafka_topic_id" in frame.columns
    ):
        frame = (
            frame.join(replayed_topic_ids, on=_COORDS, how="left")
            .with_columns(
                pl.coalesce("kafka_topic_id", "replayed_topic_id").alias("kafka_topic_id")
            )
            .drop("replayed_topic_id")
        )
    if "reading_index" not in frame.columns:
        frame = frame.with_columns(pl.lit(0, pl.Int64).alias("reading_index"))
    frame = frame.with_columns(pl.col("reading_index").cast(pl.Int64))
    return _with_lineage(frame, migrated).select(["event_id", "reading_index", *_KEYS])


def check_accounting(
    store: DeltaStore,
    *,
    kinds: tuple[EventKind, ...] = tuple(EventKind),
    committed: Mapping[tuple[str, int], int] | None = None,
    start_offsets: Mapping[tuple[str, int], int] | None = None,
    topic_ids: Mapping[str, str] | None = None,
    data_offsets: DataOffsets | None = None,
) -> AccountingReport:
    """Check the invariant for ``kinds``.

    Args:
        store: the lake.
        kinds: event kinds to check.
        committed: the consumer group's committed offset per (topic, partition): every offset
            below it must be accounted for. None checks the lake's internal consistency only.
        start_offsets: first offset still in Kafka per partition (log start); default 0.
        topic_ids: each topic's current Kafka topic id; coverage is checked for that lineage
            (default: the lineage last recorded in ``ops/lineage``, else the pre-lineage rows).
        data_offsets: tells which offsets missing from the lake are data records in Kafka;
            without it every missing offset counts as lost.
    """
    report = AccountingReport()
    lineages = lineage_records(store)
    migrated = {
        str(t): str(i)
        for t, i, c in lineages.select(["topic", "topic_id", "cause"]).iter_rows()
        if c == "migrated"
    }
    current = dict(topic_ids or {})
    recorded = set(lineages["topic"].to_list())
    for topic, tid in current.items():
        if topic not in recorded:
            migrated.setdefault(topic, tid)  # no worker met it yet: the legacy rows are its
    for topic, tid in lineages.select(["topic", "topic_id"]).iter_rows():
        if topic_ids is None:
            current[str(topic)] = str(tid)
    gaps = _gaps(store, migrated, report)
    runs_frame = _read(
        store, RUNS, ["kind", "consumed"], {"kind": pl.String(), "consumed": pl.Int64()}
    )
    for kind in kinds:
        replayed = (
            replay_records(store, kind.value, outcomes=("replayed",)).select(_COORDS).unique()
        )
        silver = _silver_keys(store, kind, migrated, _replayed_topic_ids(store, kind, replayed))
        _check_rows_per_offset(report, kind, silver)
        silver_offsets = silver.select(_KEYS).unique()
        quarantine = _offsets(store, quarantine_table(kind), migrated)
        duplicates = _offsets(store, DUPLICATES, migrated, kind=kind.value)
        _report(
            report,
            replayed.join(silver_offsets.select(_COORDS), on=_COORDS, how="anti"),
            f"{kind.value}: recorded as replayed but not in silver",
        )
        _report(
            report,
            replayed.join(quarantine.select(_COORDS), on=_COORDS, how="anti"),
            f"{kind.value}: recorded as replayed but never quarantined",
        )
        quarantine = quarantine.join(replayed, on=_COORDS, how="anti")
        report.silver_events[kind.value] = silver_offsets.height
        report.silver_rows[kind.value] = silver.height
        report.quarantined[kind.value] = quarantine.height
        report.replayed[kind.value] = replayed.height
        report.duplicates[kind.value] = duplicates.height
        consumed = int(runs_frame.filter(pl.col("kind") == kind.value)["consumed"].sum())
        report.runs_consumed[kind.value] = consumed

        tagged = pl.concat(
            [
                silver_offsets.with_columns(pl.lit("silver").alias("place")),
                quarantine.with_columns(pl.lit("quarantine").alias("place")),
                duplicates.with_columns(pl.lit("duplicates").alias("place")),
            ]
        )
        counted = tagged.group_by(_KEYS).agg(pl.len().alias("n"), pl.col("place").unique().sort())
        _report(
            report,
            counted.filter(pl.col("n") > 1),
            f"{kind.value}: offset in more than one place (or twice)",
        )

        twice = (
            silver.group_by("event_id")
            .agg(
                pl.struct("lineage", "kafka_offset").n_unique().alias("n"),
                pl.first("kafka_topic"),
                pl.first("kafka_partition"),
                pl.col("kafka_offset").unique().sort(),
            )
            .filter(pl.col("n") > 1)
        )
        for row in twice.iter_rows(named=True):
            report.violations.append(
                Violation(
                    f"{kind.value}: event_id {row['event_id']!r} in silver at several offsets",
                    row["kafka_topic"],
                    row["kafka_partition"],
                    tuple(row["kafka_offset"]),
                )
            )
        if consumed != tagged.height:
            report.violations.append(
                Violation(
                    f"{kind.value}: ops/validation_runs counts {consumed:,} consumed offsets but "
                    f"the lake holds {tagged.height:,}"
                    + (
                        " (a worker wrote a batch and stopped before recording its validation "
                        "run, as after a kill -9: a restarted worker records it; check again "
                        "once every worker runs and the lag is 0)"
                        if tagged.height > consumed
                        else ""
                    ),
                    "*",
                    -1,
                    (),
                )
            )
        if committed:
            _check_coverage(
                report,
                kind,
                tagged,
                committed,
                start_offsets or {},
                current,
                gaps,
                data_offsets,
            )
    return report


def _gaps(
    store: DeltaStore, migrated: Mapping[str, str], report: AccountingReport
) -> dict[tuple[str, str, int], list[tuple[int, int]]]:
    """Recorded gaps per (topic, lineage, partition), merged across causes (coverage needs
    only whether an offset is in one); listed per cause in ``report.expired`` and counted in
    ``report.gap_offsets``."""
    frame = gap_records(store)
    out: dict[tuple[str, str, int], list[tuple[int, int]]] = {}
    if frame.is_empty():
        return out
    frame = _with_lineage(
        frame.rename({"topic": "kafka_topic", "topic_id": "kafka_topic_id"}), migrated
    )
    spans = frame.select(
        ["kafka_topic", "lineage", "partition", "from_offset", "to_offset", "cause"]
    ).unique()
    rows = [
        ((str(topic), str(lineage), int(partition)), str(cause), lo, hi)
        for topic, lineage, partition, lo, hi, cause in spans.iter_rows()
    ]
    out = merge_spans((key, lo, hi) for key, _, lo, hi in rows)
    by_cause = merge_spans(((*key, cause), lo, hi) for key, cause, lo, hi in rows)
    for (topic, lineage, partition, cause), merged in sorted(by_cause.items()):
        meaning = GAP_CAUSES.get(cause, f"cause {cause!r}")
        for lo, hi in merged:
            report.gap_offsets[cause] = report.gap_offsets.get(cause, 0) + hi - lo + 1
            line = (
                f"{topic}[{partition}] offsets {lo}..{hi} ({hi - lo + 1}): {meaning} "
                f"(cause {cause}, topic id {lineage})"
            )
            report.expired.append(line)
            report.gaps.setdefault(cause, []).append(line)
    return out


def _check_rows_per_offset(report: AccountingReport, kind: EventKind, silver: pl.DataFrame) -> None:
    """Per offset, silver holds exactly the rows its event yields: one event id, reading
    indices 0..n-1 each once (one row for one-row events); no row key is in silver twice."""
    per_offset = silver.group_by(_KEYS).agg(
        pl.len().alias("rows"),
        pl.col("event_id").n_unique().alias("events"),
        pl.col("reading_index").n_unique().alias("indices"),
        pl.col("reading_index").min().alias("low"),
        pl.col("reading_index").max().alias("high"),
    )
    bad = per_offset.filter(
        (pl.col("events") != 1)
        | (pl.col("indices") != pl.col("rows"))
        | (pl.col("low") != 0)
        | (pl.col("high") != pl.col("rows") - 1)
    )
    _report(
        report,
        bad,
        f"{kind.value}: offset's silver rows are not its event's readings once each "
        "(rows written twice, or of two events)",
    )
    twice = (
        silver.group_by(["event_id", "reading_index"])
        .agg(
            pl.len().alias("n"),
            pl.col("kafka_topic").first(),
            pl.col("kafka_partition").first(),
            pl.col("kafka_offset"),
        )
        .filter(pl.col("n") > 1)
    )
    for row in twice.iter_rows(named=True):
        report.violations.append(
            Violation(
                f"{kind.value}: silver row key (event_id {row['event_id']!r}, reading "
                f"{row['reading_index']}) written {row['n']} times",
                row["kafka_topic"],
                row["kafka_partition"],
                tuple(sorted(row["kafka_offset"])),
            )
        )


def _report(report: AccountingReport, frame: pl.DataFrame, problem: str) -> None:
    grouped = frame.group_by(["kafka_topic", "kafka_partition"]).agg(pl.col("kafka_offset").sort())
    for row in grouped.iter_rows(named=True):
        report.violations.append(
            Violation(
                problem, row["kafka_topic"], row["kafka_partition"], tuple(row["kafka_offset"])
            )
        )


def _check_coverage(
    report: AccountingReport,
    kind: EventKind,
    tagged: pl.DataFrame,
    committed: Mapping[tuple[str, int], int],
    start_offsets: Mapping[tuple[str, int], int],
    current: Mapping[str, str],
    gaps: Mapping[tuple[str, str, int], list[tuple[int, int]]],
    data_offsets: DataOffsets | None,
) -> None:
    for (topic, partition), end in sorted(committed.items()):
        if not topic.endswith(f".{kind.value}"):
            continue
        lineage = current.get(topic, _LEGACY)
        start = start_offsets.get((topic, partition), 0)
        have = set(
            tagged.filter(
                (pl.col("kafka_topic") == topic)
                & (pl.col("kafka_partition") == partition)
                & (pl.col("lineage") == lineage)
            )["kafka_offset"].to_list()
        )
        spans = gaps.get((topic, lineage, partition), [])
        missing = [
            o
            for o in range(start, end)
            if o not in have and not any(lo <= o <= hi for lo, hi in spans)
        ]
        if missing and data_offsets is not None:
            data = data_offsets(topic, partition, missing)
            report.not_data += len(missing) - len(data)
            missing = [o for o in missing if o in data]
        if missing:
            report.violations.append(
                Violation(
                    "committed in Kafka but missing from the lake (lost)",
                    topic,
                    partition,
                    tuple(missing),
                )
            )
