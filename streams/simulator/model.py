"""Machine physics and part quality of the factory simulator.

Each :class:`MachineModel` is a small state machine driven one tick at a time:

* **RUNNING**: tags follow their registry nominal value with a daily cycle (ambient load), slow
  random-walk drift, Gaussian noise and a *wear* term. Wear grows while the machine runs (tool or
  roll wear); it raises "stress" tags (vibration, temperatures, force, current, offsets, wear)
  and adds noise. Crossing wear 0.70 / 0.82 / 0.92 raises alarms of increasing severity; wear
  1.0 puts the machine DOWN.
* **DOWN** for a while, then **MAINTENANCE** (wear reset), then **SETUP**, then RUNNING again.
  RUNNING machines also go IDLE (no material) or into a SETUP changeover now and then.

:class:`LineModel` turns the machines of a line into parts: while every machine runs, a part is
finished every cycle. Its quality depends on the wear and vibration the machines had during
the part's process window, so FAIL/REWORK and out-of-tolerance dimensions are learnable from
the telemetry.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from schemas.registry import AlarmSpec, MachineType, TagSpec

__all__ = ["DIMENSIONS", "DimensionSpec", "LineModel", "MachineModel", "PartOutcome"]

_STRESS_WORDS = ("vib", "temp", "wear", "offset", "current", "force", "o2", "humidity")
ALARM_WEAR_LEVELS = (0.70, 0.82, 0.92)
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class DimensionSpec:
    """A measured dimension of a part: nominal value, symmetric tolerance and unit. A dimension
    with a positive nominal is a magnitude (a diameter, a flatness) and is never sent below 0;
    one with nominal 0 is an offset and takes either sign."""

    name: str
    nominal: float
    tolerance: float
    unit: str


DIMENSIONS: dict[str, tuple[DimensionSpec, ...]] = {
    "cnc_mill": (
        DimensionSpec("bore_diameter", 82.000, 0.015, "mm"),
        DimensionSpec("face_flatness", 0.010, 0.008, "mm"),
    ),
    "rolling_stand": (
        DimensionSpec("strip_thickness", 2.500, 0.030, "mm"),
        DimensionSpec("strip_width", 1250.0, 2.0, "mm"),
    ),
    "formation_cell": (
        DimensionSpec("capacity", 50.0, 1.0, "Ah"),
        DimensionSpec("open_circuit_voltage", 3.650, 0.020, "V"),
    ),
    "reflow_oven": (DimensionSpec("joint_height", 80.0, 12.0, "um"),),
    "pick_place": (DimensionSpec("placement_x_offset", 0.0, 40.0, "um"),),
}
_FALLBACK_DIMENSION = (DimensionSpec("size", 100.0, 0.1, "mm"),)


@dataclass(slots=True)
class _TagState:
    spec: TagSpec
    stress: bool
    phase: float
    drift: float = 0.0


@dataclass(slots=True)
class MachineModel:
    """One simulated machine; :meth:`step` advances it by one tick and reports what changed."""

    machine_id: str
    machine_type: MachineType
    rng: random.Random
    wear_per_s: float
    state: str = "RUNNING"
    wear: float = 0.0
    state_left_s: float = 0.0
    alarms_raised: int = 0
    tags: list[_TagState] = field(default_factory=list)
    last_values: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, machine_id: str, machine_type: MachineType, rng: random.Random) -> MachineModel:
        """A machine at a random point of its wear cycle (hours to a day to failure)."""
        hours_to_failure = rng.uniform(3.0, 20.0)
        model = cls(machine_id, machine_type, rng, 1.0 / (hours_to_failure * 3600.0))
        model.wear = rng.uniform(0.0, 0.6)
        model.alarms_raised = sum(model.wear >= level for level in ALARM_WEAR_LEVELS)
        model.tags = [
            _TagState(t, any(w in t.tag for w in _STRESS_WORDS), rng.uniform(0, 2 * math.pi))
            for t in machine_type.tags
        ]
        return model

    @property
    def stress(self) -> float:
        """Wear-driven stress in [0, 1.2]: what part quality depends on."""
        return self.wear + max(0.0, self.wear - 0.6) * 0.5

    def step(self, now_s: float, tick_s: float) -> list[tuple[str, str | AlarmSpec]]:
        """Advance one tick; returns ``("STATE", state)`` and ``("ALARM", spec)`` changes."""
        changes: list[tuple[str, str | AlarmSpec]] = []
        rng = self.rng
        if self.state == "RUNNING":
            self.wear += self.wear_per_s * tick_s * rng.uniform(0.5, 1.5)
            level = sum(self.wear >= lvl for lvl in ALARM_WEAR_LEVELS)
            if level > self.alarms_raised and self.machine_type.alarms:
                self.alarms_raised = level
                changes.append(("ALARM", self._alarm(level)))
            if self.wear >= 1.0:
                changes.append(("ALARM", self._alarm(len(ALARM_WEAR_LEVELS) + 1)))
                changes.append(self._enter("DOWN", rng.uniform(600, 1800)))
            elif rng.random() < tick_s / 5400.0:
                changes.append(self._enter("IDLE", rng.uniform(60, 900)))
            elif rng.random() < tick_s / 14400.0:
                changes.append(self._enter("SETUP", rng.uniform(120, 600)))
        else:
            self.state_left_s -= tick_s
            if self.state_left_s <= 0:
                if self.state == "DOWN":
                    changes.append(self._enter("MAINTENANCE", rng.uniform(900, 2400)))
                elif self.state == "MAINTENANCE":
                    self.wear = rng.uniform(0.0, 0.05)
                    self.alarms_raised = 0
                    changes.append(self._enter("SETUP", rng.uniform(120, 600)))
                else:
                    changes.append(self._enter("RUNNING", 0.0))
        return changes

    def _enter(self, state: str, duration_s: float) -> tuple[str, str]:
        self.state = state
        self.state_left_s = duration_s
        return ("STATE", state)

    def _alarm(self, level: int) -> AlarmSpec:
        """Wear warnings (levels 1-3) are the type's least severe alarms in rising order; the
        failure (level 4) raises its most severe alarm (CNC: tool breakage)."""
        ranked = sorted(self.machine_type.alarms, key=lambda a: a.severity)
        if level > len(ALARM_WEAR_LEVELS):
            return ranked[-1]
        return ranked[min(level, len(ranked)) - 1]

    def read(self, now_s: float, tick_s: float) -> dict[str, float]:
        """Current value of every tag, within its physical range."""
        rng = self.rng
        running = self.state == "RUNNING"
        values: dict[str, float] = {}
        for tag in self.tags:
            spec = tag.spec
            span = spec.max - spec.min
            tag.drift += rng.gauss(0.0, 0.0005 * span * math.sqrt(tick_s))
            tag.drift *= 0.999
            if "wear" in spec.tag:
                value = spec.min + span * min(1.0, self.wear)
            elif running:
                daily = 0.03 * span * math.sin(2 * math.pi * now_s / _DAY_S + tag.phase)
                wear_push = (0.35 * span * self.wear**2) if tag.stress else 0.0
                noise = rng.gauss(0.0, 0.01 * span * (1.0 + 3.0 * self.wear * tag.stress))
                value = spec.nominal + daily + tag.drift + wear_push + noise
            else:
                idle = spec.min if spec.min <= 0.0 <= spec.max else spec.nominal
                rest = 0.2 * spec.nominal + 0.8 * idle
                value = rest + rng.gauss(0.0, 0.003 * span)
            values[spec.tag] = round(min(spec.max, max(spec.min, value)), 4)
        self.last_values = values
        return values


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """A finished part: process window, result, defect codes and measured dimensions."""

    start_s: float
    end_s: float
    result: str
    defect_codes: tuple[str, ...]
    dimensions: tuple[tuple[str, float, str], ...]
    risk: float


@dataclass(slots=True)
class LineModel:
    """Parts of one line; quality follows the machines' stress during each part's window."""

    line_id: str
    machines: list[MachineModel]
    rng: random.Random
    cycle_s: float
    progress_s: float = 0.0
    stress_sum: float = 0.0
    stress_ticks: int = 0
    serial: int = 0

    def step(self, now_s: float, tick_s: float) -> PartOutcome | None:
        """Advance one tick; returns the part finished during it, if any."""
        if not all(m.state == "RUNNING" for m in self.machines):
            self.progress_s = self.stress_sum = 0.0
            self.stress_ticks = 0
            return None
        self.progress_s += tick_s
        self.stress_sum += max(m.stress for m in self.machines)
        self.stress_ticks += 1
        if self.progress_s < self.cycle_s:
            return None
        risk = self.stress_sum / self.stress_ticks
        start = now_s + tick_s - self.progress_s
        self.progress_s = self.stress_sum = 0.0
        self.stress_ticks = 0
        self.serial += 1
        return self._inspect(start, now_s + tick_s, risk)

    def _inspect(self, start_s: float, end_s: float, risk: float) -> PartOutcome:
        rng = self.rng
        dims: list[tuple[str, float, str]] = []
        out_of_tolerance = 0
        borderline = 0
        seen: set[str] = set()
        defects: list[str] = []
        for machine in self.machines:
            type_id = machine.machine_type.id
            if type_id in seen:
                continue
            seen.add(type_id)
            for spec in DIMENSIONS.get(type_id, _FALLBACK_DIMENSION):
                spread = 0.25 + 1.5 * max(0.0, risk - 0.6) ** 1.5
                deviation = rng.gauss(0.0, spread) * spec.tolerance
                value = round(spec.nominal + deviation, 6)
                if spec.nominal > 0.0:
                    value = max(value, 0.0)
                dims.append((spec.name, value, spec.unit))
                if abs(deviation) > spec.tolerance:
                    out_of_tolerance += 1
                    defects.extend(_oot_code(machine.machine_type))
                elif abs(deviation) > 0.8 * spec.tolerance:
                    borderline += 1
        if out_of_tolerance:
            result = "FAIL" if rng.random() < 0.8 else "REWORK"
        elif borderline or rng.random() < 0.005 + 0.02 * risk:
            result = "REWORK" if rng.random() < 0.7 else "FAIL"
            codes = self.machines[-1].machine_type.defect_codes
            if codes:
                defects.append(rng.choice(codes))
        else:
            result = "PASS"
        return PartOutcome(
            start_s,
            end_s,
            result,
            tuple(dict.fromkeys(defects)) if result != "PASS" else (),
            tuple(dims),
            risk,
        )


def _oot_code(machine_type: MachineType) -> list[str]:
    codes = [c for c in machine_type.defect_codes if "OOT" in c]
    return codes[:1] or list(machine_type.defect_codes[:1])
