"""Where each event id was first seen: the dedupe state of one event kind, kept compact.

A worker remembers every event id it wrote (or found in the lake at warm-up) within the dedupe
horizon, so the state grows with the events ingested. A ``dict`` of id -> coordinates took
~155-213 bytes per id (the id string most of it). Here each id is a 128-bit keyed hash
(SipHash-2-4 under two keys, so two different ids share a key with probability ~2**-128 per
pair: about 10**-21 for a billion remembered ids) beside its first sighting's offset, topic
partition slot and content hash (:mod:`streams.content_hash`; 0: unknown), in NumPy arrays
sorted by hash: 36 bytes per id. Lookups and inserts are
whole-batch array operations (:meth:`Sightings.first_sightings`), not a Python call per event.
The hashes are pandas' ``hash_array`` of the ids' UTF-8 bytes; ``maxlake_native`` computes the
same values (std's SipHash-2-4, GIL released) when it is importable and the ids are ``str``.

The arrays are kept in sorted levels, each at least twice the size of the next (a batch's new
ids make a new level; levels of similar size are merged), so inserting an id costs O(log n)
amortised copies and a lookup searches ~log2(n / batch) levels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pandas.util import hash_array

from streams.errors import StreamsError

__all__ = ["Sightings", "id_array"]

_SLOTS = 1 << 20

_KEYS = ("maxlake-dedupe-1", "maxlake-dedupe-2")
"""The two 16-byte SipHash keys of an id's high and low 64 bits."""

_KEY_BYTES = tuple(key.encode() for key in _KEYS)

_NativeIdHashes = Callable[[list[Any], bytes, bytes], Any]
_native_id_hashes: _NativeIdHashes | None
try:
    from maxlake_native import id_hashes as _native_id_hashes
except ImportError:  # an older build of native/, or none (the decoder logs that one is missing)
    _native_id_hashes = None

Coordinates = tuple[str, int, int]
"""``(topic, partition, offset)`` of one Kafka record."""


def id_array(event_ids: Sequence[str | None] | Sequence[bytes]) -> np.ndarray:
    """``event_ids`` as a NumPy object array (what the vectorised methods take)."""
    out = np.empty(len(event_ids), object)
    out[:] = event_ids
    return out


