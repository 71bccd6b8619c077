"""Content hashes of event payloads: what tells a resend from a different event under a reused id.

Dedupe decides by ``event_id``. A resend of the same event carries the same payload, but a
producer that reuses ids (a counter reset after a PLC restart) sends a different event under an
id the lake has seen. The pipeline therefore keeps, beside each id's first sighting, a 64-bit
hash of that copy's canonical payload, and calls a later copy a duplicate only when its hash is
the same; otherwise it is an ``event_id_conflict`` (quarantined with its raw bytes).

The canonical payload is the message's bytes without the envelope's ``sent_time`` member (the
first ``"sent_time": "<text>"`` or ``"sent_time": null`` and the comma after it, or the comma
before it when it is the last member): a client that
sends the event again stamps a new ``sent_time``, and that alone does not make it another
event. Any other difference (a value, a field, key order, whitespace) does. The hash is XXH3-64
(xxHash 0.8, whose output is fixed by its specification since that release, so the values stored
in silver's ``content_hash`` compare across releases and machines), its canonical big-endian
digest read as a signed 64-bit integer; 0 is never produced and means "unknown" (rows written
before content hashes existed). XXH3 is not a cryptographic hash: it tells a resend from another
event of the same producer, it does not resist a producer that crafts collisions (a producer can
always drop its own events instead). Until 2026-12-01 the hash was BLAKE2b-64 (3x the CPU per
event); a lake that holds hashes of that kind reads them as those of other content, so a resend
of an event stored by such a build is quarantined as an ``event_id_conflict``, never lost.

:func:`content_hashes` runs in ``maxlake_native`` (the compiled module of ``native/``, the same
cut and digest in one loop, GIL released) when it is importable, else in the Python loop below;
both give the same values (``tests/unit/streams/test_event_id_conflict.py`` checks them against each
other).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import compress
from typing import Any, cast

import numpy as np
import xxhash

_NativeHashes = Callable[[Sequence[bytes]], Any]
_native_hashes: _NativeHashes | None
try:
    from maxlake_native import content_hashes as _native_hashes
except ImportError:  # the decoder logs that the native module is missing (schemas._native)
    _native_hashes = None

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
_BLANK = (b" ", b"\t", b"\r", b"\n")


def canonical_payload(raw: bytes) -> bytes:
    """``raw`` without its first ``sent_time`` member and the comma after it, or before it when
    it is the last member (see the module docstring); ``raw`` itself when it has none in the
    form ``"sent_time": "<text>"`` or ``"sent_time": null``."""
    # Plain bytes.find instead of a regular expression: ~1.3 µs less per event.
    at = raw.find(_SENT)
    if at < 0:
        return raw
    start = raw.find(b":", at + len(_SENT)) + 1
    if start == 0:
        return raw
    while raw[start : start + 1] in _BLANK:
        start += 1
    if raw[start : start + 1] == b'"':
        end = raw.find(b'"', start + 1) + 1
        if end == 0:
            return raw
    elif raw.startswith(b"null", start):
        end = start + 4
    else:
        return raw
    after = end
    while raw[after : after + 1] in _BLANK:
        after += 1
    if raw[after : after + 1] == b",":
        end = after + 1
    else:
        # The last member: the comma before it goes instead, so an event whose producer
        # appended sent_time hashes as the same event sent without one.
        before = at
        while raw[before - 1 : before] in _BLANK and before > 0:
            before -= 1
        if raw[before - 1 : before] == b",":
            at = before - 1
    return raw[:at] + raw[end:]


def content_hashes(values: Iterable[bytes]) -> np.ndarray:
    """The content hash of each payload, int64 (never :data:`UNKNOWN`): the XXH3-64 digest of
    :func:`canonical_payload` as a signed integer.

    ``values`` may be any iterable of bytes-like payloads; one that is not a sequence (a
    generator) is read into a list once, since the native module reads it and then declines a
    payload that is not exactly ``bytes`` (a ``bytearray``, a subclass), which the Python loop
    then hashes from the start.
    """
    if not isinstance(values, Sequence):
        values = list(values)
    if _native_hashes is not None:
        native = _native_hashes(values)
        if native is not None:
            return np.frombuffer(memoryview(native), np.int64).copy()
    return _python_hashes(values)


def _python_hashes(values: Sequence[bytes]) -> np.ndarray:
    """:func:`content_hashes` without the native module."""
    digest = xxhash.xxh3_64_digest
    digests: list[bytes] = []
    add = digests.append
    for raw in values:
        # The compact form producers send, ``"sent_time":"<text>",``, cut without the general
        # scan; anything else goes through canonical_payload (same bytes out).
        at = raw.find(_SENT)
        if at >= 0 and raw[at + 11 : at + 13] == b':"':
            end = raw.find(b'"', at + 13) + 1
            after = raw[end : end + 1]
            if end and after == b",":
                add(digest(raw[:at] + raw[end + 1 :]))
                continue
            if end and after not in _BLANK and raw[at - 1 : at] == b",":
                add(digest(raw[: at - 1] + raw[end:]))
                continue
        add(digest(canonical_payload(raw)))
    out = np.frombuffer(b"".join(digests), ">i8").astype(np.int64)
    out[out == UNKNOWN] = 1
    return out


def content_hash(raw: bytes) -> int:
    """:func:`content_hashes` of one payload."""
    return int(content_hashes([raw])[0])


def kept_digests(values: Sequence[bytes | None], keep: np.ndarray) -> np.ndarray:
    """Per message of a batch, the content hash of its payload (int64); :data:`UNKNOWN` where
    ``keep`` is False or the payload is missing (rejected messages take no part in dedupe)."""
    if None not in values and keep.all():
        return content_hashes(cast(Sequence[bytes], values))
    out = np.zeros(len(values), np.int64)
    kept = np.flatnonzero(keep)
    payloads = list(compress(values, keep))
    if None in payloads:
        present = [raw is not None for raw in payloads]
        kept = kept[present]
        payloads = list(compress(payloads, present))
    if len(kept):
        out[kept] = content_hashes(cast(list[bytes], payloads))
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
