"""Independent exactly-once accounting: every Kafka record against the Delta tables, one by one.

Deliberately built from the outside: it imports nothing of maxlake. It reads every committed
record of the topics with kafka-python (``read_committed``, from the log start to the end) and
the lake's Delta tables by path with deltalake and Polars, then checks each offset:

* **silver**: exactly the rows the payload yields (one per reading of a telemetry snapshot, one
  for any other event), no quarantine or duplicate row; or
* **quarantine**: exactly one row and nothing else; or
* **duplicate**: exactly one ``ops/duplicates`` row and nothing else.

An offset in none of them is **lost**; an offset with more than that (two copies of its rows,
rows in two tables) is **duplicated**, as is an ``event_id`` whose rows sit at two offsets of
silver; lake rows at offsets Kafka does not hold are **phantom**. Used by ``bench/soak.py`` and by
the reliability tests; the lake layout it relies on is the documented one
(``<root>/silver/<kind>``, ``<root>/quarantine/<kind>``, ``<root>/ops/duplicates``, columns
``kafka_topic``, ``kafka_partition``, ``kafka_offset``, ``event_id``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from kafka import KafkaConsumer, TopicPartition

__all__ = ["Audit", "audit", "read_kafka", "read_lake"]

_KEY = ["kafka_topic", "kafka_partition", "kafka_offset"]


@dataclass
class Audit:
    """The verdict of :func:`audit`; ``ok`` when nothing is lost, duplicated or phantom."""

    records: int = 0
    silver_offsets: int = 0
    quarantined: int = 0
    duplicates: int = 0
    lost: list[tuple[str, int, int]] = field(default_factory=list)
    duplicated: list[tuple[str, int, int]] = field(default_factory=list)
    duplicated_event_ids: list[str] = field(default_factory=list)
    phantom: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every record in exactly one place, each as many times as it should be."""
        return not (self.lost or self.duplicated or self.duplicated_event_ids or self.phantom)

    def summary(self) -> str:
        """One line of counts, then the first offenders."""
        line = (
            f"{self.records} records: {self.silver_offsets} in silver, {self.quarantined} "
            f"quarantined, {self.duplicates} duplicates; lost {len(self.lost)}, duplicated "
            f"{len(self.duplicated)} offsets and {len(self.duplicated_event_ids)} event ids, "
            f"phantom {len(self.phantom)}"
        )
        for name in ("lost", "duplicated", "duplicated_event_ids", "phantom"):
            items = getattr(self, name)
            if items:
                line += f"\n  {name}: {items[:10]}"
        return line


def read_kafka(
    bootstrap: str, topics: list[str], *, security: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Every committed record of ``topics``: topic, partition, offset, expected silver rows."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=10_000,
        max_partition_fetch_bytes=8 << 20,
        **(security or {}),
    )
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        remaining = {tp for tp in parts if consumer.position(tp) < ends[tp]}
        rows: dict[str, list[Any]] = {"topic": [], "partition": [], "offset": [], "rows": []}
        while remaining:
            batches = consumer.poll(timeout_ms=5000, max_records=50_000)
            if not batches and all(consumer.position(tp) >= ends[tp] for tp in remaining):
                break
            for tp, records in batches.items():
                for r in records:
                    rows["topic"].append(tp.topic)
                    rows["partition"].append(tp.partition)
                    rows["offset"].append(r.offset)
                    rows["rows"].append(_expected_rows(r.value))
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
    finally:
        consumer.close()
    return pl.DataFrame(
        rows,
        schema={"topic": pl.Utf8, "partition": pl.Int64, "offset": pl.Int64, "rows": pl.Int64},
    )


def _expected_rows(value: bytes | None) -> int:
    """Silver rows the payload becomes if it is valid: one per reading, else one."""
    try:
        event = json.loads(value or b"")
    except ValueError:
        return 1
    if isinstance(event, dict) and isinstance(event.get("readings"), list):
        return max(len(event["readings"]), 1)
    return 1


def _table(
    path: Path | str, columns: list[str], storage_options: dict[str, str] | None = None
) -> pl.DataFrame:
    try:
        table = DeltaTable(str(path), storage_options=storage_options)
    except TableNotFoundError:
        return pl.DataFrame(
            schema={
                c: (pl.Int64 if c in ("kafka_partition", "kafka_offset") else pl.Utf8)
                for c in columns
            }
        )
    frame = pl.from_arrow(table.to_pyarrow_table(columns=columns))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col("kafka_partition", "kafka_offset").cast(pl.Int64))


