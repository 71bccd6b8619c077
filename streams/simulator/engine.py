"""The seeded factory simulator: registry machines -> a deterministic stream of Kafka messages.

Determinism: everything random comes from ``random.Random`` instances seeded from ``seed`` (one
per machine and line, keyed by its ids, plus one for event ids and bad input), and events are
produced in a fixed order (tick by tick; per tick machine events, telemetry, then inspections).
The same registry, seed and options give the same bytes, event ids included. Nothing reads the
wall clock: times are ``start`` plus simulated seconds. Event ids also depend on ``start``, so
two runs that start at different instants (``maxlake simulate`` twice, the demo on a lake that
has one) send new events under new ids, never another event under an id already used.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from maxlake.errors import ConfigError
from maxlake.settings import Settings
from schemas.registry import AlarmSpec, Line, Registry
from streams.simulator.bad import make_bad
from streams.simulator.model import LineModel, MachineModel, PartOutcome

__all__ = ["SimEvent", "Simulator"]

_SNAPSHOT_SHARE = 0.85


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One message: topic tenant and kind, key (machine id), payload and its bad class if any."""

    tenant: str
    kind: str
    key: bytes
    payload: bytes
    bad_class: str | None = None

    def topic(self, settings: Settings) -> str:
        """The Kafka topic of this message under ``settings``."""
        return settings.topic_for(self.tenant, self.kind)


@dataclass(slots=True)
class _Site:
    """Where a machine or line lives: ids for the event envelope."""

    tenant: str
    plant: str
    line: str


