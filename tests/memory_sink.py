"""An in-memory sink (docs/EXTENDING.md, "Add a sink"): the four logical tables as lists of Arrow
tables, following the rules of :mod:`lake.sink`; shared by the unit test of the pipeline and the
worker's ``--sink`` test.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl
import pyarrow as pa

from lake import (
    DUPLICATES,
    RUNS,
    BatchOutput,
    WriteResult,
    quarantine_table,
    silver_table,
)
from lake.lineage import Gap
from lake.sink import TopicPartition

__all__ = ["MemorySink"]

_COORDS = ("kafka_topic", "kafka_partition", "kafka_offset")


class MemorySink:
    """Every table a list of Arrow tables; a stored offset per (table, topic, partition)."""

    def __init__(self) -> None:
        self.tables: dict[str, list[pa.Table]] = {}
        self.stored: dict[tuple[str, str, int], int] = {}
        self.gaps: list[Gap] = []

    def write(self, batch: BatchOutput) -> WriteResult:
        started = time.perf_counter()
        offsets = pl.from_arrow(batch.offsets)
        assert isinstance(offsets, pl.DataFrame)
        last = offsets.group_by("topic", "partition").agg(pl.col("offset").max()).rows()
        added = {
            name: self._keep(name, rows, last)
            for name, rows in (
                (quarantine_table(batch.kind), batch.quarantine),
                (DUPLICATES, batch.duplicates),
                (silver_table(batch.kind), batch.silver),
            )
        }
        fresh = offsets.filter(
            pl.struct("topic", "partition", "offset").map_elements(
                lambda r: r["offset"] > self.stored.get((RUNS, r["topic"], r["partition"]), -1),
                return_dtype=pl.Boolean,
            )
        )
        for topic, partition, offset in last:
            self.stored[(RUNS, topic, partition)] = max(
                offset, self.stored.get((RUNS, topic, partition), -1)
            )
        silver = added[silver_table(batch.kind)]
        return WriteResult(
            consumed=fresh.height,
            silver_events=silver.select(_COORDS).unique().height,
            silver_rows=silver.height,
            quarantined=added[quarantine_table(batch.kind)].height,
            duplicates=added[DUPLICATES].height,
            skipped=offsets.height - fresh.height + batch.already_in_lake,
            write_ms=(time.perf_counter() - started) * 1000,
        )

    def _keep(
        self, name: str, rows: pa.Table, last: Sequence[tuple[str, int, int]]
    ) -> pl.DataFrame:
        """Append the rows beyond the table's stored offsets; move them to the batch's last."""
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        stored = pl.DataFrame(
            [(t, p, self.stored.get((name, t, p), -1)) for t, p, _ in last],
            schema={"kafka_topic": pl.String, "kafka_partition": pl.Int32, "stored": pl.Int64},
            orient="row",
        )
        fresh = (
            frame.join(stored, on=["kafka_topic", "kafka_partition"], how="left")
            .filter(pl.col("kafka_offset") > pl.col("stored"))
            .drop("stored")
        )
        if fresh.height:
            self.tables.setdefault(name, []).append(fresh.to_arrow())
        for topic, partition, offset in last:
            self.stored[(name, topic, partition)] = max(
                offset, self.stored.get((name, topic, partition), -1)
            )
        return fresh

    def committed_offsets(
        self,
        kind: str,
        partitions: Sequence[TopicPartition],
        topic_ids: Mapping[str, str | None] | None = None,
        *,
        worker: str = "worker",
    ) -> dict[TopicPartition, int]:
        return self.stored_offsets(RUNS, partitions, topic_ids or {}, worker)

    def handle(self) -> MemorySink:
        return self

    def stored_offsets(
        self,
        table: str,
        partitions: Sequence[TopicPartition],
        topic_ids: Mapping[str, str | None],
        worker: str,
    ) -> dict[TopicPartition, int]:
        return {(t, p): self.stored.get((table, t, p), -1) for t, p in partitions}

    def recent_event_ids(self, kind: str, *, tenant: str, topic: str, since: date) -> pa.Table:
        rows = self.frame(silver_table(kind))
        if rows.is_empty():
            return pa.table(
                {
                    "event_id": pa.array([], pa.string()),
                    "kafka_partition": pa.array([], pa.int32()),
                    "kafka_offset": pa.array([], pa.int64()),
                }
            )
        mine = rows.filter(
            (pl.col("tenant") == tenant)
            & (pl.col("kafka_topic") == topic)
            & (pl.col("date") >= since)
        )
        return (
            mine.group_by("event_id")
            .agg(pl.col("kafka_partition").min(), pl.col("kafka_offset").min())
            .to_arrow()
        )

    def duplicate_offsets(
        self,
        kind: str,
        *,
        topic: str,
        partition: int,
        first: int,
        last: int,
        topic_id: str | None = None,
    ) -> set[int]:
        rows = self.frame(DUPLICATES)
        if rows.is_empty():
            return set()
        hit = rows.filter(
            (pl.col("kind") == kind)
            & (pl.col("kafka_topic") == topic)
            & (pl.col("kafka_partition") == partition)
            & pl.col("kafka_offset").is_between(first, last)
        )
        return set(hit.get_column("kafka_offset").to_list())

    def record_gap(self, gap: Gap, *, worker: str) -> None:
        self.gaps.append(gap)

    def frame(self, name: str) -> pl.DataFrame:
        """Everything table ``name`` holds."""
        parts = self.tables.get(name, [])
        if not parts:
            return pl.DataFrame()
        frame = pl.from_arrow(pa.concat_tables(parts))
        assert isinstance(frame, pl.DataFrame)
        return frame
