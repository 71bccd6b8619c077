"""``ops/replays``: the record of quarantined messages that were validated again.

``maxlake quarantine replay`` re-runs quarantined messages through the decoder and the current
suite. Each attempt leaves one row here per message, keyed by the message's Kafka coordinates
(the quarantine row stays where it is, as evidence). Outcome ``replayed`` means the message's
rows are now in ``silver/<kind>`` under their original coordinates; for the accounting
invariant such an offset counts as silver, not quarantine. ``duplicate`` means its event was
already in silver; ``still_invalid`` means it failed again (with the new reasons). Messages
with a ``replayed`` or ``duplicate`` row are never replayed again.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from lake.delta import DeltaStore
from schemas.silver import TIMESTAMP

__all__ = ["FINAL_OUTCOMES", "OUTCOMES", "REPLAYS", "REPLAYS_SCHEMA", "replay_records"]

REPLAYS = "ops/replays"
OUTCOMES = ("replayed", "duplicate", "still_invalid")
FINAL_OUTCOMES = ("replayed", "duplicate")
"""Outcomes after which a message is not replayed again."""


REPLAYS_SCHEMA = pa.schema(
    [
        pa.field("replay_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("silver_rows", pa.int64(), nullable=False),
        pa.field("suite_version", pa.string()),
        pa.field("replayed_at", TIMESTAMP, nullable=False),
        pa.field("date", pa.date32(), nullable=False),
    ]
)

_EMPTY: dict[str, pl.DataType | type[pl.DataType]] = {
    "kafka_topic": pl.String,
    "kafka_partition": pl.Int32,
    "kafka_offset": pl.Int64,
    "outcome": pl.String,
    "replayed_at": pl.Datetime("us", "UTC"),
}


def replay_records(
    store: DeltaStore, kind: str, *, outcomes: tuple[str, ...] = FINAL_OUTCOMES
) -> pl.DataFrame:
    """Coordinates, outcome and time of the replays of ``kind`` with one of ``outcomes``."""
    flt = (ds.field("kind") == kind) & ds.field("outcome").isin(list(outcomes))
    frame = store.read_frame(REPLAYS, columns=list(_EMPTY), filter=flt)
    return pl.DataFrame(schema=_EMPTY) if frame is None else frame