def _hashes(event_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low 64 bits of each id's 128-bit hash (of its UTF-8 bytes)."""
    if _native_id_hashes is not None:
        both = _native_id_hashes(event_ids.tolist(), *_KEY_BYTES)
        if both is not None:
            hashes = np.frombuffer(memoryview(both), np.int64).view(np.uint64).copy()
            return hashes[: len(event_ids)], hashes[len(event_ids) :]
    # Each id encoded once for both keys: pandas hashes bytes as they are and encodes each
    # str again per key (the same bytes, so the same hashes).
    try:
        raw = id_array([v.encode() if isinstance(v, str) else v for v in event_ids])
    except UnicodeEncodeError:
        raw = id_array([s.encode("utf-8", "surrogatepass") for s in event_ids])
    return tuple(  # type: ignore[return-value]
        hash_array(raw, encoding="utf8", hash_key=key, categorize=False) for key in _KEYS
    )


def _groups(which: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``which`` (indices of queries) ordered so that equal hashes are adjacent, in ``which``
    order among themselves; and per position, whether it starts a group of equal hashes."""
    order = which[np.argsort(hi[which], kind="stable")]
    h, low = hi[order], lo[order]
    same_hi = h[1:] == h[:-1]
    if np.any(same_hi & (low[1:] != low[:-1])):
        # Different ids with equal high bits (rare): sort by the low bits too.
        order = which[np.lexsort((lo[which], hi[which]))]
        h, low = hi[order], lo[order]
        same_hi = h[1:] == h[:-1]
    starts = np.ones(len(order), bool)
    starts[1:] = ~same_hi | (low[1:] != low[:-1])
    return order, starts


class _Level:
    """Hashes sorted by their high bits, with the first sighting of each."""

    __slots__ = ("digest", "hi", "lo", "offset", "slot")

    def __init__(self) -> None:
        self.hi = np.empty(0, np.uint64)
        self.lo = np.empty(0, np.uint64)
        self.offset = np.empty(0, np.int64)
        self.slot = np.empty(0, np.int32)
        self.digest = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.hi)

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Per query, its position here, or -1."""
        n = len(self.hi)
        if n == 0:
            return np.full(len(hi), -1, np.int64)
        pos = np.searchsorted(self.hi, hi)
        at = np.minimum(pos, n - 1)
        same_hi = (pos < n) & (self.hi[at] == hi)
        found = np.where(same_hi & (self.lo[at] == lo), at, -1)
        # Ids whose high bits collide sit next to each other (in no order of their low bits).
        for q in np.flatnonzero(same_hi & (found < 0)).tolist():
            j = int(pos[q]) + 1
            while j < n and self.hi[j] == hi[q]:
                if self.lo[j] == lo[q]:
                    found[q] = j
                    break
                j += 1
        return found

    def insert(
        self,
        hi: np.ndarray,
        lo: np.ndarray,
        offset: np.ndarray,
        slot: np.ndarray,
        digest: np.ndarray | None = None,
        *,
        ordered: bool = False,
    ) -> None:
        """Add ids not held here yet (``digest``: their content hashes; None: unknown;
        ``ordered``: ``hi`` is ascending already, as a level's own is)."""
        if digest is None:
            digest = np.zeros(len(hi), np.int64)
        if not ordered:
            order = np.argsort(hi, kind="stable")
            hi, lo, offset, slot = hi[order], lo[order], offset[order], slot[order]
            digest = digest[order]
        # Where np.insert(self.x, at, x) puts each new and each held entry, computed once for
        # the five arrays (np.insert sorts the positions again for each): new entry i goes
        # before the held ones at and after at[i], after the new ones before it.
        at = np.searchsorted(self.hi, hi)
        size = len(self.hi) + len(hi)
        new_at = at + np.arange(len(hi))
        held_at = np.ones(size, bool)
        held_at[new_at] = False
        self.hi = _merged(self.hi, hi, new_at, held_at)
        self.lo = _merged(self.lo, lo, new_at, held_at)
        self.offset = _merged(self.offset, offset, new_at, held_at)
        self.slot = _merged(self.slot, slot, new_at, held_at)
        self.digest = _merged(self.digest, digest, new_at, held_at)


def _merged(
    held: np.ndarray, new: np.ndarray, new_at: np.ndarray, held_at: np.ndarray
) -> np.ndarray:
    """``held`` with ``new`` at positions ``new_at`` (``held_at``: the other positions)."""
    out = np.empty(len(held_at), held.dtype)
    out[new_at] = new
    out[held_at] = held
    return out


class Sightings:
    """Event id -> coordinates of its first sighting (a mapping kept compact)."""

    def __init__(self) -> None:
        self._levels: list[_Level] = []
        self._slot: dict[tuple[str, int], int] = {}
        self._partitions: list[tuple[str, int]] = []

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self.get(event_id) is not None

    def slot(self, topic: str, partition: int) -> int:
        """The number of a topic partition in this state (numbered as first seen).

        Raises:
            StreamsError: more than 2**20 topic partitions.
        """
        slot = self._slot.get((topic, partition))
        if slot is None:
            slot = len(self._partitions)
            if slot >= _SLOTS:
                raise StreamsError(
                    f"the dedupe state holds {_SLOTS:,} topic partitions, its limit: run "
                    "more workers, each on fewer topics (maxlake worker --tenant/--kind)"
                )
            self._slot[(topic, partition)] = slot
            self._partitions.append((topic, partition))
        return slot

    def topic_partition(self, slot: int) -> tuple[str, int]:
        """The topic partition numbered ``slot``."""
        return self._partitions[slot]

    def _find(self, hi: np.ndarray, lo: np.ndarray) -> list[np.ndarray]:
        """Per level, each query's position in it (-1: not there)."""
        # Binary searches of ascending keys reuse the previous bound: ~5x faster at 1M ids.
        order = np.argsort(hi)
        hi, lo = hi[order], lo[order]
        found = []
        for level in self._levels:
            at = np.empty(len(hi), np.int64)
            at[order] = level.find(hi, lo)
            found.append(at)
        return found

    def _firsts(
        self, n: int, found: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Held (bool), slot, offset and content hash of each of ``n`` queries' stored
        sighting (-1, -1, 0: none)."""
        held = np.zeros(n, bool)
        slot = np.full(n, -1, np.int32)
        offset = np.full(n, -1, np.int64)
        digest = np.zeros(n, np.int64)
        for level, at in zip(self._levels, found, strict=True):
            here = at >= 0
            held |= here
            slot[here], offset[here] = level.slot[at[here]], level.offset[at[here]]
            digest[here] = level.digest[at[here]]
        return held, slot, offset, digest

    def _add(
        self,
        hi: np.ndarray,
        lo: np.ndarray,
        offset: np.ndarray,
        slot: np.ndarray,
        digest: np.ndarray,
    ) -> None:
        """Store ids held by no level (distinct)."""
        if not len(hi):
            return
        level = _Level()
        level.insert(hi, lo, offset, slot, digest)
        levels = self._levels
        levels.append(level)
        while len(levels) > 1 and len(levels[-2]) <= 2 * len(levels[-1]):
            top = levels.pop()
            levels[-1].insert(top.hi, top.lo, top.offset, top.slot, top.digest, ordered=True)

    def first_sightings(
        self, event_ids: np.ndarray, slots: np.ndarray, offsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`first_elsewhere` for a sequence of sightings, in order, as arrays.

        Args:
            event_ids: object array of ``str``, one per sighting.
            slots: int array, the sightings' topic partitions (:meth:`slot`).
            offsets: int array, the sightings' offsets.

        Returns:
            ``(slot, offset)`` int arrays: where each id was first seen, counting the
            sightings before it in this call; an id seen for the first time is recorded at its
            first sighting here. A sighting is a repeat of an earlier one exactly when the
            returned coordinates differ from its own.
        """
        first_slot, first_offset, _ = self.first_copies(event_ids, slots, offsets)
        return first_slot, first_offset

    def first_copies(
        self,
        event_ids: np.ndarray,
        slots: np.ndarray,
        offsets: np.ndarray,
        digests: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`first_sightings` that also remembers and returns content hashes.

        Args:
            event_ids, slots, offsets: as in :meth:`first_sightings`.
            digests: int64 array, each sighting's content hash (:mod:`streams.content_hash`);
                None: all unknown (0).

        Returns:
            ``(slot, offset, digest)`` arrays: each id's first sighting and that copy's content
            hash (0 when unknown).
        """
        n = len(event_ids)
        slots = np.asarray(slots, np.int32)
        offsets = np.asarray(offsets, np.int64)
        digests = np.zeros(n, np.int64) if digests is None else np.asarray(digests, np.int64)
        if n == 0:
            return slots.copy(), offsets.copy(), digests.copy()
        hi, lo = _hashes(event_ids)
        held, first_slot, first_offset, first_digest = self._firsts(n, self._find(hi, lo))
        new = np.flatnonzero(~held)
        if len(new):
            # Among the new ids, the earliest sighting of each is its first (stable sorts).
            order, starts = _groups(new, hi, lo)
            group = np.cumsum(starts) - 1
            leaders = order[starts]
            first_slot[order] = slots[leaders][group]
            first_offset[order] = offsets[leaders][group]
            first_digest[order] = digests[leaders][group]
            self._add(hi[leaders], lo[leaders], offsets[leaders], slots[leaders], digests[leaders])
        return first_slot, first_offset, first_digest

    def set_many(
        self,
        event_ids: np.ndarray,
        slots: np.ndarray,
        offsets: np.ndarray,
        digests: np.ndarray | None = None,
    ) -> None:
        """Record each id at its sighting, replacing any earlier one (the last of repeats in
        ``event_ids`` wins). Arguments as in :meth:`first_copies`."""
        if not len(event_ids):
            return
        slots = np.asarray(slots, np.int32)
        offsets = np.asarray(offsets, np.int64)
        digests = (
            np.zeros(len(event_ids), np.int64) if digests is None else np.asarray(digests, np.int64)
        )
        hi, lo = _hashes(event_ids)
        # Latest first, so the stable sort puts the last of repeats at the front of its group.
        order, starts = _groups(np.arange(len(hi) - 1, -1, -1), hi, lo)
        last = order[starts]
        hi, lo, slots, offsets = hi[last], lo[last], slots[last], offsets[last]
        digests = digests[last]
        new = np.ones(len(hi), bool)
        for level, at in zip(self._levels, self._find(hi, lo), strict=True):
            here = at >= 0
            level.slot[at[here]] = slots[here]
            level.offset[at[here]] = offsets[here]
            level.digest[at[here]] = digests[here]
            new &= ~here
        self._add(hi[new], lo[new], offsets[new], slots[new], digests[new])

    def get(self, event_id: str) -> Coordinates | None:
        """Where ``event_id`` was first seen, or None."""
        found, slot, offset, _ = self._firsts(1, self._find(*_hashes(id_array([event_id]))))
        if not found[0]:
            return None
        return (*self._partitions[int(slot[0])], int(offset[0]))

    def set(self, event_id: str, topic: str, partition: int, offset: int) -> None:
        """Record ``event_id`` at these coordinates, replacing any earlier sighting."""
        self.set_many(
            id_array([event_id]), np.array([self.slot(topic, partition)]), np.array([offset])
        )

    def first_elsewhere(
        self, event_id: str, topic: str, partition: int, offset: int
    ) -> Coordinates | None:
        """Where ``event_id`` was first seen when that is not these coordinates; None when it
        is new (then recorded here) or was first seen right here."""
        slot = self.slot(topic, partition)
        first_slot, first_offset = self.first_sightings(
            id_array([event_id]), np.array([slot]), np.array([offset])
        )
        if (int(first_slot[0]), int(first_offset[0])) == (slot, offset):
            return None
        return (*self._partitions[int(first_slot[0])], int(first_offset[0]))