def read_lake(
    lake_root: Path | str,
    storage_options: dict[str, str] | None = None,
    *,
    kinds: Sequence[str] = (),
) -> dict[str, pl.DataFrame]:
    """Coordinates (and event ids) of every silver, quarantine and duplicates row.

    ``lake_root``: a local folder (its tables are found by listing it), or an object-store URI
    (``s3://bucket/lake``) with its ``storage_options`` and the event ``kinds`` to read (an
    object store has no folders to list).
    """
    if kinds:
        root = str(lake_root).rstrip("/")
        silver_paths: list[Path | str] = [f"{root}/silver/{kind}" for kind in kinds]
        quarantine_paths: list[Path | str] = [f"{root}/quarantine/{kind}" for kind in kinds]
        duplicates: Path | str = f"{root}/ops/duplicates"
    else:
        local = Path(lake_root)
        silver_paths = [p for p in sorted((local / "silver").glob("*")) if p.is_dir()]
        quarantine_paths = [p for p in sorted((local / "quarantine").glob("*")) if p.is_dir()]
        duplicates = local / "ops" / "duplicates"
    options = storage_options
    silver = [_table(p, [*_KEY, "event_id"], options) for p in silver_paths]
    quarantine = [_table(p, _KEY, options) for p in quarantine_paths]
    empty_silver = _table(Path("/nonexistent/silver"), [*_KEY, "event_id"])
    empty_key = _table(Path("/nonexistent/quarantine"), _KEY)
    return {
        "silver": pl.concat(silver) if silver else empty_silver,
        "quarantine": pl.concat(quarantine) if quarantine else empty_key,
        "duplicates": _table(duplicates, _KEY, options),
    }


def audit(kafka: pl.DataFrame, lake: dict[str, pl.DataFrame]) -> Audit:
    """Compare ``read_kafka`` with ``read_lake`` record by record (see the module docstring)."""
    key = ["topic", "partition", "offset"]

    def counts(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return (
            frame.rename(dict(zip(_KEY, key, strict=True))).group_by(key).agg(pl.len().alias(name))
        )

    silver = counts(lake["silver"], "n_silver")
    quarantine = counts(lake["quarantine"], "n_quarantine")
    duplicates = counts(lake["duplicates"], "n_duplicates")
    joined = kafka
    for frame in (silver, quarantine, duplicates):
        joined = joined.join(frame, on=key, how="left")
    joined = joined.with_columns(pl.col("n_silver", "n_quarantine", "n_duplicates").fill_null(0))
    places = (
        (pl.col("n_silver") > 0).cast(pl.Int32)
        + (pl.col("n_quarantine") > 0).cast(pl.Int32)
        + (pl.col("n_duplicates") > 0).cast(pl.Int32)
    )
    joined = joined.with_columns(places.alias("places"))
    lost = joined.filter(pl.col("places") == 0)
    exact = (
        (pl.col("places") == 1)
        & ((pl.col("n_silver") == 0) | (pl.col("n_silver") == pl.col("rows")))
        & (pl.col("n_quarantine") <= 1)
        & (pl.col("n_duplicates") <= 1)
    )
    twice = joined.filter((pl.col("places") > 0) & ~exact)
    known = kafka.select(key)
    phantom = pl.concat([silver.select(key), quarantine.select(key), duplicates.select(key)]).join(
        known, on=key, how="anti"
    )
    by_event = (
        lake["silver"]
        .filter(pl.col("event_id").is_not_null())
        .group_by("event_id")
        .agg(pl.struct(_KEY).n_unique().alias("offsets"))
        .filter(pl.col("offsets") > 1)
    )

    def coords(frame: pl.DataFrame) -> list[tuple[str, int, int]]:
        return [(t, int(p), int(o)) for t, p, o in frame.select(key).sort(key).iter_rows()]

    return Audit(
        records=kafka.height,
        silver_offsets=joined.filter(pl.col("n_silver") > 0).height,
        quarantined=joined.filter(pl.col("n_quarantine") > 0).height,
        duplicates=joined.filter(pl.col("n_duplicates") > 0).height,
        lost=coords(lost),
        duplicated=coords(twice),
        duplicated_event_ids=sorted(by_event["event_id"].to_list()),
        phantom=coords(phantom),
    )
