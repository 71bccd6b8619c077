"""A seeded, deterministic factory simulator with bad-input injection (``maxlake simulate``)."""

from streams.simulator.bad import BAD_CLASSES, make_bad
from streams.simulator.engine import SimEvent, Simulator
from streams.simulator.model import DIMENSIONS, DimensionSpec, LineModel, MachineModel, PartOutcome
from streams.simulator.run import SimStats, run_simulation

__all__ = [
    "BAD_CLASSES",
    "DIMENSIONS",
    "DimensionSpec",
    "LineModel",
    "MachineModel",
    "PartOutcome",
    "SimEvent",
    "SimStats",
    "Simulator",
    "make_bad",
    "run_simulation",
]
