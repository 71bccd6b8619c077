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

``ops/gaps`` records offsets that were never ingested because Kafka no longer had them when a
worker asked (retention or DeleteRecords ran first): ``from_offset`` .. ``to_offset``
inclusive, with the cause. Both tables are small (one row per event, not per message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lake.delta import DeltaStore, app_id
from lake.tables import RUNS
from schemas.silver import TIMESTAMP

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "GAPS",
    "GAPS_SCHEMA",
    "LINEAGE",
    "LINEAGE_SCHEMA",
    "Gap",
    "Lineages",
    "gap_records",
    "lineage_records",
    "record_gap",
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
"""``from_offset``..``to_offset`` inclusive; ``cause`` is ``expired_before_ingest`` (below the
log start: retention or DeleteRecords) or ``beyond_log_end`` (the log was truncated)."""


@dataclass(frozen=True)
class Gap:
    """Offsets of one partition that Kafka no longer had when a worker asked for them."""

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


def gap_records(store: DeltaStore) -> pl.DataFrame:
    """Every recorded gap (a gap seen by two workers is recorded once per worker)."""
    import polars as pl  # noqa: PLC0415 - lazy: not on an ingest worker's path (~35 MiB)

    frame = store.read_frame(GAPS)
    if frame is None:
        return pl.from_arrow(GAPS_SCHEMA.empty_table())  # type: ignore[return-value]
    return frame.sort("detected_at")


def record_gap(store: DeltaStore, gap: Gap, *, worker: str) -> None:
    """Append one ``ops/gaps`` row."""
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
    store.append(GAPS, pa.Table.from_pylist([row], schema=GAPS_SCHEMA), partition_by=None, txns={})
    logger.warning(
        "%s[%d]: offsets %d..%d (%d offsets; transaction markers or aborted records among them "
        "hold no event) were gone from Kafka before ingest (%s); recorded in %s",
        gap.topic,
        gap.partition,
        gap.from_offset,
        gap.to_offset,
        gap.count,
        gap.cause,
        GAPS,
    )


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
