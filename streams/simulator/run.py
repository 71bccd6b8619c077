"""Run the simulator into Kafka through :class:`~streams.producer.PlantProducer`, paced."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from maxlake.settings import Settings
from schemas.registry import Registry, load_registry
from streams.producer import PlantProducer
from streams.simulator.engine import Simulator
from streams.topics import ensure_topics

__all__ = ["SimStats", "run_simulation"]

_PROGRESS_EVERY_S = 1.0
_MIN_SLEEP_S = 0.005


@dataclass(slots=True)
class SimStats:
    """What a simulation run sent: totals, per kind and per bad class, and the producer counters."""

    events: int = 0
    bad: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_bad_class: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    producer: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        """Average send rate in wall-clock time."""
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_simulation(
    settings: Settings,
    registry: Registry | None = None,
    *,
    seed: int = 0,
    duration_s: float = 60.0,
    rate: float | None = None,
    scale: int = 1,
    tenants: Sequence[str] | None = None,
    start: datetime | None = None,
    bad_rate: float = 0.0,
    tick_s: float = 1.0,
    spool_dir: Path | None = None,
    create_topics: bool = True,
    progress: Callable[[SimStats], None] | None = None,
) -> SimStats:
    """Simulate ``duration_s`` seconds and send every message; returns the counts.

    Args:
        rate: messages per wall-clock second; ``None`` sends as fast as possible.
        start: simulated start time; ``None`` means ``now - duration_s`` (whole seconds), so
            the simulated window ends about now and event times are neither future nor stale.
        create_topics: create the tenants' topics first (idempotent).
        progress: called with the running stats at most once per second, and once at the end.

    Other arguments are those of :class:`~streams.simulator.engine.Simulator`.
    """
    registry = registry or load_registry()
    if start is None:
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(seconds=duration_s)
    simulator = Simulator(
        registry,
        seed=seed,
        scale=scale,
        bad_rate=bad_rate,
        start=start,
        tick_s=tick_s,
        tenants=tenants,
    )
    chosen = list(tenants) if tenants else [t.id for t in registry.tenants]
    if create_topics:
        ensure_topics(settings, chosen)
    stats = SimStats()
    began = time.monotonic()
    next_report = began + _PROGRESS_EVERY_S
    topics: dict[tuple[str, str], str] = {}
    with PlantProducer(settings, spool_dir=spool_dir, client_id="maxlake-simulator") as producer:
        for event in simulator.events(duration_s):
            topic = topics.get((event.tenant, event.kind))
            if topic is None:
                topic = topics[(event.tenant, event.kind)] = event.topic(settings)
            producer.send_raw(topic, event.payload, key=event.key)
            stats.events += 1
            stats.by_kind[event.kind] += 1
            if event.bad_class is not None:
                stats.bad += 1
                stats.by_bad_class[event.bad_class] += 1
            if rate is not None or stats.events & 255 == 0:
                now_m = time.monotonic()
                if rate is not None:
                    ahead = stats.events / rate - (now_m - began)
                    if ahead > _MIN_SLEEP_S:
                        time.sleep(ahead)
                        now_m = time.monotonic()
                if progress is not None and now_m >= next_report:
                    stats.elapsed_s = now_m - began
                    stats.producer = producer.counters()
                    progress(stats)
                    next_report = now_m + _PROGRESS_EVERY_S
        producer.flush()
        stats.elapsed_s = time.monotonic() - began
        stats.producer = producer.counters()
    if progress is not None:
        progress(stats)
    return stats
