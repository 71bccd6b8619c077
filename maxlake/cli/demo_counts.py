"""The demo report's counts: this run's messages in silver, quarantine and duplicates.

A run's messages are those of the demo's topics at or beyond the end offsets its partitions had
when it started (``since``); each table is read once (:func:`lake_frames`) and counted both in
whole and for this run (:func:`counts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import polars as pl

from lake import DUPLICATES, DeltaStore, quarantine_table, silver_table
from schemas import EventKind

__all__ = ["LakeFrames", "counts", "kind_counts", "lake_frames", "quarantine_reasons"]

_COORDS = ["kafka_topic", "kafka_partition", "kafka_offset"]


LakeFrames = dict[str, pl.DataFrame | None]
"""One kind's Kafka coordinates in ``silver``, ``quarantine`` and ``duplicates`` (read once)."""


def lake_frames(store: DeltaStore, kind: EventKind) -> LakeFrames:
    """The Kafka coordinates of ``kind``'s silver rows, quarantined and duplicate messages."""
    duplicates = store.read_frame(DUPLICATES, columns=["kind", *_COORDS])
    return {
        "silver": store.read_frame(silver_table(kind), columns=_COORDS),
        "quarantine": store.read_frame(quarantine_table(kind), columns=_COORDS),
        "duplicates": None
        if duplicates is None
        else duplicates.filter(pl.col("kind") == kind.value).select(_COORDS),
    }


def kind_counts(
    store: DeltaStore, kind: EventKind, since: Mapping[tuple[str, int], int] | None = None
) -> Counter[str]:
    """Silver events (distinct Kafka coordinates) and rows, quarantined and duplicate messages;
    with ``since``, only messages of its topics at or beyond its offset of their partition (0 if
    absent): another topic's (a tenant onboarded by hand, which the demo does not simulate) are
    not this run's."""
    return counts(lake_frames(store, kind), since)


def counts(frames: LakeFrames, since: Mapping[tuple[str, int], int] | None) -> Counter[str]:
    """:func:`kind_counts` of frames read once (:func:`lake_frames`)."""
    counts = Counter[str]()
    silver = _since(frames["silver"], since)
    if silver is not None:
        counts["silver rows"] = silver.height
        counts["silver events"] = silver.unique().height
    quarantined = _since(frames["quarantine"], since)
    counts["quarantined"] = 0 if quarantined is None else quarantined.height
    duplicates = _since(frames["duplicates"], since)
    if duplicates is not None:
        counts["duplicates"] = duplicates.height
    return counts


def _read(
    store: DeltaStore, name: str, columns: list[str], since: Mapping[tuple[str, int], int] | None
) -> pl.DataFrame | None:
    frame = store.read_frame(name, columns=list(dict.fromkeys([*columns, *_COORDS])))
    return _since(frame, since)


def _since(
    frame: pl.DataFrame | None, since: Mapping[tuple[str, int], int] | None
) -> pl.DataFrame | None:
    """Rows of ``frame`` at or beyond ``since`` (all rows when None)."""
    if frame is None or since is None:
        return frame
    starts = pl.DataFrame(
        [(t, p, o) for (t, p), o in since.items()],
        schema={"kafka_topic": pl.String, "kafka_partition": pl.Int32, "_since": pl.Int64},
        orient="row",
    )
    topics = sorted({topic for topic, _ in since})
    return (
        frame.filter(pl.col("kafka_topic").is_in(topics))
        .join(starts, on=["kafka_topic", "kafka_partition"], how="left")
        .filter(pl.col("kafka_offset") >= pl.col("_since").fill_null(0))
        .drop("_since")
    )


def quarantine_reasons(store: DeltaStore, since: Mapping[tuple[str, int], int]) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for kind in EventKind:
        frame = _read(store, quarantine_table(kind), ["reasons"], since)
        if frame is not None:
            for rs in frame["reasons"].to_list():
                reasons.update(rs)
    return reasons
