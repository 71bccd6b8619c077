"""Content hashes of event payloads: what tells a resend from a different event under a reused id.

Dedupe decides by ``event_id``. A resend of the same event carries the same payload, but a
producer that reuses ids (a counter reset after a PLC restart) sends a different event under an
id the lake has seen. The pipeline therefore keeps, beside each id's first sighting, a 64-bit
hash of that copy's canonical payload, and calls a later copy a duplicate only when its hash is
the same; otherwise it is an ``event_id_conflict`` (quarantined with its raw bytes).

The canonical payload is the message's bytes without the envelope's ``sent_time`` member (the
first ``"sent_time": "<text>"`` or ``"sent_time": null`` and the comma after it): a client that
sends the event again stamps a new ``sent_time``, and that alone does not make it another
event. Any other difference (a value, a field, key order, whitespace) does. The hash is BLAKE2b
with an 8-byte digest (stdlib, stable across versions, so the values stored in silver's
``content_hash`` compare across releases), as a signed 64-bit integer; 0 is never produced and
means "unknown" (rows written before content hashes existed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from hashlib import blake2b

import numpy as np

__all__ = [
    "EVENT_ID_CONFLICT",
    "UNKNOWN",
    "canonical_payload",
    "conflict_detail",
    "content_hash",
    "content_hashes",
    "kept_digests",
]

EVENT_ID_CONFLICT = "event_id_conflict"
"""Quarantine reason (stage ``dedupe``) of a message whose ``event_id`` was first seen with
other content."""

UNKNOWN = 0
"""The hash of a copy whose content is not known (a silver row written before hashes)."""

_SENT = b'"sent_time"'
_SENT_MEMBER = re.compile(rb'"sent_time"\s*:\s*(?:"[^"\\]*"|null)\s*,?\s*')


def canonical_payload(raw: bytes) -> bytes:
    """``raw`` without its first ``sent_time`` member (see the module docstring)."""
    at = raw.find(_SENT)
    if at < 0:
        return raw
    member = _SENT_MEMBER.match(raw, at)
    if member is None:
        return raw
    return raw[:at] + raw[member.end() :]


def content_hash(raw: bytes) -> int:
    """The signed 64-bit BLAKE2b hash of :func:`canonical_payload`; never :data:`UNKNOWN`."""
    value = int.from_bytes(
        blake2b(canonical_payload(raw), digest_size=8).digest(), "little", signed=True
    )
    return value or 1


def content_hashes(values: Iterable[bytes | None]) -> np.ndarray:
    """:func:`content_hash` of each payload, int64; :data:`UNKNOWN` for a missing one."""
    return np.fromiter((content_hash(v) if v is not None else UNKNOWN for v in values), np.int64)


def kept_digests(values: Sequence[bytes | None], keep: np.ndarray) -> np.ndarray:
    """Per message of a batch, the content hash of its payload (int64); :data:`UNKNOWN` where
    ``keep`` is False (rejected messages take no part in dedupe)."""
    out = np.zeros(len(values), np.int64)
    for i in np.flatnonzero(keep).tolist():
        value = values[i]
        if value is not None:
            out[i] = content_hash(value)
    return out


def conflict_detail(event_id: str | None, first: tuple[str, int, int]) -> str:
    """The quarantine detail of an ``event_id_conflict``; ``first``: topic, partition and
    offset of the first copy."""
    topic, partition, offset = first
    return (
        f"event_id {event_id!r} was first seen with other content at {topic}[{partition}]@"
        f"{offset}: a producer reused the id (a counter reset?) or changed the event; this copy "
        "is kept here, the first one stays in silver"
    )