class Simulator:
    """Simulate the registry's plants in simulated time.

    Args:
        registry: tenants, plants, lines, machines and machine types.
        seed: same seed and options give the same events.
        scale: copies of every machine per line (copy ``n > 1`` is ``<id>.s<n>``; such machines
            are not in the registry, which is fine for load tests but flagged by registry checks).
        bad_rate: fraction of messages that are bad input, in ``[0, 1)``; bad messages are
            inserted between good ones, so the good stream is complete.
        start: simulated time of the first tick (timezone-aware).
        tick_s: simulated seconds per tick; each machine reports once per tick.
        tenants: simulate only these tenant ids (default: all).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        seed: int = 0,
        scale: int = 1,
        bad_rate: float = 0.0,
        start: datetime,
        tick_s: float = 1.0,
        tenants: Sequence[str] | None = None,
    ) -> None:
        if scale < 1:
            raise ConfigError(f"scale must be >= 1, got {scale}")
        if not 0.0 <= bad_rate < 1.0:
            raise ConfigError(f"bad_rate must be in [0, 1), got {bad_rate}")
        if tick_s <= 0:
            raise ConfigError(f"tick_s must be > 0, got {tick_s}")
        if start.tzinfo is None:
            raise ConfigError("start must be timezone-aware (UTC)")
        known = [t.id for t in registry.tenants]
        chosen = list(tenants) if tenants else known
        unknown = [t for t in chosen if t not in known]
        if unknown:
            raise ConfigError(f"unknown tenants {unknown}; the registry has: {', '.join(known)}")
        self.seed = seed
        self.bad_rate = bad_rate
        self.tick_s = tick_s
        self.start = start.astimezone(UTC)
        self._rng = random.Random(f"{seed}:events")
        self._ids = random.Random(f"{seed}:{self.start.isoformat()}:event_ids")
        self._machines: list[tuple[_Site, MachineModel]] = []
        self._lines: list[tuple[_Site, LineModel]] = []
        for tenant in registry.tenants:
            if tenant.id not in chosen:
                continue
            for plant in tenant.plants:
                for line in plant.lines:
                    site = _Site(tenant.id, plant.id, line.id)
                    models = self._line_machines(registry, site, line, scale)
                    self._machines.extend((site, m) for m in models)
                    rng = random.Random(f"{seed}:{site.tenant}:{site.plant}:{line.id}")
                    cycle = rng.uniform(20.0, 90.0) * tick_s
                    self._lines.append((site, LineModel(line.id, models, rng, cycle)))
        self._previous: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def _line_machines(
        self, registry: Registry, site: _Site, line: Line, scale: int
    ) -> list[MachineModel]:
        models = []
        for copy in range(1, scale + 1):
            for machine in line.machines:
                machine_id = machine.id if copy == 1 else f"{machine.id}.s{copy}"
                name = f"{self.seed}:{site.tenant}:{site.plant}:{line.id}:{machine_id}"
                rng = random.Random(name)
                mtype = registry.machine_types[machine.machine_type]
                models.append(MachineModel.create(machine_id, mtype, rng))
        return models

    @property
    def machine_count(self) -> int:
        """How many machines are simulated (after tenant filter and scale)."""
        return len(self._machines)

    def events(self, duration_s: float) -> Iterator[SimEvent]:
        """Every message of ``duration_s`` simulated seconds, in emission order."""
        ticks = int(duration_s / self.tick_s)
        for site, machine in self._machines:
            yield from self._machine_event(site, machine, 0.0, ("STATE", machine.state))
        for tick in range(ticks):
            now = tick * self.tick_s
            for site, machine in self._machines:
                for change in machine.step(now, self.tick_s):
                    yield from self._machine_event(site, machine, now, change)
                yield from self._telemetry(site, machine, now)
            for site, line in self._lines:
                part = line.step(now, self.tick_s)
                if part is not None:
                    yield from self._inspection(site, line, part)

    # ------------------------------------------------------------------ event builders

    def _time(self, seconds: float) -> str:
        return (self.start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _envelope(self, kind: str, site: _Site, machine: str, at_s: float) -> dict[str, Any]:
        rng = self._rng
        return {
            "event_id": self._event_id(),
            "schema_version": 1,
            "kind": kind,
            "tenant": site.tenant,
            "plant": site.plant,
            "line": site.line,
            "machine": machine,
            "event_time": self._time(at_s),
            "sent_time": self._time(at_s + rng.uniform(0.005, 0.25)),
        }

    def _emit(self, kind: str, site: _Site, event: Mapping[str, Any]) -> Iterator[SimEvent]:
        """Bad messages (each with probability ``bad_rate``), then the good event itself."""
        key = str(event["machine"]).encode()
        previous_key = (site.tenant, kind)
        while self.bad_rate and self._rng.random() < self.bad_rate:
            broken = {**event, "event_id": self._event_id()}
            earlier = self._previous.get(previous_key)
            bad_class, payload = make_bad(
                kind, self._rng, broken, previous=earlier[1] if earlier else None
            )
            # A plant resends an event under its own machine key, so it lands on the
            # partition of its first copy.
            bad_key = earlier[0] if bad_class == "duplicate_resend" and earlier else key
            yield SimEvent(site.tenant, kind, bad_key, payload, bad_class)
        payload = orjson.dumps(event)
        self._previous[previous_key] = (key, payload)
        yield SimEvent(site.tenant, kind, key, payload)

    def _machine_event(
        self, site: _Site, machine: MachineModel, now: float, change: tuple[str, str | AlarmSpec]
    ) -> Iterator[SimEvent]:
        at = now + machine.rng.uniform(0.0, self.tick_s)
        event = self._envelope("machine_event", site, machine.machine_id, at)
        what, detail = change
        event["event_type"] = what
        if isinstance(detail, AlarmSpec):
            event["alarm"] = {"code": detail.code, "severity": detail.severity, "text": detail.text}
        else:
            event["state"] = detail
        yield from self._emit("machine_event", site, event)

    def _telemetry(self, site: _Site, machine: MachineModel, now: float) -> Iterator[SimEvent]:
        values = machine.read(now, self.tick_s)
        rng = machine.rng
        event = self._envelope("telemetry", site, machine.machine_id, now)
        units = {t.tag: t.unit for t in machine.machine_type.tags}
        quality = "UNCERTAIN" if machine.state == "DOWN" else "GOOD"
        readings = [
            {"tag": tag, "value": value, "unit": units[tag], "quality": _quality(rng, quality)}
            for tag, value in values.items()
        ]
        if rng.random() < _SNAPSHOT_SHARE or len(readings) == 1:
            event["readings"] = readings
        else:
            event["reading"] = rng.choice(readings)
        yield from self._emit("telemetry", site, event)

    def _inspection(self, site: _Site, line: LineModel, part: PartOutcome) -> Iterator[SimEvent]:
        station = line.machines[-1].machine_id
        event = self._envelope("inspection", site, station, part.end_s)
        hour = self._time(part.end_s)[:13].replace("-", "").replace("T", "")
        lot = f"{line.line_id}-{hour}"  # one lot per line and hour: lots fit the demo's 16 h
        event.update(
            {
                "part_serial": f"{site.line}-{self.seed}-{line.serial:08d}",
                "lot": lot,
                "machines": [m.machine_id for m in line.machines],
                "process_start": self._time(part.start_s),
                "process_end": self._time(part.end_s),
                "result": part.result,
                "defect_codes": list(part.defect_codes),
                "dimensions": [
                    {"name": name, "value": value, "unit": unit}
                    for name, value, unit in part.dimensions
                ],
            }
        )
        yield from self._emit("inspection", site, event)


def _quality(rng: random.Random, default: str) -> str:
    roll = rng.random()
    if roll < 0.002:
        return "BAD"
    if roll < 0.012:
        return "UNCERTAIN"
    return default
