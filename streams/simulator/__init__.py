"""A seeded, deterministic factory simulator with bad-input injection (``maxlake simulate``)."""

from streams.simulator.bad import BAD_CLASSES, QUARANTINE_REASONS, make_bad, quarantine_names_line
from streams.simulator.engine import SimEvent, Simulator
from streams.simulator.model import DIMENSIONS, DimensionSpec, LineModel, MachineModel, PartOutcome
from streams.simulator.run import SimStats, run_simulation

__all__ = [
    "BAD_CLASSES",
    "DIMENSIONS",
    "QUARANTINE_REASONS",
    "DimensionSpec",
    "LineModel",
    "MachineModel",
    "PartOutcome",
    "SimEvent",
    "SimStats",
    "Simulator",
    "make_bad",
    "quarantine_names_line",
    "run_simulation",
]
