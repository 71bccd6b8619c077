"""The accounting invariant, checked from the lake (and the Kafka offsets the caller supplies).

Invariant: every consumed offset of an ingest topic is in exactly one of ``silver/<kind>``
(one or more rows), ``quarantine/<kind>`` or ``ops/duplicates``; no ``event_id`` is in silver
at two different offsets; and the counts of ``ops/validation_runs`` add up to the offsets found.
Given the consumer group's committed offsets, every offset below them must be accounted for.

Replays extend the invariant consistently: a quarantined offset that ``ops/replays`` records as
``replayed`` counts as silver (its rows are there, under the original coordinates) and no longer
as quarantine; it must then be in silver, and in the quarantine table as the record of why it
was first rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from lake.delta import DeltaStore
from lake.replays import replay_records
from lake.tables import DUPLICATES, RUNS, quarantine_table, silver_table
from schemas import EventKind

__all__ = ["AccountingReport", "Violation", "check_accounting"]

_MAX_LISTED = 50


@dataclass(frozen=True)
class Violation:
    """One broken promise, with the offending Kafka coordinates."""

    problem: str
    topic: str
    partition: int
    offsets: tuple[int, ...]

    def __str__(self) -> str:
        shown = ", ".join(map(str, self.offsets[:_MAX_LISTED]))
        more = (
            f" (+{len(self.offsets) - _MAX_LISTED} more)" if len(self.offsets) > _MAX_LISTED else ""
        )
        return f"{self.problem}: {self.topic}[{self.partition}] offsets {shown}{more}"


@dataclass
class AccountingReport:
    """Totals per kind and every violation found."""

    silver_events: dict[str, int] = field(default_factory=dict)
    silver_rows: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    replayed: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    runs_consumed: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the invariant holds."""
        return not self.violations


def _offsets(store: DeltaStore, name: str, kind: str | None = None) -> pl.DataFrame:
    table = store.open(name)
    cols = ["kafka_topic", "kafka_partition", "kafka_offset"]
    if table is None:
        return pl.DataFrame(
            schema={"kafka_topic": pl.String, "kafka_partition": pl.Int32, "kafka_offset": pl.Int64}
        )
    extra = ["kind"] if kind is not None else []
    frame = pl.from_arrow(table.to_pyarrow_dataset().to_table(columns=cols + extra))
    assert isinstance(frame, pl.DataFrame)
    if kind is not None:
        frame = frame.filter(pl.col("kind") == kind).drop("kind")
    return frame


def check_accounting(
    store: DeltaStore,
    *,
    kinds: tuple[EventKind, ...] = tuple(EventKind),
    committed: Mapping[tuple[str, int], int] | None = None,
    start_offsets: Mapping[tuple[str, int], int] | None = None,
) -> AccountingReport:
    """Check the invariant for ``kinds``.

    Args:
        store: the lake.
        kinds: event kinds to check.
        committed: the consumer group's committed offset per (topic, partition): every offset
            below it must be accounted for. None checks the lake's internal consistency only.
        start_offsets: first offset still in Kafka per partition (log start); default 0.
    """
    report = AccountingReport()
    runs = store.open(RUNS)
    runs_frame = (
        pl.from_arrow(runs.to_pyarrow_dataset().to_table(columns=["kind", "consumed"]))
        if runs is not None
        else pl.DataFrame(schema={"kind": pl.String, "consumed": pl.Int64})
    )
    assert isinstance(runs_frame, pl.DataFrame)
    for kind in kinds:
        silver = _silver_keys(store, kind)
        keys = ["kafka_topic", "kafka_partition", "kafka_offset"]
        _check_rows_per_offset(report, kind, silver)
        silver_offsets = silver.select(keys).unique()
        quarantine = _offsets(store, quarantine_table(kind))
        duplicates = _offsets(store, DUPLICATES, kind=kind.value)
        replayed = replay_records(store, kind.value, outcomes=("replayed",)).select(keys).unique()
        _report(
            report,
            replayed.join(silver_offsets, on=keys, how="anti"),
            f"{kind.value}: recorded as replayed but not in silver",
        )
        _report(
            report,
            replayed.join(quarantine, on=keys, how="anti"),
            f"{kind.value}: recorded as replayed but never quarantined",
        )
        quarantine = quarantine.join(replayed, on=keys, how="anti")
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
        counted = tagged.group_by(keys).agg(pl.len().alias("n"), pl.col("place").unique().sort())
        _report(
            report,
            counted.filter(pl.col("n") > 1),
            f"{kind.value}: offset in more than one place (or twice)",
        )

        twice = (
            silver.group_by("event_id")
            .agg(
                pl.col("kafka_offset").n_unique().alias("n"),
                pl.first("kafka_topic"),
                pl.first("kafka_partition"),
                pl.col("kafka_offset").sort(),
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
                    f"{kind.value}: ops/validation_runs counts {consumed} consumed offsets but the "
                    f"lake holds {tagged.height}",
                    "*",
                    -1,
                    (),
                )
            )
        if committed:
            _check_coverage(report, kind, tagged, committed, start_offsets or {})
    return report


def _silver_keys(store: DeltaStore, kind: EventKind) -> pl.DataFrame:
    """Row keys of ``silver/<kind>``: event id, reading index (0 for one-row events), coords."""
    table = store.open(silver_table(kind))
    schema = {
        "event_id": pl.String,
        "reading_index": pl.Int64,
        "kafka_topic": pl.String,
        "kafka_partition": pl.Int32,
        "kafka_offset": pl.Int64,
    }
    if table is None:
        return pl.DataFrame(schema=schema)
    dataset = table.to_pyarrow_dataset()
    columns = [c for c in schema if c in dataset.schema.names]
    frame = pl.from_arrow(dataset.to_table(columns=columns))
    assert isinstance(frame, pl.DataFrame)
    if "reading_index" not in frame.columns:
        frame = frame.with_columns(pl.lit(0, pl.Int64).alias("reading_index"))
    return frame.with_columns(pl.col("reading_index").cast(pl.Int64)).select(list(schema))


def _check_rows_per_offset(report: AccountingReport, kind: EventKind, silver: pl.DataFrame) -> None:
    """Per offset, silver holds exactly the rows its event yields: one event id, reading
    indices 0..n-1 each once (one row for one-row events); no row key is in silver twice."""
    keys = ["kafka_topic", "kafka_partition", "kafka_offset"]
    per_offset = silver.group_by(keys).agg(
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
        .agg(pl.len().alias("n"), pl.col(keys[0]).first(), pl.col(keys[1]).first(), pl.col(keys[2]))
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
) -> None:
    for (topic, partition), end in sorted(committed.items()):
        if not topic.endswith(f".{kind.value}"):
            continue
        start = start_offsets.get((topic, partition), 0)
        have = set(
            tagged.filter(
                (pl.col("kafka_topic") == topic) & (pl.col("kafka_partition") == partition)
            )["kafka_offset"].to_list()
        )
        missing = tuple(o for o in range(start, end) if o not in have)
        if missing:
            report.violations.append(
                Violation(
                    "committed in Kafka but missing from the lake (lost)", topic, partition, missing
                )
            )
