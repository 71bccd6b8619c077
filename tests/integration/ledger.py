"""An accounting of the lake that does not use maxlake's: Kafka read record by record with
kafka-python, the Delta tables read with deltalake and Polars, compared offset by offset.

The promise checked: every record Kafka holds for the test's topics (committed records only,
``read_committed``) is in exactly one place of the lake — silver (as many rows as the event has
readings, each reading once), quarantine or ``ops/duplicates`` — and the lake holds no offset of
these topics that Kafka does not (unless the caller says the records were removed from Kafka,
see ``expired``). Records the lake says it will never hold (``ops/gaps`` rows, read here with
deltalake: :func:`gap_coords`) may be passed as ``gaps``: such a record must then be in the gap
and not in the lake (an offset in both is a breach). Rows carry the topic id
(``kafka_topic_id``) when the lake keys by lineage; the ledger then only looks at rows of the
topics' current ids (plus rows without an id, when ``legacy_ok``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from kafka import KafkaConsumer, TopicPartition

Coord = tuple[str, int, int]


def kafka_records(
    bootstrap: str, topics: Sequence[str], *, timeout_s: float = 60.0
) -> dict[Coord, bytes | None]:
    """Every committed record of ``topics`` (topic, partition, offset) -> value."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    out: dict[Coord, bytes | None] = {}
    try:
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not parts:
            return out
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topics} to their end in {timeout_s:.0f} s")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    out[(tp.topic, tp.partition, r.offset)] = r.value
    finally:
        consumer.close()
    return out


def readings_of(kind: str, value: bytes | None) -> int:
    """Silver rows a valid record of ``kind`` becomes (one per reading for telemetry)."""
    if kind != "telemetry" or not value:
        return 1
    event = orjson.loads(value)
    return len(event["readings"]) if isinstance(event.get("readings"), list) else 1


def _frame(path: Path, columns: list[str]) -> pl.DataFrame:
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError:
        return pl.DataFrame()
    names = set(table.schema().to_arrow().names)
    frame = pl.from_arrow(
        table.to_pyarrow_dataset().to_table(columns=[c for c in columns if c in names])
    )
    assert isinstance(frame, pl.DataFrame)
    return frame


@dataclass
class Ledger:
    """Offsets checked and every breach of the promise, by kind of breach."""

    records: int = 0
    silver: int = 0
    quarantine: int = 0
    duplicates: int = 0
    missing: list[Coord] = field(default_factory=list)
    twice: list[Coord] = field(default_factory=list)
    wrong_rows: list[Coord] = field(default_factory=list)
    unknown: list[Coord] = field(default_factory=list)
    in_gap: list[Coord] = field(default_factory=list)
    """Records not in the lake that an ``ops/gaps`` row covers (accounted for)."""
    in_gap_and_lake: list[Coord] = field(default_factory=list)
    """Records in the lake that an ``ops/gaps`` row also says it will never hold (a breach)."""

    @property
    def ok(self) -> bool:
        """Every record once or in a gap, nothing else."""
        return not (
            self.missing or self.twice or self.wrong_rows or self.unknown or self.in_gap_and_lake
        )

    def summary(self) -> str:
        """One line per kind of breach with the first offsets."""
        return (
            f"{self.records} records: silver {self.silver}, quarantine {self.quarantine}, "
            f"duplicates {self.duplicates}; missing {len(self.missing)} {self.missing[:5]}, "
            f"twice {len(self.twice)} {self.twice[:5]}, rows wrong {len(self.wrong_rows)} "
            f"{self.wrong_rows[:5]}, not in Kafka {len(self.unknown)} {self.unknown[:5]}, "
            f"in a gap {len(self.in_gap)}, in a gap and in the lake {len(self.in_gap_and_lake)} "
            f"{self.in_gap_and_lake[:5]}"
        )


