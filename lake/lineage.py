"""Topic lineages and offset gaps: what the lake knows about Kafka beyond the rows.

A Kafka topic deleted and created again under the same name gets a new topic id and starts its
offsets again at 0. The lake therefore keys offsets by the topic id (its *lineage*): rows carry
``kafka_topic_id`` and each commit's app transactions name it (:func:`lake.delta.app_id`). Each
lineage a worker meets is recorded once in ``ops/lineage``:

- ``first_seen``: the first incarnation of a topic in this lake;
- ``migrated``: the first topic id met in a lake written before lineages existed (rows without
  ``kafka_topic_id``, app ids ``<topic>/<partition>``); that id adopts those rows and offsets;
- ``recreated``: a new id for a topic the lake already knew (``previous_topic_id`` names the
  older one). Its offsets start again; nothing of the older incarnation masks them.

``ops/gaps`` records offsets of a lineage the lake will never hold: ``from_offset`` ..
``to_offset`` inclusive, with the cause (:data:`GAP_CAUSES`): Kafka no longer had them when a
worker asked (retention or DeleteRecords ran first, or the log was cut short), or the topic was
deleted and created again under a worker, which discarded what it could not tell apart and
never reads the old incarnation again. Both tables are small (one row per event, not per
message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from lake.delta import DeltaStore, app_id
from lake.tables import DUPLICATES, RUNS, quarantine_table, silver_table
from schemas.silver import TIMESTAMP

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "BEYOND_LOG_END",
    "DELETED_AT_CORRUPT_BATCH",
    "DISCARDED_TOPIC_RECREATED",
    "EXPIRED_BEFORE_INGEST",
    "GAPS",
    "GAPS_SCHEMA",
    "GAP_CAUSES",
    "LINEAGE",
    "LINEAGE_SCHEMA",
    "Gap",
    "Lineages",
    "gap_records",
    "lineage_records",
    "merge_spans",
    "record_gap",
    "recreation_gaps",
]

logger = logging.getLogger(__name__)

LINEAGE = "ops/lineage"
GAPS = "ops/gaps"

LINEAGE_SCHEMA = pa.schema(
    [
        pa.field("topic", pa.string(), nullable=False),
        pa.field("topic_id", pa.string(), nullable=False),
        pa.field("previous_topic_id", pa.string()),
        pa.field("cause", pa.string(), nullable=False),
        pa.field("worker", pa.string(), nullable=False),
        pa.field("detected_at", TIMESTAMP, nullable=False),
        pa.field("date", pa.date32(), nullable=False),
    ]
)
"""``cause`` is ``first_seen``, ``migrated`` or ``recreated``."""

GAPS_SCHEMA = pa.schema(
    [
        pa.field("topic", pa.string(), nullable=False),
        pa.field("topic_id", pa.string()),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("from_offset", pa.int64(), nullable=False),
        pa.field("to_offset", pa.int64(), nullable=False),
        pa.field("cause", pa.string(), nullable=False),
        pa.field("worker", pa.string(), nullable=False),
        pa.field("detected_at", TIMESTAMP, nullable=False),
        pa.field("date", pa.date32(), nullable=False),
    ]
)
"""``from_offset``..``to_offset`` inclusive; ``cause`` is one of :data:`GAP_CAUSES`."""

EXPIRED_BEFORE_INGEST = "expired_before_ingest"
BEYOND_LOG_END = "beyond_log_end"
DELETED_AT_CORRUPT_BATCH = "deleted_at_corrupt_batch"
DISCARDED_TOPIC_RECREATED = "discarded_topic_recreated"

GAP_CAUSES: dict[str, str] = {
    EXPIRED_BEFORE_INGEST: "expired before ingest: below the log start when a worker asked "
    "(retention or DeleteRecords ran first)",
    DELETED_AT_CORRUPT_BATCH: "deleted at a corrupt batch: below the log start when a worker "
    "asked, while it held the partition at a corrupt record batch in this range (the batch was "
    "lost and its records deleted, `maxlake topics delete-records`)",
    BEYOND_LOG_END: "beyond the log end: the log was cut short (an unclean leader election) "
    "after the group committed past its new end",
    DISCARDED_TOPIC_RECREATED: "discarded, topic recreated: the topic was deleted and created "
    "again under a worker; the old incarnation's records from here on are not in the lake "
    "(fetched after the worker's last check of the topic id, so possibly the new "
    "incarnation's, and discarded; or never fetched, or lost with a worker killed before "
    "writing them) and Kafka deleted them with the topic. The range is what the worker knew "
    "the partition to hold (the last fetch response's high watermark, of either incarnation): "
    "an upper bound, the old incarnation may have ended before it",
}
"""Each ``ops/gaps`` cause and what it means, in the words ``lake verify`` and the alerts use."""


@dataclass(frozen=True)
class Gap:
    """Offsets of one partition of one lineage the lake will never hold, and why (``cause``,
    one of :data:`GAP_CAUSES`)."""

    topic: str
    topic_id: str | None
    partition: int
    from_offset: int
    to_offset: int
    cause: str

    @property
    def count(self) -> int:
        """Offsets in the gap."""
        return self.to_offset - self.from_offset + 1


def lineage_records(store: DeltaStore) -> pl.DataFrame:
    """Every recorded lineage, oldest first (one row per topic id)."""
    import polars as pl  # noqa: PLC0415 - lazy: not on an ingest worker's path (~35 MiB)

    frame = store.read_frame(LINEAGE)
    if frame is None:
        return pl.from_arrow(LINEAGE_SCHEMA.empty_table())  # type: ignore[return-value]
    return frame.sort("detected_at").unique(
        ["topic", "topic_id"], keep="first", maintain_order=True
    )


K = TypeVar("K", bound=Hashable)


def merge_spans(spans: Iterable[tuple[K, int, int]]) -> dict[K, list[tuple[int, int]]]:
    """Inclusive offset ranges ``(key, from, to)`` merged per key: overlapping or adjacent
    ranges become one, so an offset counts once however many ``ops/gaps`` rows hold it (two
    workers record the same loss with different bounds). Each key's ranges come sorted.

    The one merge of recorded gaps: ``lake verify`` (:mod:`lake.accounting`), ``maxlake
    status`` and the metrics (:func:`lake.ops_status.offset_events`) count with it.
    """
    by_key: dict[K, list[tuple[int, int]]] = {}
    for key, lo, hi in spans:
        by_key.setdefault(key, []).append((int(lo), int(hi)))
    out: dict[K, list[tuple[int, int]]] = {}
    for key, ranges in by_key.items():
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        out[key] = merged
    return out


def gap_records(store: DeltaStore) -> pl.DataFrame:
    """Every recorded gap (a gap seen by two workers is recorded once per worker)."""
    import polars as pl  # noqa: PLC0415 - lazy: not on an ingest worker's path (~35 MiB)

    frame = store.read_frame(GAPS)
    if frame is None:
        return pl.from_arrow(GAPS_SCHEMA.empty_table())  # type: ignore[return-value]
    return frame.sort("detected_at")


def record_gap(store: DeltaStore, gap: Gap, *, worker: str) -> None:
    """Append one ``ops/gaps`` row.

    A ``discarded_topic_recreated`` gap is written once: its commit carries the app
    transaction ``discarded:<topic>@<topic id>/<partition>:<from_offset>`` (version
    ``to_offset``), and a gap whose transaction is already stored (a commit reported failed
    that landed and was retried, or two workers recording the same range) is not appended
    again.
    """
    txns: dict[str, int] = {}
    if gap.cause == DISCARDED_TOPIC_RECREATED and gap.topic_id is not None:
        key = f"discarded:{app_id(gap.topic, gap.partition, gap.topic_id)}:{gap.from_offset}"
        if store.txn_versions(GAPS, [key])[key] >= gap.to_offset:
            return
        txns[key] = gap.to_offset
    now = datetime.now(UTC)
    row = {
        "topic": gap.topic,
        "topic_id": gap.topic_id,
        "partition": gap.partition,
        "from_offset": gap.from_offset,
        "to_offset": gap.to_offset,
        "cause": gap.cause,
        "worker": worker,
        "detected_at": now,
        "date": now.date(),
    }
    store.append(
        GAPS, pa.Table.from_pylist([row], schema=GAPS_SCHEMA), partition_by=None, txns=txns
    )
    if gap.cause == DISCARDED_TOPIC_RECREATED:
        logger.warning(
            "%s[%d] (topic id %s): offsets %d..%d (%d offsets) of the old incarnation will "
            "never be in the lake: the topic was deleted and created again (%s); recorded in %s",
            gap.topic,
            gap.partition,
            gap.topic_id,
            gap.from_offset,
            gap.to_offset,
            gap.count,
            gap.cause,
            GAPS,
        )
        return
    logger.warning(
        "%s[%d]: offsets %d..%d (%d offsets; any transaction markers or aborted records among them "
        "hold no event) were gone from Kafka before ingest (%s); recorded in %s",
        gap.topic,
        gap.partition,
        gap.from_offset,
        gap.to_offset,
        gap.count,
        gap.cause,
        GAPS,
    )


def recreation_gaps(
    store: DeltaStore,
    topic_ids: Mapping[str, str | None],
    partitions: Sequence[tuple[str, int]],
) -> list[Gap]:
    """Offsets of superseded lineages of the topics of ``partitions`` (ids other than
    ``topic_ids[topic]``, the current one) that neither the lake nor ``ops/gaps`` holds, below
    a ``discarded_topic_recreated`` gap of theirs: one gap per missing range (not recorded
    here). ``ops/gaps`` is read once for all the topics.

    A worker records that gap when it finds the topic's new id, before it writes the old
    incarnation's records it still holds (at most the batches in hand). Killed before they
    are written, those records are gone (Kafka deleted them with the topic) and no later read
    of Kafka can tell: the next worker to position the partition records them from this.
    The partition's previous owner must be done with it (a rebalance waits for its batches;
    a killed worker writes nothing more).
    """
    topics = sorted({topic for topic, _ in partitions})
    if not topics or not store.exists(GAPS):
        return []
    gaps = store.read(
        GAPS,
        columns=["topic", "topic_id", "partition", "from_offset", "to_offset", "cause"],
        filter=pc.field("topic").isin(topics),
    )
    if gaps is None or gaps.num_rows == 0:
        return []
    rows = list(zip(*(gaps[c].to_pylist() for c in gaps.column_names), strict=True))
    out: list[Gap] = []
    for topic in topics:
        wanted = {p for t, p in partitions if t == topic}
        current = topic_ids.get(topic)
        out.extend(_topic_gaps(store, topic, current, wanted, [r for r in rows if r[0] == topic]))
    return out


def _topic_gaps(
    store: DeltaStore,
    topic: str,
    topic_id: str | None,
    wanted: set[int],
    rows: list[tuple[str, str | None, int, int, int, str]],
) -> list[Gap]:
    """:func:`recreation_gaps` of one topic from its ``ops/gaps`` rows."""
    spans: dict[tuple[str, int], list[tuple[int, int]]] = {}
    closed: set[tuple[str, int]] = set()
    for _, tid, partition, lo, hi, cause in rows:
        if tid is None or tid == topic_id or partition not in wanted:
            continue
        spans.setdefault((tid, partition), []).append((lo, hi))
        if cause == DISCARDED_TOPIC_RECREATED:
            closed.add((tid, partition))
    if not closed:
        return []
    migrated = {t for t, c in _lineages_of(store, topic).items() if c == "migrated"}
    keys = {key: app_id(topic, key[1], key[0]) for key in closed}
    legacy = {key: app_id(topic, key[1]) for key in closed if key[0] in migrated}
    held = store.txn_versions(RUNS, [*keys.values(), *legacy.values()])
    out: list[Gap] = []
    for key in sorted(closed):
        tid, partition = key
        start = max(held[keys[key]], held[legacy[key]] if key in legacy else -1) + 1
        holes = _uncovered(start, sorted(spans[key]))
        if holes:
            present = _offsets_held(store, topic, tid, partition, holes[0][0], holes[-1][1])
            out.extend(
                Gap(topic, tid, partition, lo, hi, DISCARDED_TOPIC_RECREATED)
                for lo, hi in _without(holes, present)
            )
    return out


def _uncovered(start: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges from ``start`` up to the last of ``spans`` (sorted) that no span covers."""
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    return out


