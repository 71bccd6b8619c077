"""Value objects a decode call takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa

from schemas.kinds import RejectReason

__all__ = ["DecodeLimits", "DecodeResult", "Rejection"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One message that produced no rows, and why.

    Attributes:
        index: position of the message in the input batch.
        reason: stable machine-readable code (quarantine column, metrics label).
        detail: human sentence naming the field and the problem.
        event_id: the message's ``event_id`` when it could be read as a valid id, else None.
    """

    index: int
    reason: RejectReason
    detail: str
    event_id: str | None


@dataclass(frozen=True)
class DecodeResult:
    """Outcome of decoding one micro-batch.

    Every input message is accounted for exactly once: either it produced one or more rows
    (their ``_msg`` column holds its input index) or it has exactly one :class:`Rejection`.

    Attributes:
        rows: silver rows with the event schema's ``row_schema`` (last column ``_msg``, int32),
            in input order.
        rejections: one entry per rejected message, in input order.
        event_ids: per input message, its ``event_id`` or None when it could not be read.
    """

    rows: pa.Table
    rejections: list[Rejection]
    event_ids: list[str | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds a message must respect; defaults mirror :class:`maxlake.settings.Settings`."""

    max_message_bytes: int = 262144
    max_event_age: timedelta = timedelta(days=400)
    max_future_skew: timedelta = timedelta(seconds=300)
    parallel_parse: bool = False
    """Let Arrow parse a large batch's JSON blocks on its thread pool (faster wall time, ~10%
    more CPU); the ingest worker turns it on, the one-core decoder benchmark leaves it off."""