def reconcile(
    lake_root: Path,
    records: Mapping[Coord, bytes | None],
    *,
    topics: Iterable[str],
    topic_ids: Mapping[str, str] | None = None,
    expired: Iterable[Coord] = (),
    gaps: Iterable[Coord] = (),
) -> Ledger:
    """Compare ``records`` (from :func:`kafka_records`) with the lake under ``lake_root``.

    Args:
        lake_root: the lake.
        records: Kafka's records of ``topics``.
        topics: ``<prefix>.<tenant>.<kind>`` topics to check.
        topic_ids: current topic id per topic; when given, lake rows of other ids are ignored
            (an older incarnation of the topic).
        expired: offsets removed from Kafka after ingest (the lake may hold them).
        gaps: offsets the lake records as never to be held (:func:`gap_coords`).
    """
    topics = set(topics)
    expired = set(expired)
    gaps = set(gaps)
    ledger = Ledger(records=len(records))
    places: Counter[Coord] = Counter()
    silver_rows: dict[Coord, list[int]] = {}
    coords = ["kafka_topic", "kafka_partition", "kafka_offset"]
    for kind in ("telemetry", "machine_event", "inspection"):
        for table, place in (
            (f"silver/{kind}", "silver"),
            (f"quarantine/{kind}", "quarantine"),
            ("ops/duplicates", "duplicates"),
        ):
            frame = _frame(lake_root / table, [*coords, "kafka_topic_id", "reading_index", "kind"])
            if frame.is_empty():
                continue
            if "kind" in frame.columns:
                frame = frame.filter(pl.col("kind") == kind)
            frame = frame.filter(
                pl.col("kafka_topic").is_in(list(topics))
                & pl.col("kafka_topic").str.ends_with(f".{kind}")
            )
            if topic_ids is not None and "kafka_topic_id" in frame.columns:
                current = pl.col("kafka_topic").replace_strict(
                    dict(topic_ids), default=None, return_dtype=pl.String
                )
                frame = frame.filter(pl.col("kafka_topic_id") == current)
            if place == "silver":
                index = (
                    pl.col("reading_index").cast(pl.Int64)
                    if "reading_index" in frame.columns
                    else pl.lit(0, pl.Int64)
                )
                per = frame.with_columns(index.alias("idx")).group_by(coords).agg("idx")
                for t, p, o, idx in per.iter_rows():
                    silver_rows[(t, p, o)] = list(idx)
                    places[(t, p, o)] += 1
                ledger.silver += per.height
            else:
                for t, p, o in frame.select(coords).iter_rows():
                    places[(t, p, o)] += 1
                setattr(ledger, place, getattr(ledger, place) + frame.height)
    for coord, value in records.items():
        n = places.get(coord, 0)
        if n and coord in gaps:
            ledger.in_gap_and_lake.append(coord)
        if n == 0:
            (ledger.in_gap if coord in gaps else ledger.missing).append(coord)
        elif n > 1:
            ledger.twice.append(coord)
        elif coord in silver_rows:
            kind = coord[0].rsplit(".", 1)[-1]
            idx = sorted(silver_rows[coord])
            if idx != list(range(readings_of(kind, value))):
                ledger.wrong_rows.append(coord)
    ledger.unknown = sorted(c for c in places if c not in records and c not in expired)
    for coord, n in places.items():
        if n > 1 and coord not in records:
            ledger.twice.append(coord)
    return ledger


def gap_coords(lake_root: Path, topic: str, topic_id: str) -> tuple[set[Coord], list[str]]:
    """Every offset the ``ops/gaps`` rows of ``topic`` under ``topic_id`` cover, and the
    rows' causes (read with deltalake, not the code under test)."""
    frame = _frame(
        lake_root / "ops/gaps",
        ["topic", "topic_id", "partition", "from_offset", "to_offset", "cause"],
    )
    if frame.is_empty():
        return set(), []
    rows = frame.filter((pl.col("topic") == topic) & (pl.col("topic_id") == topic_id))
    coords = {
        (topic, int(p), o)
        for p, lo, hi in rows.select(["partition", "from_offset", "to_offset"]).iter_rows()
        for o in range(lo, hi + 1)
    }
    return coords, rows["cause"].to_list()
