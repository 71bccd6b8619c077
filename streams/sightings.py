"""Where each event id was first seen: the dedupe state of one event kind, kept compact.

A worker remembers every event id it wrote (or found in the lake at warm-up) within the dedupe
horizon, so the state grows with the events ingested: a ``dict`` of id -> ``(topic, partition,
offset)`` tuple took ~213 bytes per id (213 MiB per million events). Here the coordinates are
one integer, ``offset * 2**20 + slot`` (``slot`` numbers the topic partitions seen), ~155 bytes
per id; the id string itself is most of the rest.
"""

from __future__ import annotations

from streams.errors import StreamsError

__all__ = ["Sightings"]

_SLOT_BITS = 20
_SLOTS = 1 << _SLOT_BITS

Coordinates = tuple[str, int, int]
"""``(topic, partition, offset)`` of one Kafka record."""


class Sightings:
    """Event id -> coordinates of its first sighting (a mapping kept compact)."""

    def __init__(self) -> None:
        self._first: dict[str, int] = {}
        self._slot: dict[tuple[str, int], int] = {}
        self._partitions: list[tuple[str, int]] = []

    def __len__(self) -> int:
        return len(self._first)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._first

    def _code(self, topic: str, partition: int, offset: int) -> int:
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
        return offset * _SLOTS + slot

    def _coordinates(self, code: int) -> Coordinates:
        offset, slot = divmod(code, _SLOTS)
        topic, partition = self._partitions[slot]
        return topic, partition, offset

    def get(self, event_id: str) -> Coordinates | None:
        """Where ``event_id`` was first seen, or None."""
        code = self._first.get(event_id)
        return None if code is None else self._coordinates(code)

    def set(self, event_id: str, topic: str, partition: int, offset: int) -> None:
        """Record ``event_id`` at these coordinates, replacing any earlier sighting."""
        self._first[event_id] = self._code(topic, partition, offset)

    def first_elsewhere(
        self, event_id: str, topic: str, partition: int, offset: int
    ) -> Coordinates | None:
        """Where ``event_id`` was first seen when that is not these coordinates; None when it
        is new (then recorded here) or was first seen right here."""
        code = self._code(topic, partition, offset)
        first = self._first.setdefault(event_id, code)
        return None if first == code else self._coordinates(first)
