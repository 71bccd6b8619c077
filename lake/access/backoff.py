"""Failed-authentication backoff per token key id and per client address.

Every refused token costs the service a scrypt (tens of milliseconds of CPU); a partner that
knows a key id (it is public, inside the token) could otherwise keep both cores busy and make
legitimate requests slow. After :attr:`Backoff.free_failures` failures of one key id, or of one
client address, within :attr:`Backoff.window_s`, further attempts from it are refused at once —
no scrypt, HTTP 429 with ``Retry-After`` — for a time that doubles with each further failure, up
to :attr:`Backoff.max_block_s`. A success clears the key id's and the address's record. Other
key ids and other addresses are not affected, so a legitimate client elsewhere is never slowed;
the owner of an attacked key id may be refused until the block ends (the price of the key id
being public; issuing a new token gives a new key id).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


class Backoff:
    """In-memory failure counts of one service process (thread-safe)."""

    def __init__(
        self,
        *,
        free_failures: int = 5,
        window_s: float = 60.0,
        first_block_s: float = 1.0,
        max_block_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.window_s = window_s
        self.first_block_s = first_block_s
        self.max_block_s = max_block_s
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def retry_after(self, key_id: str | None, client: str | None) -> float:
        """Seconds until ``key_id`` and ``client`` may try again; 0.0 when not blocked."""
        now = self._clock()
        with self._lock:
            waits = [
                r.blocked_until - now
                for k in self._keys(key_id, client)
                if (r := self._records.get(k)) is not None
            ]
        return max([0.0, *waits])

    def failed(self, key_id: str | None, client: str | None) -> None:
        """Count one refused token of ``key_id`` from ``client``."""
        now = self._clock()
        with self._lock:
            if len(self._records) > 100_000:
                self._records.clear()
            for k in self._keys(key_id, client):
                record = self._records.setdefault(k, _Record())
                record.failures = [t for t in record.failures if now - t < self.window_s]
                record.failures.append(now)
                over = len(record.failures) - self.free_failures
                if over > 0:
                    block = min(self.first_block_s * 2 ** (over - 1), self.max_block_s)
                    record.blocked_until = max(record.blocked_until, now + block)

    def succeeded(self, key_id: str | None, client: str | None) -> None:
        """Forget the failures of ``key_id`` and ``client``."""
        with self._lock:
            for k in self._keys(key_id, client):
                self._records.pop(k, None)

    @staticmethod
    def _keys(key_id: str | None, client: str | None) -> list[str]:
        return [
            *([f"key:{key_id}"] if key_id else []),
            *([f"client:{client}"] if client else []),
        ]
