"""The prepare thread's code before the sixteenth pass (2026-12-02), kept as the reference of
the equivalence tests: the dedupe state's hashes and level insertion, and the silver rows'
topic columns taken row by row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow.compute as pc
from pandas.util import hash_array

from streams import batch_rows, sightings
from streams.sightings import _Level, id_array

__all__ = ["ReferenceLevel", "previous_code", "reference_hashes"]


def reference_hashes(event_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``streams.sightings._hashes`` as it was."""
    try:
        return tuple(  # type: ignore[return-value]
            hash_array(event_ids, encoding="utf8", hash_key=key, categorize=False)
            for key in sightings._KEYS
        )
    except UnicodeEncodeError:
        raw = id_array([s.encode("utf-8", "surrogatepass") for s in event_ids])
        return tuple(  # type: ignore[return-value]
            hash_array(raw, hash_key=key, categorize=False) for key in sightings._KEYS
        )


class ReferenceLevel(_Level):
    """``_Level.insert`` as it was: a stable sort and one ``np.insert`` per array."""

    def insert(
        self,
        hi: np.ndarray,
        lo: np.ndarray,
        offset: np.ndarray,
        slot: np.ndarray,
        digest: np.ndarray | None = None,
        **_: Any,
    ) -> None:
        if digest is None:
            digest = np.zeros(len(hi), np.int64)
        order = np.argsort(hi, kind="stable")
        hi, lo, offset, slot = hi[order], lo[order], offset[order], slot[order]
        at = np.searchsorted(self.hi, hi)
        self.hi = np.insert(self.hi, at, hi)
        self.lo = np.insert(self.lo, at, lo)
        self.offset = np.insert(self.offset, at, offset)
        self.slot = np.insert(self.slot, at, slot)
        self.digest = np.insert(self.digest, at, digest[order])


@contextmanager
def previous_code() -> Iterator[None]:
    """Within the block, :mod:`streams.sightings` and :mod:`streams.batch_rows` run the previous
    code (module globals: not thread-safe, tests only)."""
    saved: tuple[Any, Any, Any] = (sightings._hashes, sightings._Level, batch_rows._take_strings)
    vars(sightings).update(_hashes=reference_hashes, _Level=ReferenceLevel)
    vars(batch_rows).update(_take_strings=pc.take)
    try:
        yield
    finally:
        vars(sightings).update(_hashes=saved[0], _Level=saved[1])
        vars(batch_rows).update(_take_strings=saved[2])
