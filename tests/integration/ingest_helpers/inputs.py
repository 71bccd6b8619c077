"""Input for the workers: simulator events (:func:`simulate`), sent at once (:func:`produce`) or
as a paced stream with holds (:class:`Stream`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from schemas import load_registry
from streams.producer import PlantProducer
from streams.simulator import SimEvent, Simulator
from tests.integration.ingest_helpers.env import IngestEnv

__all__ = ["Stream", "keyed_like_original", "produce", "simulate"]


def simulate(
    tenants: Sequence[str], *, seed: int, duration_s: float, bad_rate: float = 0.05
) -> list[SimEvent]:
    """The simulator's events of ``duration_s`` simulated seconds ending now (so none is stale)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=duration_s)
    sim = Simulator(load_registry(), seed=seed, start=start, tenants=tenants, bad_rate=bad_rate)
    return list(sim.events(duration_s))


def keyed_like_original(events: Sequence[SimEvent]) -> list[SimEvent]:
    """Resends keyed by the machine of the event they repeat, as a plant's producer keys them.

    The simulator sends a ``duplicate_resend`` with the key of the event it interrupts, which
    usually names another machine and lands on another partition.
    """
    keys: dict[bytes, bytes] = {}
    out: list[SimEvent] = []
    for event in events:
        if event.bad_class is None:
            keys[event.payload] = event.key
        elif event.bad_class == "duplicate_resend":
            out.append(
                SimEvent(
                    event.tenant, event.kind, keys[event.payload], event.payload, "duplicate_resend"
                )
            )
            continue
        out.append(event)
    return out


def produce(env: IngestEnv, events: Iterable[SimEvent]) -> int:
    """Send ``events`` to the test's topics, flushed; returns how many."""
    settings = env.settings()
    sent = 0
    with PlantProducer(settings, spool_dir=env.work / "spool", client_id=env.name) as producer:
        for event in events:
            producer.send_raw(event.topic(settings), event.payload, key=event.key)
            sent += 1
        producer.flush()
    return sent


class Stream(threading.Thread):
    """Produces ``events`` in chunks with pauses, so the worker always has fresh input.

    At each chunk number of ``held_at`` the stream waits for one :meth:`release`, so a test can
    be sure input still flows after each step it takes, however slow the machine is.
    """

    def __init__(
        self,
        env: IngestEnv,
        events: list[SimEvent],
        chunks: int,
        pause_s: float,
        *,
        held_at: Sequence[int] = (),
    ):
        super().__init__(daemon=True)
        self.env, self.events, self.chunks, self.pause_s = env, events, chunks, pause_s
        self.held_at = set(held_at)
        self._releases = threading.Semaphore(0)
        self.sent = 0
        self.error: BaseException | None = None

    def release(self) -> None:
        """Let the stream go on past its next hold."""
        self._releases.release()

    def run(self) -> None:
        size = -(-len(self.events) // self.chunks)
        try:
            for number, start in enumerate(range(0, len(self.events), size)):
                if number in self.held_at:
                    self._wait_for_release()
                self.sent += produce(self.env, self.events[start : start + size])
                time.sleep(self.pause_s)
        except BaseException as exc:  # re-raised by the test thread
            self.error = exc

    def _wait_for_release(self) -> None:
        if not self._releases.acquire(timeout=600):
            raise AssertionError("the stream was never released")
