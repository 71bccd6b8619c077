"""Measurement units: the one wrapper of ``pint``.

Tag units in the asset registry and in telemetry readings are pint unit expressions (``degC``,
``l/min``, ``%``, ``kN``). A registry may define extra units (``[[units]]`` entries, pint
definition syntax such as ``spm = 1 / minute``). :func:`unit_system` builds one pint registry per
distinct set of definitions and caches it; pint is slow to import and to build (~1 s the
first time on this machine, then ~0.2 s from pint's on-disk cache).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Conversion", "UnitSystem", "unit_system"]


@dataclass(frozen=True, slots=True)
class Conversion:
    """How a value in one unit becomes a value in another: ``to = from * scale + offset``.

    ``None`` from :meth:`UnitSystem.conversion` means the units do not convert (different
    dimensions, or a unit pint cannot parse).
    """

    scale: float
    offset: float


class UnitSystem:
    """Parses units and converts values between them (pint underneath)."""

    def __init__(self, definitions: Sequence[str] = ()) -> None:
        """Args:
        definitions: pint definition lines (``symbol = expression``) added to pint's defaults.

        Raises:
            ValueError: a definition pint refuses (the message names it).
        """
        import pint  # noqa: PLC0415 - lazy: pint takes ~1 s to import

        self._ureg: Any = pint.UnitRegistry(
            autoconvert_offset_to_baseunit=True, cache_folder=_cache_folder(pint.__file__)
        )
        for line in definitions:
            try:
                self._ureg.define(line)
            except Exception as exc:
                raise ValueError(f"bad unit definition {line!r}: {exc}") from exc
        self._conversions: dict[tuple[str, str], Conversion | None] = {}

    def check(self, unit: str) -> str | None:
        """None when ``unit`` parses, else pint's complaint (one line)."""
        try:
            self._ureg.Unit(unit)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None

    def conversion(self, source: str, target: str) -> Conversion | None:
        """The linear map from ``source`` to ``target`` units, or None when they do not convert."""
        key = (source, target)
        if key not in self._conversions:
            self._conversions[key] = self._compute(source, target)
        return self._conversions[key]

    def _compute(self, source: str, target: str) -> Conversion | None:
        if source == target:
            return Conversion(1.0, 0.0)
        try:
            zero = self._to(0.0, source, target)
            one = self._to(1.0, source, target)
        except Exception:
            return None
        return Conversion(one - zero, zero)

    def _to(self, value: float, source: str, target: str) -> float:
        quantity: Any = self._ureg.Quantity(value, source)
        return float(quantity.to(target).magnitude)

    def convert(
        self, values: npt.NDArray[np.float64], source: str, target: str
    ) -> npt.NDArray[np.float64] | None:
        """``values`` (in ``source``) in ``target`` units; None when the units do not convert."""
        conv = self.conversion(source, target)
        if conv is None:
            return None
        return values * conv.scale + conv.offset


def _cache_folder(pint_file: str) -> Path:
    """pint's on-disk cache, one per pint installation.

    pint's ``:auto:`` folder is shared by every environment of the user and its entries name
    the definition files of the installation that wrote them: once that environment is
    deleted, every other one fails to build a registry (FileNotFoundError).
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    install = hashlib.sha256(str(Path(pint_file).resolve()).encode()).hexdigest()[:16]
    return base / "maxlake" / "pint" / install


@lru_cache(maxsize=8)
def unit_system(definitions: tuple[str, ...] = ()) -> UnitSystem:
    """The shared :class:`UnitSystem` for one set of extra definitions (built once, cached)."""
    return UnitSystem(definitions)
