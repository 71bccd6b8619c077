"""Reading the NASA C-MAPSS text files (``train_FD00x.txt``, ``test_FD00x.txt``, ``RUL_FD00x.txt``).

A run file has one row per engine and operating cycle, 26 space-separated numbers: unit
(engine) number, cycle, 3 operational settings, 21 sensors; rows may end in spaces. The RUL file
has one integer per test engine, in engine order. Files may be gzip-compressed (``.gz``). Every
sub-dataset (FD001-FD004) has this format; the checks below reject anything else with the file
and line named.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from maxlake.errors import ConfigError
from streams.errors import StreamsError

__all__ = [
    "COLUMNS",
    "CmapssFileError",
    "Runs",
    "find_files",
    "read_rul",
    "read_runs",
    "subset_of",
]

COLUMNS = 26
"""Numbers per row of a run file."""

_SUBSET = re.compile(r"(FD\d{3})", re.IGNORECASE)


class CmapssFileError(StreamsError, ConfigError):
    """A C-MAPSS file is missing or not in the documented format."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(
            f"{where}: {problem} (expected the NASA C-MAPSS text format: see "
            "docs/DATASETS.md#real-data-nasa-c-mapss)"
        )


@dataclass(frozen=True)
class Runs:
    """The rows of one run file.

    Attributes:
        path: the file read.
        units: engine number per row (int64), rows grouped by engine, cycles ascending.
        cycles: cycle number per row (int64), 1, 2, ... without gaps per engine.
        values: float64 array of shape (rows, 24): settings 1-3, then sensors 1-21.
    """

    path: Path
    units: np.ndarray
    cycles: np.ndarray
    values: np.ndarray

    @property
    def engines(self) -> list[int]:
        """Engine numbers in file order."""
        return [int(u) for u in dict.fromkeys(self.units.tolist())]

    def last_cycles(self) -> dict[int, int]:
        """Engine number -> its last observed cycle."""
        out: dict[int, int] = {}
        for unit, cycle in zip(self.units.tolist(), self.cycles.tolist(), strict=True):
            out[unit] = cycle
        return out


def subset_of(path: str | Path) -> str:
    """The sub-dataset named in a file name (``train_FD002.txt.gz`` -> ``fd002``).

    Raises:
        CmapssFileError: the name holds no ``FD<3 digits>``.
    """
    match = _SUBSET.search(Path(path).name)
    if match is None:
        raise CmapssFileError(path, None, "the file name names no sub-dataset; pass --subset")
    return match.group(1).lower()


def read_runs(path: str | Path) -> Runs:
    """Read and check a train or test run file.

    Raises:
        CmapssFileError: unreadable, a row without 26 numbers, a non-integer engine or cycle,
            an engine whose rows are split or whose cycles do not run 1, 2, 3, ...
    """
    units: list[int] = []
    cycles: list[int] = []
    rows: list[list[float]] = []
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != COLUMNS:
                raise CmapssFileError(path, number, f"{len(fields)} numbers, expected {COLUMNS}")
            try:
                unit, cycle = int(fields[0]), int(fields[1])
                values = [float(f) for f in fields[2:]]
            except ValueError as exc:
                raise CmapssFileError(path, number, f"not a number: {exc}") from None
            expected = cycles[-1] + 1 if units and units[-1] == unit else 1
            if units and units[-1] != unit and unit in units:
                raise CmapssFileError(path, number, f"engine {unit} appears in two blocks")
            if cycle != expected:
                raise CmapssFileError(
                    path, number, f"engine {unit}: cycle {cycle} where {expected} was expected"
                )
            units.append(unit)
            cycles.append(cycle)
            rows.append(values)
    if not rows:
        raise CmapssFileError(path, None, "no rows")
    return Runs(
        Path(path),
        np.asarray(units, dtype=np.int64),
        np.asarray(cycles, dtype=np.int64),
        np.asarray(rows, dtype=np.float64),
    )


def read_rul(path: str | Path, engines: int) -> list[int]:
    """The true remaining useful life (cycles) after each test engine's last row.

    Args:
        path: the RUL file.
        engines: how many test engines the test file holds (one line each).

    Raises:
        CmapssFileError: unreadable, a line that is not a non-negative integer, or a line
            count other than ``engines``.
    """
    values: list[int] = []
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            if not text.isdigit():
                raise CmapssFileError(path, number, f"{text!r} is not a whole number of cycles")
            values.append(int(text))
    if len(values) != engines:
        raise CmapssFileError(
            path, None, f"{len(values)} RUL values for {engines} test engines in the test file"
        )
    return values


def _open(path: str | Path) -> IO[str]:
    p = Path(path)
    try:
        if p.suffix == ".gz":
            return gzip.open(p, "rt", encoding="ascii")
        return p.open(encoding="ascii")
    except OSError as exc:
        raise CmapssFileError(path, None, f"cannot read: {exc.strerror or exc}") from exc


def find_files(folder: str | Path, subset: str = "fd001") -> tuple[Path, Path, Path]:
    """The train, test and RUL files of ``subset`` in ``folder`` (``.txt`` or ``.txt.gz``).

    Raises:
        CmapssFileError: the folder or one of the three files is missing.
    """
    root = Path(folder)
    if not root.is_dir():
        raise CmapssFileError(root, None, "no such folder")
    found: list[Path] = []
    for stem in ("train", "test", "RUL"):
        name = f"{stem}_{subset.upper()}.txt"
        candidates = [root / f"{name}.gz", root / name]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise CmapssFileError(root, None, f"neither {name}.gz nor {name} is there")
        found.append(path)
    return found[0], found[1], found[2]