def _offsets_held(
    store: DeltaStore, topic: str, topic_id: str, partition: int, first: int, last: int
) -> set[int]:
    """Offsets ``first``..``last`` of one lineage's partition that a table of the lake holds
    (a batch whose runs row a killed worker never wrote may have committed some tables)."""
    kind = topic.rsplit(".", 1)[-1]
    where = (
        (pc.field("kafka_topic") == topic)
        & (pc.field("kafka_topic_id") == topic_id)
        & (pc.field("kafka_partition") == partition)
        & (pc.field("kafka_offset") >= first)
        & (pc.field("kafka_offset") <= last)
    )
    held: set[int] = set()
    for name in (silver_table(kind), quarantine_table(kind), DUPLICATES):
        schema = store.schema(name)
        if schema is None or "kafka_topic_id" not in schema.names:
            continue
        rows = store.read(name, columns=["kafka_offset"], filter=where)
        if rows is not None:
            held.update(rows["kafka_offset"].to_pylist())
    return held


def _without(ranges: list[tuple[int, int]], held: set[int]) -> list[tuple[int, int]]:
    """``ranges`` split around the offsets of ``held``."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        start = lo
        for offset in sorted(o for o in held if lo <= o <= hi):
            if offset > start:
                out.append((start, offset - 1))
            start = offset + 1
        if start <= hi:
            out.append((start, hi))
    return out


class Lineages:
    """The lineage of each (topic, topic id) this process met; records new ones.

    Safe to share between threads. A lineage, once recorded, never changes, so answers are
    cached for the life of the process.
    """

    def __init__(self, store: DeltaStore) -> None:
        self.store = store.sibling()
        self._adopts_legacy: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()

    def adopts_legacy(
        self, topic: str, topic_id: str | None, partitions: Sequence[int], *, worker: str
    ) -> bool:
        """Whether ``topic_id`` owns the rows and offsets written before lineages existed.

        Records the lineage in ``ops/lineage`` when it is new (see the module docstring).
        ``partitions`` are the topic's partitions to look for legacy offsets in.
        """
        if topic_id is None:
            return True
        key = (topic, topic_id)
        with self._lock:
            known = self._adopts_legacy.get(key)
            if known is not None:
                return known
            adopts = self._resolve(topic, topic_id, partitions, worker)
            self._adopts_legacy[key] = adopts
            return adopts

    def _resolve(self, topic: str, topic_id: str, partitions: Sequence[int], worker: str) -> bool:
        known = _lineages_of(self.store, topic)
        if topic_id in known:
            return known[topic_id] == "migrated"
        if known:
            previous: str | None = list(known)[-1]
            cause = "recreated"
            logger.warning(
                "topic %s was deleted and created again (topic id %s, was %s): a new lineage, "
                "its offsets start again; recorded in %s",
                topic,
                topic_id,
                previous,
                LINEAGE,
            )
        else:
            previous = None
            legacy = self.store.txn_versions(RUNS, [app_id(topic, p) for p in partitions])
            cause = "migrated" if any(v >= 0 for v in legacy.values()) else "first_seen"
        now = datetime.now(UTC)
        row = {
            "topic": topic,
            "topic_id": topic_id,
            "previous_topic_id": previous,
            "cause": cause,
            "worker": worker,
            "detected_at": now,
            "date": now.date(),
        }
        self.store.append(
            LINEAGE, pa.Table.from_pylist([row], schema=LINEAGE_SCHEMA), partition_by=None, txns={}
        )
        # Two workers may record the same new lineage at once; the first row counts.
        return _lineages_of(self.store, topic)[topic_id] == "migrated"


def _lineages_of(store: DeltaStore, topic: str) -> dict[str, str]:
    """Topic id -> cause of each lineage recorded for ``topic``, in the order they were first
    detected (the first row of an id counts): :func:`lineage_records` of one topic, read with
    Arrow alone."""
    rows = store.read(
        LINEAGE, columns=["topic_id", "cause", "detected_at"], filter=pc.field("topic") == topic
    )
    if rows is None:
        return {}
    rows = rows.sort_by("detected_at")
    known: dict[str, str] = {}
    for tid, cause in zip(rows["topic_id"].to_pylist(), rows["cause"].to_pylist(), strict=True):
        known.setdefault(tid, cause)
    return known
